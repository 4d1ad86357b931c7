"""Secure envelopes: links that let people without an account send documents that only
the envelope's owner can read. Each submission is an exchange Message of kind "envelope"
(sealed in the submitter's browser with one account grant for the owner)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class FilesMode(models.TextChoices):
    NONE = "none", _("Not allowed")
    OPTIONAL = "optional", _("Optional")
    MANDATORY = "mandatory", _("Mandatory")


class EnvelopeVerification(models.TextChoices):
    NONE = "none", _("None (the link is enough)")
    OPENING_CODE = "opening_code", _("Opening code")
    EMAIL_CODE = "email_code", _("Email code")
    SMS_CODE = "sms_code", _("SMS code")
    PASSWORD = "password", _("Password")


class EnvelopeState(models.TextChoices):
    OPEN = "open", _("Accepting submissions")
    CLOSED = "closed", _("Closed")


class Envelope(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="envelopes"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="envelopes"
    )
    subject = models.CharField(_("subject"), max_length=200)
    # Shown to submitters; stored in clear (like a subject), never secret.
    instructions = models.TextField(blank=True)
    public = models.BooleanField(default=False)
    files_mode = models.CharField(
        max_length=10, choices=FilesMode.choices, default=FilesMode.OPTIONAL
    )
    allowed_extensions = models.CharField(max_length=500, blank=True)  # "pdf jpg"; "" = any
    max_total_bytes = models.BigIntegerField(null=True, blank=True)  # None = the plan's limit
    expires_at = models.DateTimeField()
    reply_expiry_hours = models.PositiveIntegerField(default=24)
    reply_max_opens = models.PositiveSmallIntegerField(default=3)
    notify_on_use = models.BooleanField(default=True)
    language = models.CharField(max_length=5, default="en")
    delivery = models.CharField(max_length=10, default="email")  # email / links
    # Public links: submissions per hour from one IP address, and in total.
    per_ip_hourly = models.PositiveSmallIntegerField(default=5)
    max_submissions = models.PositiveIntegerField(default=100)
    state = models.CharField(
        max_length=10, choices=EnvelopeState.choices, default=EnvelopeState.OPEN
    )
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    expired_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner", "created_at"]),
            models.Index(fields=["state", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.subject}"

    @property
    def reference(self) -> str:
        return "V-" + self.public_id.hex[:8].upper()

    @property
    def extensions(self) -> list[str]:
        return self.allowed_extensions.split()


class EnvelopeLink(models.Model):
    """One way into an envelope: a recipient's own link, or the public link.

    The token is a capability to submit (not to read anything), so it is kept: the owner
    can copy the link again from the envelope's page."""

    envelope = models.ForeignKey(Envelope, on_delete=models.CASCADE, related_name="links")
    token = models.CharField(max_length=64, unique=True)
    email = models.EmailField(max_length=254, blank=True)  # blank for the public link
    phone = models.CharField(max_length=32, blank=True)
    verification = models.CharField(
        max_length=20, choices=EnvelopeVerification.choices, default=EnvelopeVerification.NONE
    )
    password_hash = models.CharField(max_length=200, blank=True)
    # HMAC of the opening code (verification "opening_code"), like a message grant's.
    opening_code_hash = models.CharField(max_length=64, blank=True)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    submissions = models.PositiveIntegerField(default=0)
    # Consecutive wrong proofs across codes, as for a message grant: at the limit the link
    # locks until the envelope's owner unlocks it.
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.envelope.reference} → {self.email or 'public'}"


class Submission(models.Model):
    """What one submitter sent: who they said they are, from where, and the sealed message."""

    envelope = models.ForeignKey(Envelope, on_delete=models.CASCADE, related_name="submissions")
    link = models.ForeignKey(EnvelopeLink, on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField(
        "exchange.Message", on_delete=models.CASCADE, related_name="submission"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.envelope.reference} ← {self.email}"
