from django.db import models


class Hit(models.Model):
    """One counted attempt (a failed login, an SMS sent…) under a scope and key.

    Kept in the database rather than a per-process cache so that every app server and
    worker sees the same counts, on SQLite and PostgreSQL alike.
    """

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=128)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["scope", "key", "created_at"])]
