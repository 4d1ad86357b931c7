"""Who a message goes to and how they prove it: the recipient's spec and its checks,
the proofs' HMACs (opening codes, password verifiers) bound to their grant.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from sealbox import keys
from sealbox.accounts.models import MAX_OPENS
from sealbox.crypto import links
from sealbox.crypto.grants import SERVER_SECRET_LENGTH, WRAPPED_KEY_LENGTH
from sealbox.exchange.errors import ExchangeError
from sealbox.exchange.models import (
    Grant,
    Verification,
)
from sealbox.exchange.rules import MAX_RECIPIENTS
from sealbox.lib import phones

OPENING_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U
OPENING_CODE_LENGTH = 8


# --- Proof hashing ------------------------------------------------------------------


PROOF_INFO = b"sealbox grant proof v1"


def proof_hash(grant_token: str, kind: str, value: str | bytes, key: bytes | None = None) -> str:
    """HMAC of a proof (opening code, password verifier) bound to its grant.

    Keyed by a key derived from the server's secret key (`key`: the current one unless
    given), so a copy of the database alone cannot test guesses against it."""
    raw = value.encode() if isinstance(value, str) else value
    message = grant_token.encode() + b"\n" + kind.encode() + b"\n" + raw
    return hmac.new(key or keys.derive(PROOF_INFO), message, hashlib.sha256).hexdigest()


def proof_is_right(
    model: type, pk: int, field: str, grant_token: str, kind: str, value: str | bytes
) -> bool:
    """Whether `value` is the proof whose HMAC the row `pk` of `model` keeps in `field`.

    Checked under the current secret key and its fallbacks, so proofs given before a
    rotation keep working; one that matched under a former key is hashed again under the
    current key (a conditional update), so it survives that key's removal."""
    stored = model.objects.filter(pk=pk).values_list(field, flat=True).first() or ""
    found = keys.matching(stored, lambda key: proof_hash(grant_token, kind, value, key), PROOF_INFO)
    if found is None:
        return False
    if found != keys.CURRENT:
        model.objects.filter(pk=pk, **{field: stored}).update(
            **{field: proof_hash(grant_token, kind, value)}
        )
    return True


def new_opening_code() -> str:
    code = "".join(secrets.choice(OPENING_CODE_ALPHABET) for _ in range(OPENING_CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def set_opening_code(grant: Grant) -> str:
    """Give the grant a fresh opening code; only its HMAC is kept."""
    code = new_opening_code()
    grant.opening_code_hash = proof_hash(grant.token, "opening", code)
    return code


def normalise_opening_code(text: str) -> str:
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == OPENING_CODE_LENGTH else cleaned


# --- Recipients ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientSpec:
    email: str
    verification: str
    grant_token: str
    server_secret: bytes
    wrapped_key: bytes
    phone: str = ""
    password_verifier: bytes | None = None


def _validate_recipient(spec: RecipientSpec, index: int) -> None:
    field = f"recipients[{index}]"
    if spec.verification not in Verification.values:
        raise ExchangeError(
            _("Choose how the recipient proves who they are."), field=f"{field}.verification"
        )
    if spec.verification == Verification.SMS_CODE and not spec.phone:
        raise ExchangeError(
            _("An SMS code needs the recipient's mobile phone."), field=f"{field}.phone"
        )
    if spec.verification == Verification.PASSWORD and not spec.password_verifier:
        raise ExchangeError(
            _("A password is needed for this recipient."), field=f"{field}.password"
        )
    if not links.GRANT_TOKEN_RE.fullmatch(spec.grant_token or ""):
        raise ExchangeError(_("A recipient's link token is malformed."), field=field)
    if len(spec.server_secret) != SERVER_SECRET_LENGTH:
        raise ExchangeError(_("A recipient's server secret is malformed."), field=field)
    if len(spec.wrapped_key) != WRAPPED_KEY_LENGTH:
        raise ExchangeError(_("A recipient's wrapped key is malformed."), field=field)


def recipient_phone(phone: str, country: str, index: int) -> str:
    """A recipient's phone in E.164 (or "" for none), read with the sender's default SMS
    country; refused naming the recipient's row (messages and envelopes alike)."""
    try:
        return phones.parse_optional_phone(phone, country)
    except ValidationError as error:
        raise ExchangeError(error.messages[0], field=f"recipients[{index}].phone") from None


def check_recipient_count(recipients: list) -> None:
    """At most MAX_RECIPIENTS recipients in one send (messages and envelopes)."""
    if len(recipients) > MAX_RECIPIENTS:
        raise ExchangeError(
            _("Send to at most %(n)d recipients at once.") % {"n": MAX_RECIPIENTS},
            field="recipients",
        )


def check_max_opens(value: int, field: str) -> None:
    """Opens per recipient between 1 and MAX_OPENS (a message's, an envelope reply's)."""
    if not 1 <= value <= MAX_OPENS:
        raise ExchangeError(
            _("Maximum opens must be between 1 and %(n)d.") % {"n": MAX_OPENS}, field=field
        )


def _with_parsed_phone(spec: RecipientSpec, country: str, index: int) -> RecipientSpec:
    if not spec.phone:
        return spec
    return replace(spec, phone=recipient_phone(spec.phone, country, index))
