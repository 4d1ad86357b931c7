from __future__ import annotations

import re
import zoneinfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

MB = 1000 * 1000


class Plan(models.Model):
    """A licence plan: the limits an organisation buys. Shipped as data, editable."""

    name = models.CharField(_("name"), max_length=40, unique=True)
    # None means "no limit"; 0 attachments means the plan sends text only.
    max_send_bytes = models.BigIntegerField(
        _("largest attachment total per send"), null=True, blank=True
    )
    max_retention_days = models.PositiveIntegerField(_("longest retention (days)"))
    messages_per_month = models.PositiveIntegerField(_("messages per month"), null=True, blank=True)
    default_seats = models.PositiveIntegerField(_("seats included"), default=1)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


PHONE_AS_WRITTEN = re.compile(r"^\+?[0-9][0-9 ().\-]{3,38}$")


def validate_display_phone(value: str) -> None:
    """A phone number as the organisation writes it (+33 1 23 45 67 89): printed, not dialled
    by Sealbox, so only its characters are checked (an email header or layout cannot be
    bent through it)."""
    if value and not PHONE_AS_WRITTEN.match(value):
        raise ValidationError(
            _(
                "Write the phone number with digits, spaces and the + sign, "
                "for example +33 1 23 45 67 89."
            )
        )


class OrganisationManager(models.Manager):
    # The logo (up to 500 KB) is read only where it is served: every request that
    # follows user.organisation would otherwise load it.
    def get_queryset(self):
        return super().get_queryset().defer("logo")


SLUG_MAX_LENGTH = 60


def organisation_slug(name: str, *, taken=lambda slug: False) -> str:
    """A slug made from `name` that `taken` does not refuse (acme, acme-2, …).

    Never all digits: operator commands read a number as an organisation's id.
    """
    base = slugify(name)[: SLUG_MAX_LENGTH - 6].strip("-") or "organisation"
    if base.isdigit():
        base = f"org-{base}"
    slug, number = base, 1
    while taken(slug):
        number += 1
        slug = f"{base}-{number}"
    return slug


class Organisation(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    # What operator commands name an organisation by (with its id): made from the name at
    # creation and kept when the organisation is renamed, since its administrators choose
    # the name and could otherwise take another organisation's slug.
    slug = models.SlugField(_("slug"), max_length=SLUG_MAX_LENGTH, unique=True, editable=False)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, verbose_name=_("plan"))
    seats = models.PositiveIntegerField(_("seats"))
    renewal_date = models.DateField(_("renewal date"))
    require_2fa = models.BooleanField(_("require 2FA for all users"), default=False)
    default_sms_country = models.CharField(_("default SMS country"), max_length=2, default="CA")
    default_expiry_days = models.PositiveIntegerField(_("default expiry (days)"), default=7)
    # Mail scanners follow links but do not type codes: the opening code stops them
    # from using up a message's opens. A second email keeps it out of a forwarded link.
    opening_code_in_separate_email = models.BooleanField(
        _("send the opening code in a separate email"), default=True
    )
    # Audit events older than this are removed by the purge, after a signed checkpoint.
    audit_retention_days = models.PositiveIntegerField(
        _("keep activity logs for (days)"), default=2557
    )
    # Empty: any address. Otherwise one domain a line (example.com); new users must match.
    approved_email_domains = models.TextField(_("approved email domains"), blank=True)
    accent_colour = models.CharField(_("accent colour"), max_length=7, blank=True)
    logo = models.BinaryField(_("logo"), blank=True, null=True)
    logo_type = models.CharField(max_length=20, blank=True)
    # Printed at the foot of the emails recipients receive, so they can check with the
    # organisation by another channel than the email itself.
    postal_address = models.TextField(_("postal address"), max_length=300, blank=True)
    phone = models.CharField(
        _("phone number"), max_length=40, blank=True, validators=[validate_display_phone]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganisationManager()

    class Meta:
        ordering = ["name"]
        base_manager_name = "objects"
        constraints = [
            # OrgA and ORGA look like one organisation to whoever types its name.
            models.UniqueConstraint(
                Lower("name"),
                name="accounts_organisation_name_ci",
                violation_error_message=_(
                    "Another organisation already has this name (letter case aside)."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            others = Organisation.objects.exclude(pk=self.pk) if self.pk else Organisation.objects
            self.slug = organisation_slug(
                self.name, taken=lambda slug: others.filter(slug=slug).exists()
            )
        super().save(*args, **kwargs)

    @property
    def approved_domains(self) -> list[str]:
        return [
            line.strip().lower().lstrip("@")
            for line in self.approved_email_domains.replace(",", "\n").splitlines()
            if line.strip()
        ]

    def clean(self) -> None:
        errors = {}
        if self.plan_id and self.default_expiry_days > self.plan.max_retention_days:
            errors["default_expiry_days"] = _("The plan keeps messages at most %(days)s days.") % {
                "days": self.plan.max_retention_days
            }
        try:
            validate_sms_country(self.default_sms_country)
        except ValidationError as error:
            errors["default_sms_country"] = error
        if errors:
            raise ValidationError(errors)


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    MEMBER = "member", _("Standard user")


class Language(models.TextChoices):
    ENGLISH = "en", _("English")
    FRENCH = "fr", _("French")


class DateFormat(models.TextChoices):
    ISO = "Y-m-d", "2026-12-31"
    DAY_FIRST = "d/m/Y", "31/12/2026"
    MONTH_FIRST = "m/d/Y", "12/31/2026"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Choose a time zone from the list."))


def sms_countries() -> frozenset[str]:
    """The countries phone numbers can be read with (phonenumbers' regions; "001", the
    non-geographic entities, is not a country)."""
    import phonenumbers

    return frozenset(phonenumbers.SUPPORTED_REGIONS) - {"001"}


def validate_sms_country(value: str) -> None:
    """The one rule for a default SMS country, used by the forms, the CSV import, the API
    and the models' clean(): a stored "ZZ" would break every number read with it."""
    if value not in sms_countries():
        raise ValidationError(
            _("“%(country)s” is not a known country: use a two-letter code such as CA or FR."),
            code="sms_country",
            params={"country": value},
        )


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email=normalise_email(email))

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        user = self.model(email=normalise_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


def normalise_email(email: str) -> str:
    # Addresses are compared case-insensitively: store one spelling.
    return (email or "").strip().lower()


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("email"), max_length=254, unique=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="users", verbose_name=_("organisation")
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.MEMBER)
    mobile_phone = PhoneNumberField(_("mobile phone"), blank=True)
    sms_country = models.CharField(_("default SMS country"), max_length=2, default="CA")
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="America/Toronto", validators=[validate_time_zone]
    )
    language = models.CharField(
        _("language"), max_length=5, choices=Language.choices, default=Language.ENGLISH
    )
    date_format = models.CharField(
        _("date format"), max_length=8, choices=DateFormat.choices, default=DateFormat.ISO
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Operators only: access to the Django admin, unrelated to the organisation role.
    is_staff = models.BooleanField(_("operator"), default=False)
    date_joined = models.DateTimeField(_("joined"), auto_now_add=True)
    # Deleted users keep their row (their messages keep their sender) with personal data
    # scrubbed; they are hidden from the users list and hold no seat.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = normalise_email(self.email)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        try:
            validate_sms_country(self.sms_country)
        except ValidationError as error:
            raise ValidationError({"sms_country": error}) from None

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self) -> str:
        return self.first_name

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email

    @property
    def is_org_admin(self) -> bool:
        return self.role == Role.ADMIN


# --- Account management ----------------------------------------------------------


# How many times one recipient may open a message (1 to this): the reference product's
# range. A preference, the send page, the API and envelopes' replies all read it here,
# the lowest app that has the rule.
MAX_OPENS = 99


class MessagePreferences(models.Model):
    """A user's defaults for new messages: the send page starts from them."""

    EXPIRY_CHOICES = [(1, _("1 day")), (7, _("7 days")), (30, _("30 days"))]
    VERIFICATION_CHOICES = [
        ("opening_code", _("Opening code")),
        ("email_code", _("Email code")),
        ("sms_code", _("SMS code")),
        ("password", _("Password")),
    ]

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="message_preferences")
    expiry_days = models.PositiveIntegerField(_("Expires after"), choices=EXPIRY_CHOICES, default=7)
    max_opens = models.PositiveSmallIntegerField(_("Maximum opens"), default=1)
    verification = models.CharField(
        _("Verification"), max_length=16, choices=VERIFICATION_CHOICES, default="opening_code"
    )
    notify_on_open = models.BooleanField(_("Notify me when it is opened"), default=True)
    show_subject = models.BooleanField(_("Show the subject in the email"), default=True)
    keep_copy = models.BooleanField(_("Keep a copy for me"), default=False)
    recipient_language = models.CharField(
        _("Recipient language"), max_length=5, choices=Language.choices, blank=True
    )

    def clean(self) -> None:
        if not 1 <= (self.max_opens or 0) <= MAX_OPENS:
            raise ValidationError(
                {"max_opens": _("Choose between 1 and %(n)d opens.") % {"n": MAX_OPENS}}
            )


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=64)
    prefix = models.CharField(max_length=16)  # the first characters, to recognise it
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class SessionRecord(models.Model):
    """What a person sees of their open sessions: device, address, last seen."""

    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="session_records")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]


class Invitation(models.Model):
    """A link to set a first password: 72 hours, single use; only its hash is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class EmailChange(models.Model):
    """A requested address change, waiting for the link sent to the new address."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_changes")
    new_email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class PasswordReset(models.Model):
    """A password-reset link: random, single use, one hour; only its hash is stored.

    Not Django's default reset token, which is an HMAC of the user's row under the secret
    key: with a copy of the data folder (the secret key is in it, in the embedded default)
    anyone could mint a valid reset link for any account. `state_hash` binds the link to
    the account as it was when the link was sent (password, last login, email), so a
    password change, a login or an address change ends it, as Django's token did.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_resets")
    token_hash = models.CharField(max_length=64, unique=True)
    state_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
