from __future__ import annotations

import zoneinfo
from datetime import date

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
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


class Organisation(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.plan_id and self.default_expiry_days > self.plan.max_retention_days:
            raise ValidationError(
                {
                    "default_expiry_days": _("The plan keeps messages at most %(days)s days.")
                    % {"days": self.plan.max_retention_days}
                }
            )


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


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email=normalize_email(email))

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user


def normalize_email(email: str) -> str:
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

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

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


def first_of_month(today: date) -> date:
    return today.replace(day=1)
