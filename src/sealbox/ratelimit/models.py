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


class KeyLock(models.Model):
    """The row a limit's reservations write first, so that they take turns.

    Counting the hits and adding one must be one step, or parallel requests all read
    "one left" and all go ahead. An UPDATE of this row is that step's lock on both
    databases: PostgreSQL makes the next writer of the row wait for the commit, SQLite
    has one writer at a time. Nothing else is kept here.
    """

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=128)
    used_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="ratelimit_keylock_scope_key")
        ]
