from django.db import models


class WorkerHeartbeat(models.Model):
    """The last sign of life of one background worker process (readiness, metrics)."""

    name = models.CharField(max_length=200, primary_key=True)  # host:pid
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class EventCounter(models.Model):
    """A cluster-wide count of something done in the background (emails sent, purges).

    Background work runs in worker processes that may be on other machines, where no
    scrape reaches their memory; counting in the database lets any app server report it.
    Request-time counts (unlocks, uploads) stay in process memory instead (ops.metrics)."""

    name = models.CharField(max_length=100, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
