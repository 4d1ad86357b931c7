"""Secure messages: ciphertext blobs and per-recipient grants.

The server stores no body, file name or file content in clear: only the subject, who
the recipients are, sizes, times and the grant secrets it is allowed to hold.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MessageState(models.TextChoices):
    DRAFT = "draft", _("Being uploaded")
    SENT = "sent", _("Sent")
    DELETED = "deleted", _("Deleted")


class Delivery(models.TextChoices):
    EMAIL = "email", _("Sealbox emails the links")
    LINKS = "links", _("The sender delivers the links")


class ReplyMode(models.TextChoices):
    NONE = "none", _("Not allowed")
    TEXT = "text", _("Allowed")
    FILES = "files", _("Allowed with files")


class MessageKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    # Sealed in a submitter's browser for the envelope's owner.
    ENVELOPE = "envelope", _("Envelope")
    # Sealed in a recipient's browser for the original message's sender.
    REPLY = "reply", _("Reply")


class Verification(models.TextChoices):
    OPENING_CODE = "opening_code", _("Opening code")
    EMAIL_CODE = "email_code", _("Email code")
    SMS_CODE = "sms_code", _("SMS code")
    PASSWORD = "password", _("Password")
    # The sender's own copy: opened while logged in as the sender.
    ACCOUNT = "account", _("Sender's account")


def reference_for(public_id: uuid.UUID, kind: str = "message") -> str:
    """The short reference people quote (M-1A2B3C4D): a kind letter and the id's start."""
    prefix = {MessageKind.ENVELOPE: "E-", MessageKind.REPLY: "R-"}.get(kind, "M-")
    return prefix + public_id.hex[:8].upper()


class Message(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="messages"
    )
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sent_messages"
    )
    subject = models.CharField(_("subject"), max_length=200)
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.MESSAGE)
    # For a reply: the message it answers (its thread).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    # For a reply: the recipient's grant it was written from (who replied).
    replied_by = models.ForeignKey(
        "Grant", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    state = models.CharField(
        max_length=10, choices=MessageState.choices, default=MessageState.DRAFT
    )
    delivery = models.CharField(max_length=10, choices=Delivery.choices, blank=True)
    expires_at = models.DateTimeField()
    max_opens = models.PositiveSmallIntegerField(default=1)
    notify_on_open = models.BooleanField(default=True)
    show_subject = models.BooleanField(default=True)
    keep_copy = models.BooleanField(default=False)
    language = models.CharField(max_length=5, default="en")
    reply_mode = models.CharField(max_length=10, choices=ReplyMode.choices, default=ReplyMode.NONE)
    file_count = models.PositiveIntegerField(default=0)
    attachment_bytes = models.BigIntegerField(default=0)  # plaintext size of the files
    created_at = models.DateTimeField()
    # When the last chunk of a draft arrived: an anonymous draft idle for long is abandoned.
    last_upload_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    blobs_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The History walks an organisation's messages newest first (keyset pages).
            models.Index(fields=["organisation", "-sent_at"], name="exchange_msg_org_sent"),
            models.Index(fields=["sender", "created_at"]),
            models.Index(fields=["state", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.subject}"

    @property
    def reference(self) -> str:
        return reference_for(self.public_id, self.kind)


class BlobKind(models.TextChoices):
    MANIFEST = "manifest", "Manifest"
    FILE = "file", "File"


class Blob(models.Model):
    """One ciphertext payload, stored as numbered chunk objects (resumable, streamable)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="blobs")
    kind = models.CharField(max_length=10, choices=BlobKind.choices)
    # The manifest's id for this file; random, it names nothing.
    file_ref = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField()  # declared ciphertext size
    stored = models.BigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    # Direct mode: the S3 multipart upload the client sends its parts to (cleared once it
    # is completed into `upload_name` or aborted), and the size of every part but the last.
    upload_name = models.CharField(max_length=255, blank=True)
    upload_id = models.CharField(max_length=1024, blank=True)
    part_size = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "file_ref"], name="blob_message_ref"),
        ]

    @property
    def direct(self) -> bool:
        return bool(self.upload_name)

    @property
    def complete(self) -> bool:
        return self.stored == self.size


class BlobChunk(models.Model):
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    size = models.BigIntegerField()  # a direct upload's whole object can pass 4 GiB
    storage_name = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blob", "index"], name="blobchunk_blob_index"),
        ]
        ordering = ["index"]


class AbortedUpload(models.Model):
    """A multipart upload the purge aborted: the row is its claim, so that of parallel
    purges listing the same stale upload exactly one aborts it (and counts it)."""

    upload_id = models.CharField(max_length=1024, unique=True)
    name = models.CharField(max_length=1024)
    aborted_at = models.DateTimeField()


class Grant(models.Model):
    """One recipient's access to a message: the server's half of their key."""

    token = models.CharField(max_length=64, unique=True)  # in the link; also the KDF salt
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="grants")
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=32, blank=True)
    # Set for the sender's copy ("Keep a copy for me"): only this user may open it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    verification = models.CharField(max_length=20, choices=Verification.choices)
    server_secret = models.BinaryField(null=True, blank=True)
    wrapped_key = models.BinaryField(null=True, blank=True)
    # HMACs (keyed by the server's secret key) of the proofs the server checks.
    password_verifier_hash = models.CharField(max_length=64, blank=True)
    opening_code_hash = models.CharField(max_length=64, blank=True)
    opens = models.PositiveSmallIntegerField(default=0)
    max_opens = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField()
    first_opened_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    # Downloads authorised by the last open stay possible until then.
    downloads_until = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    wiped_at = models.DateTimeField(null=True, blank=True)
    # Consecutive wrong proofs, across codes (a code itself dies after 5 wrong tries and a
    # new one can be asked for); at the limit the grant locks until its sender unlocks it.
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at", "wiped_at"])]

    def __str__(self) -> str:
        return f"{self.message.reference} → {self.email}"
