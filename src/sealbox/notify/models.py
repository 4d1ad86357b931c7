import uuid

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboxMessage(models.Model):
    """One email or SMS waiting for (or done with) delivery by the task worker.

    The content (subject and bodies, or the SMS text) is only ever stored sealed, and only
    while the message is queued: see `sealbox.notify.sealing` for the key, and
    `sealbox.notify.services.finish` for the erasure. The task that delivers it carries
    nothing but this row's id, so the task queue never holds content, sealed or not.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # Email addresses, or the one phone number of an SMS: never secret, kept for the
    # delivery and for operators looking at failures.
    recipients = models.JSONField(default=list)
    # Chosen by whoever queued it (e.g. "smscode:42"), returned with the delivery report.
    reference = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED
    )
    # nonce ‖ AES-256-GCM ciphertext; NULL once delivered or failed for good.
    sealed = models.BinaryField(null=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why the last attempt failed (the gateway's answer, never the content).
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.pk} ({self.status})"
