import uuid

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


LIVE_STATUSES = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
FINAL_STATUSES = (OutboxStatus.SENT, OutboxStatus.FAILED)


class OutboxMessage(models.Model):
    """One email or SMS waiting for (or done with) delivery by the task worker.

    The content (subject and bodies, or the SMS text) is only ever stored sealed, and only
    while the message is queued or being sent: see `sealbox.notify.sealing` for the key,
    and `sealbox.notify.services` for the claim and the erasure. The task that delivers
    it carries nothing but this row's id, so the task queue never holds content.

    queued → sending (claimed by one worker, before the gateway is called) → sent or
    failed; a transient failure puts it back to queued until `next_attempt_at`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # Email addresses, or the one phone number of an SMS: never secret, kept for the
    # delivery and for operators looking at failures.
    recipients = models.JSONField(default=list)
    # Chosen by whoever queued it (e.g. "smscode:42", "grant:7"), returned with the
    # delivery report and written in the audit events.
    reference = models.CharField(max_length=64, blank=True)
    # Where the outcome is audited: the caller's organisation chain, linked to the
    # caller's object (a message, an envelope, a user). None/blank: the system chain,
    # linked to this row.
    organisation = models.ForeignKey(
        "accounts.Organisation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED
    )
    # nonce ‖ AES-256-GCM ciphertext; NULL once delivered or failed for good.
    sealed = models.BinaryField(null=True)
    # The number of the latest claim: each claim adds one, and every later change of the
    # row names it, so a worker whose claim was taken over can no longer change anything.
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)  # the worker, host:pid
    # After a transient failure: not to be tried again before this time.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why the last attempt failed (the gateway's answer, never the content).
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.channel} {self.pk} ({self.status})"
