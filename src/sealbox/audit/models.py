from django.db import models

GENESIS_HASH = "0" * 64


class ActorType(models.TextChoices):
    USER = "user", "User"
    RECIPIENT = "recipient", "External recipient"
    SUBMITTER = "submitter", "Anonymous submitter"
    SYSTEM = "system", "System"
    ANONYMOUS = "anonymous", "Anonymous"


class ChainHead(models.Model):
    """The tip of one hash chain; locked while an event is appended so chains never fork."""

    chain = models.CharField(max_length=40, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)


class Event(models.Model):
    """One append-only audit event, linked to the previous event of its chain by hash."""

    chain = models.CharField(max_length=40)
    seq = models.PositiveBigIntegerField()
    organisation = models.ForeignKey(
        "accounts.Organisation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=320, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_event_chain_seq"),
        ]
        indexes = [
            models.Index(fields=["organisation", "created_at"]),
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["action", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} ({self.chain} seq {self.seq})"


class SealingKey(models.Model):
    """An organisation's sealing certificate: seals PDF exports and signs chain checkpoints.

    The private key is stored encrypted with a key derived from the server's secret key,
    so a copy of the database alone cannot forge a seal or a checkpoint.
    """

    organisation = models.OneToOneField(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    certificate_pem = models.TextField()
    private_key_pem = models.TextField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"sealing key of organisation {self.organisation_id}"


class Checkpoint(models.Model):
    """A signed (seq, hash) of a chain, stored before retention removes the events up to it.

    Verification of a chain whose first events were removed starts from its latest checkpoint.
    """

    chain = models.CharField(max_length=40)
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    signature = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_checkpoint_chain_seq"),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.chain} seq {self.seq}"
