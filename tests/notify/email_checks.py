"""Readers and checks for emails as a mail client receives them: the MIME parts, and a
lint of the HTML for what mail clients accept (and what a tracker would need)."""

from __future__ import annotations

import base64
import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser

MAX_EMAIL_BYTES = 100 * 1024


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@dataclass
class Parts:
    text: str
    html: str
    images: dict[str, tuple[str, bytes]]  # Content-ID (without <>) → (type, bytes)


def parts(message: EmailMessage) -> Parts:
    """The text, the HTML and the inline images of a multipart/alternative email (the
    HTML alone or in a multipart/related with its images)."""
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    alternatives = list(message.iter_parts())
    assert [p.get_content_type() for p in alternatives][0] == "text/plain"
    text = alternatives[0].get_content()
    html, images = "", {}
    for part in alternatives[1:]:
        if part.get_content_type() == "text/html":
            html = part.get_content()
        elif part.get_content_type() == "multipart/related":
            inner = list(part.iter_parts())
            assert inner[0].get_content_type() == "text/html"
            html = inner[0].get_content()
            for image in inner[1:]:
                assert image.get_content_maintype() == "image"
                assert image.get_content_disposition() == "inline"
                images[image["Content-ID"].strip("<>")] = (
                    image.get_content_type(),
                    image.get_content(),
                )
    assert html, "no HTML alternative"
    return Parts(text, html, images)


def html_with_images_inline(found: Parts) -> str:
    """The HTML as a mail client shows it: each cid: reference replaced by its part."""
    html = found.html
    for cid, (content_type, data) in found.images.items():
        uri = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
        html = html.replace(f"cid:{cid}", uri)
    return html


class _Lint(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.cids: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("style", "link", "script", "iframe", "object", "embed", "form", "div"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name == "class" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            if name in ("src", "background", "srcset", "poster", "data"):
                if tag == "img" and name == "src" and value.startswith("cid:"):
                    self.cids.append(value[4:])
                else:
                    self.problems.append(f"<{tag} {name}={value[:60]!r}>")
            if name == "style" and ("url(" in value or "@import" in value):
                self.problems.append(f"<{tag} style with url()>")
            if name == "href":
                self.links.append(value)


def lint(html: str) -> _Lint:
    """Only inline styles (no <style>, <link>, class), no script, no remote source of any
    kind (images only as cid:), layout in tables (no <div>)."""
    checker = _Lint()
    checker.feed(html)
    checker.close()
    if "table" not in checker.tags:
        checker.problems.append("no <table> layout")
    return checker
