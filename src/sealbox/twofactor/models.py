"""Second factors: SMS phones, one-time SMS codes, recovery codes, login-pending state.

Authenticator apps use django-otp's TOTPDevice and passkeys django-otp-webauthn's
WebAuthnCredential as they are; the models here cover what those packages do not.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, SideChannelDevice, TimestampMixin
from phonenumber_field.modelfields import PhoneNumberField

from sealbox.lib import clock


class Factor(models.TextChoices):
    SMS = "sms", _("Text message (SMS)")
    TOTP = "totp", _("Authenticator app")
    PASSKEY = "passkey", _("Passkey or security key")
    RECOVERY = "recovery", _("Recovery code")


class SMSDevice(TimestampMixin, SideChannelDevice):
    """A mobile phone that receives login codes by SMS.

    `confirmed` stays False until a code sent to the number has been typed back, so a
    mistyped number never replaces a working one. The plain-text `token` field that
    SideChannelDevice provides is never used: codes live hashed in SMSCode, each bound
    to the login attempt or phone confirmation it was sent for.
    """

    number = PhoneNumberField(_("mobile phone"))

    class Meta(SideChannelDevice.Meta):
        verbose_name = _("SMS phone")
        verbose_name_plural = _("SMS phones")

    def generate_token(self, *args, **kwargs):  # pragma: no cover - guard
        raise NotImplementedError("SMS codes are issued by twofactor.services.send_code")

    def verify_token(self, token) -> bool:
        # Codes are bound to an attempt; only twofactor.services can check them.
        return False


class CodeDelivery(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class SMSCode(models.Model):
    """One 6-digit code sent by SMS, bound to what it was sent for (`binding`).

    Only an HMAC of the code is stored. `failures` counts wrong tries against the
    binding; a new code for the same binding starts from the previous count.
    """

    binding = models.CharField(max_length=100, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True
    )
    phone = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    delivery = models.CharField(
        max_length=10, choices=CodeDelivery.choices, default=CodeDelivery.QUEUED
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("SMS code")
        verbose_name_plural = _("SMS codes")

    def __str__(self) -> str:
        return f"{self.binding} ({self.created_at:%Y-%m-%d %H:%M})"


class PendingLogin(models.Model):
    """A login whose password was accepted and whose second factor is awaited.

    It opens no session: the user stays anonymous until a factor is verified, and the
    attempt expires 10 minutes after the password step.
    """

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    method = models.CharField(max_length=10, choices=Factor.choices)
    next_url = models.CharField(max_length=2000, blank=True)
    # Wrong authenticator-app or recovery codes in this attempt (SMS codes count their
    # own failures, per binding).
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("pending login")
        verbose_name_plural = _("pending logins")

    def __str__(self) -> str:
        return f"{self.user} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def binding(self) -> str:
        return f"login:{self.pk}"

    def is_live(self) -> bool:
        return self.completed_at is None and clock.now() < self.expires_at


class FactorLock(models.Model):
    """Consecutive failures of one kind of factor for one user, and its lock."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="factor_locks"
    )
    factor = models.CharField(max_length=10, choices=Factor.choices)
    failures = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "factor"], name="twofactor_lock_user_factor")
        ]
        verbose_name = _("factor lock")
        verbose_name_plural = _("factor locks")

    def __str__(self) -> str:
        return f"{self.user} {self.factor}: {self.failures}"


RECOVERY_HASH_PREFIX = b"sealbox recovery code v1:"


def recovery_code_hash(code: str) -> str:
    """Recovery codes carry 80 random bits, so a plain SHA-256 cannot be reversed by
    guessing; no server key is mixed in, so they survive a secret-key rotation."""
    normalised = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(RECOVERY_HASH_PREFIX + normalised.encode()).hexdigest()


class RecoveryCodeDevice(Device):
    """The user's set of recovery codes (one device per user, 10 codes)."""

    created_at = models.DateTimeField(null=True, blank=True)

    class Meta(Device.Meta):
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")

    def verify_token(self, token) -> bool:
        """Use up one unused code; a conditional update makes each code single use even
        when two requests race with the same code."""
        digest = recovery_code_hash(str(token))
        for candidate in self.codes.filter(used_at__isnull=True):
            if hmac.compare_digest(candidate.code_hash, digest):
                return bool(
                    RecoveryCode.objects.filter(pk=candidate.pk, used_at__isnull=True).update(
                        used_at=clock.now()
                    )
                )
        return False

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")

    def __str__(self) -> str:
        return f"{self.device.user} ({'used' if self.used_at else 'unused'})"
