from django.db import models


class WorkerHeartbeat(models.Model):
    """The last sign of life of one background worker process (readiness, metrics)."""

    name = models.CharField(max_length=200, primary_key=True)  # host:pid
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
