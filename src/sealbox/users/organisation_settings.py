"""The organisation's settings page: name, branding, defaults, approved domains, the
2FA policy."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Organisation, User
from sealbox.accounts.services import AccountError
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.twofactor import services as twofactor
from sealbox.users.access import _refusal, require_admin

LOGO_MAX_BYTES = 500 * 1024
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


ORGANISATION_FIELDS = (
    "name",
    "accent_colour",
    "default_sms_country",
    "default_expiry_days",
    "opening_code_in_separate_email",
    "approved_email_domains",
    "audit_retention_days",
    "postal_address",
    "phone",
)


def clean_domains(text: str) -> str:
    domains = []
    for raw in re.split(r"[\s,;]+", text or ""):
        domain = raw.strip().lower().lstrip("@")
        if not domain:
            continue
        if not DOMAIN.match(domain):
            raise AccountError(_("“%(domain)s” is not a domain name.") % {"domain": raw})
        if domain not in domains:
            domains.append(domain)
    return "\n".join(domains)


def check_logo(data: bytes) -> str:
    if len(data) > LOGO_MAX_BYTES:
        raise AccountError(_("The logo must be at most 500 KB."))
    for magic, content_type in LOGO_TYPES.items():
        if data.startswith(magic):
            return content_type
    raise AccountError(_("The logo must be a PNG or JPEG image."))


def update_organisation(
    request: HttpRequest | None,
    actor: User,
    *,
    logo: bytes | None = None,
    remove_logo: bool = False,
    require_2fa: bool | None = None,
    **values,
) -> list[str]:
    require_admin(actor)
    organisation = Organisation.objects.get(pk=actor.organisation_id)
    if "name" in values:
        values["name"] = accounts.check_organisation_name(values["name"], exclude=organisation)
    if "approved_email_domains" in values:
        values["approved_email_domains"] = clean_domains(values["approved_email_domains"])
    if values.get("accent_colour") and not COLOUR.match(values["accent_colour"]):
        raise AccountError(_("The accent colour is written #RRGGBB, for example #1d4ed8."))
    changed = [
        n
        for n in ORGANISATION_FIELDS
        if n in values and hasattr(organisation, n) and getattr(organisation, n) != values[n]
    ]
    logo_type = check_logo(logo) if logo else ""
    with transaction.atomic():
        for name in changed:
            setattr(organisation, name, values[name])
        if logo:
            organisation.logo = logo
            organisation.logo_type = logo_type
            changed.append("logo")
        elif remove_logo and organisation.logo:
            organisation.logo = None
            organisation.logo_type = ""
            changed.append("logo")
        if changed:
            try:
                organisation.full_clean(exclude=["plan", "logo"])
            except ValidationError as error:
                raise _refusal(error) from None
            try:
                with transaction.atomic():
                    organisation.save()
            except IntegrityError:
                # Another organisation took the name (in some letter case) since the check.
                raise AccountError(
                    _(
                        "Another organisation already has this name (letter case aside). "
                        "Choose another."
                    ),
                    field="name",
                ) from None
            audit.record(
                Action.ORGANISATION_UPDATED,
                organisation=organisation,
                actor=actor,
                target=organisation,
                request=request,
                details={"fields": changed},
            )
        if require_2fa is not None and twofactor.set_require_2fa(
            request, actor, organisation, require_2fa
        ):
            changed.append("require_2fa")
    actor.organisation = organisation
    return changed
