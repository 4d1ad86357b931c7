"""The user's own profile and their preferences for new messages."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from sealbox.accounts.models import MessagePreferences, User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action

PROFILE_FIELDS = ("first_name", "last_name", "time_zone", "language", "date_format", "sms_country")


def update_profile(user: User, request: HttpRequest | None = None, **values) -> list[str]:
    """Save the given profile fields; return the names of those that changed."""
    changed = [
        name for name in PROFILE_FIELDS if name in values and getattr(user, name) != values[name]
    ]
    if not changed:
        return []
    for name in changed:
        setattr(user, name, values[name])
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        user.save(update_fields=changed)
        audit.record(
            Action.PROFILE_UPDATED,
            actor=user,
            target=user,
            request=request,
            details={"fields": changed},
        )
    return changed


PREFERENCE_FIELDS = (
    "expiry_days",
    "max_opens",
    "verification",
    "notify_on_open",
    "show_subject",
    "keep_copy",
    "recipient_language",
)


def message_preferences(user: User):
    """The user's saved defaults, or the product's defaults when none are saved."""

    found = MessagePreferences.objects.filter(user=user).first()
    if found is not None:
        return found
    return MessagePreferences(
        user=user,
        expiry_days=user.organisation.default_expiry_days
        if user.organisation.default_expiry_days in (1, 7, 30)
        else 7,
    )


def update_preferences(user: User, request: HttpRequest | None = None, **values) -> list[str]:
    preferences = message_preferences(user)
    changed = [
        name
        for name in PREFERENCE_FIELDS
        if name in values and getattr(preferences, name) != values[name]
    ]
    if not changed and preferences.pk:
        return []
    for name in changed:
        setattr(preferences, name, values[name])
    preferences.full_clean(exclude=["user"])
    with transaction.atomic():
        preferences.save()
        audit.record(
            Action.PREFERENCES_UPDATED,
            actor=user,
            target=user,
            request=request,
            details={"fields": changed},
        )
    return changed
