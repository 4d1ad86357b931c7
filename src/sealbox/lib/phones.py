"""Mobile phone numbers: reading what a person typed, and showing a stored one.

One reading for every place that takes a number (the account page, administrators,
CSV imports, message and envelope recipients), so a number accepted in one place is
accepted everywhere and stored the same way (E.164).
"""

from __future__ import annotations

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

PHONE_CHARACTERS = re.compile(r"^[0-9+().\-\s]+$")


def parse_phone(raw: str, country: str) -> str:
    """A mobile number typed by a person, read with their default SMS country, as E.164.

    Letters are refused even though phonenumbers would read "1-800-FLOWERS": a code must
    reach exactly the number the person meant.
    """
    value = (raw or "").strip()
    if not value:
        raise ValidationError(_("Enter your mobile phone number."), code="required")
    if not PHONE_CHARACTERS.match(value):
        raise ValidationError(
            _(
                "A phone number contains only digits, spaces and the + sign, "
                "for example 514 555 0100."
            ),
            code="characters",
        )
    try:
        number = phonenumbers.parse(value, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("This is not a valid phone number. Enter it with its area code."), code="invalid"
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason in (
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        phonenumbers.ValidationResult.TOO_SHORT,
    ):
        raise ValidationError(
            _("Enter the number with its area code, for example 514 555 0100."),
            code="area_code",
        )
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("This is not a valid phone number. Enter it with its area code."), code="invalid"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_optional_phone(raw: str, country: str) -> str:
    """As `parse_phone`, but an empty entry is no number ("") rather than an error."""
    value = (raw or "").strip()
    return parse_phone(value, country) if value else ""


def mask_phone(number: object) -> str:
    """•••• 0100: enough for the person to recognise their phone, not to learn it."""
    digits = "".join(ch for ch in str(number or "") if ch.isdigit())
    return f"•••• {digits[-4:]}" if digits else ""


def display_phone(number: object) -> str:
    """A stored E.164 number as people write it (international format)."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(str(number), None)
    except phonenumbers.NumberParseException:
        return str(number)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
