"""What an email says about itself: who it is from, who answers it, the organisation's
letterhead (logo embedded, never fetched), and the MIME it goes out as.

An email sent for a person says so in its From display name ("Sam Sender (Tremblay
Avocats) via Sealbox"), on the configured address only (the mail domain's SPF and DKIM
stay Sealbox's), with a Reply-To that reaches that person. Login and security emails
keep the plain configured sender.

The logo travels inside the sealed payload with the rest of the email and goes out as a
CID inline part of a multipart/related beside the HTML: mail clients show it without
loading anything from the internet (no remote image, nothing to track an open with).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from email.mime.image import MIMEImage
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import SafeMIMEMultipart

# Above this the logo is left out of emails (the organisation's name is shown instead):
# base64 grows it by a third, and the whole email must stay well under 100 KB.
EMAIL_LOGO_MAX_BYTES = 48 * 1024
LOGO_CID = "logo@sealbox"
LOGO_TYPES = {"image/png": "png", "image/jpeg": "jpeg"}
DEFAULT_ACCENT = "#1f5fbf"
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
NAME_MAX_LENGTH = 120


@dataclass(frozen=True)
class Brand:
    """The organisation an email is sent for, as its letterhead shows it."""

    organisation: str
    accent: str = DEFAULT_ACCENT
    logo: bytes = b""
    logo_type: str = ""
    postal_address: str = ""
    phone: str = ""

    @property
    def embeds_logo(self) -> bool:
        return (
            bool(self.logo)
            and len(self.logo) <= EMAIL_LOGO_MAX_BYTES
            and self.logo_type in LOGO_TYPES
        )

    def context(self) -> dict[str, Any]:
        """What the layout templates read."""
        return {
            "brand_organisation": self.organisation,
            # Validated where it is set; checked again here because it goes into style=.
            "accent": self.accent if COLOUR.match(self.accent or "") else DEFAULT_ACCENT,
            "logo_cid": LOGO_CID if self.embeds_logo else "",
            "organisation_address": self.postal_address,
            "organisation_phone": self.phone,
        }

    def inline_parts(self) -> list[dict[str, str]]:
        """The payload's inline images (base64: the payload is JSON)."""
        if not self.embeds_logo:
            return []
        return [
            {
                "cid": LOGO_CID,
                "type": self.logo_type,
                "data": base64.b64encode(bytes(self.logo)).decode("ascii"),
            }
        ]


def header_safe(text: str) -> str:
    """`text` fit for a header's display name: no line break or other control or format
    character (nothing can start a new header or hide part of the name), spaces
    collapsed, cut to a readable length. Non-ASCII stays: the header is RFC 2047-encoded
    when the email is built."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text or ""
    )
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > NAME_MAX_LENGTH:
        cleaned = cleaned[: NAME_MAX_LENGTH - 1].rstrip() + "…"
    return cleaned


def via_sealbox(person: str, organisation: str = "") -> str:
    """The From display name of an email sent for `person`."""
    person, organisation = header_safe(person), header_safe(organisation)
    if organisation and organisation != person:
        return header_safe(f"{person} ({organisation}) via Sealbox")
    return header_safe(f"{person} via Sealbox")


def configured_address() -> str:
    """The address part of SEALBOX_FROM_EMAIL (its display name is Sealbox's own)."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1]


def from_header(display_name: str) -> str:
    """The From of an email sent for someone: their display name on the configured address."""
    name = header_safe(display_name)
    if not name:
        return settings.DEFAULT_FROM_EMAIL
    return formataddr((name, configured_address()))


def reply_to_header(name: str, address: str) -> str:
    """A Reply-To mailbox; an address that is not a plain mailbox is refused (empty)."""
    address = (address or "").strip()
    if not address or any(ch in address for ch in '\r\n<>,;"') or address.count("@") != 1:
        return ""
    return formataddr((header_safe(name), address))


class BrandedEmail(EmailMultiAlternatives):
    """An email whose HTML alternative carries its images as CID parts:
    multipart/alternative [text/plain, multipart/related [text/html, image…]], the
    structure mail clients show best (the images belong to the HTML, not to the text)."""

    def __init__(self, *args, inline: list[dict[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.inline = list(inline or [])

    def _inline_part(self, image: dict[str, str]) -> MIMEImage:
        subtype = LOGO_TYPES.get(image["type"], "png")
        part = MIMEImage(base64.b64decode(image["data"]), _subtype=subtype)
        part["Content-ID"] = f"<{image['cid']}>"
        part.add_header("Content-Disposition", "inline", filename=f"logo.{subtype}")
        return part

    def _create_alternatives(self, msg):
        if not self.inline or not self.alternatives:
            return super()._create_alternatives(msg)
        encoding = self.encoding or settings.DEFAULT_CHARSET
        text_part = msg
        msg = SafeMIMEMultipart(_subtype="alternative", encoding=encoding)
        if self.body:
            msg.attach(text_part)
        for alternative in self.alternatives:
            part = self._create_mime_attachment(alternative.content, alternative.mimetype)
            if alternative.mimetype == "text/html":
                related = SafeMIMEMultipart(_subtype="related", encoding=encoding)
                related.attach(part)
                for image in self.inline:
                    related.attach(self._inline_part(image))
                part = related
            msg.attach(part)
        return msg


def build(payload: dict, recipients: list[str], headers: dict[str, str]) -> BrandedEmail:
    """The email of an unsealed outbox payload (older payloads lack the newer keys)."""
    reply_to = [payload["reply_to"]] if payload.get("reply_to") else None
    email = BrandedEmail(
        payload["subject"],
        payload["text"],
        from_header(payload.get("from_name", "")),
        recipients,
        headers=headers,
        reply_to=reply_to,
        inline=payload.get("inline") if payload.get("html") else None,
    )
    if payload.get("html"):
        email.attach_alternative(payload["html"], "text/html")
    return email
