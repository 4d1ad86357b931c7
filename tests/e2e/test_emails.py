"""The branded email as a recipient sees it: the HTML received over SMTP, rendered in
Chromium (the CID logo replaced by its part, as a mail client does), on a desktop and a
phone width: the logo, the sender and the button are there and fit."""

from __future__ import annotations

import struct
import zlib

import pytest

from sealbox.client import messages as client
from tests.exchange.conftest import send, sender, sender_transport  # noqa: F401 - fixtures
from tests.notify.email_checks import html_with_images_inline, parts
from tests.notify.test_branded_emails import smtp  # noqa: F401 - fixture
from tests.notify.test_email_smtp import smtp_server  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid PNG, as an organisation's logo would be (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


LOGO = png(160, 48, (122, 31, 92))


@pytest.mark.parametrize(
    ("device", "viewport"),
    [("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})],
)
def test_the_email_shows_logo_sender_and_button(
    browser,
    smtp,  # noqa: F811
    send,  # noqa: F811
    sender,  # noqa: F811
    tmp_path,
    device,
    viewport,
):
    organisation = sender.organisation
    organisation.logo, organisation.logo_type = LOGO, "image/png"
    organisation.accent_colour = "#7a1f5c"
    organisation.save()
    send(
        delivery="email",
        recipients=[
            client.Recipient("client@example.org", verification="sms_code", phone="+15145550199")
        ],
    )
    [received] = smtp.to("client@example.org")
    html = html_with_images_inline(parts(received))
    assert "cid:" not in html

    context = browser.new_context(viewport=viewport, java_script_enabled=False)
    try:
        page = context.new_page()
        # Nothing may be fetched: a mail client showing this email loads nothing remote.
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.set_content(html, wait_until="load")

        logo = page.get_by_role("img", name="Tremblay Avocats")
        box = logo.bounding_box()
        assert box and box["height"] == pytest.approx(48, abs=1) and box["width"] > 100
        assert logo.evaluate("img => img.complete && img.naturalWidth") == 160

        name = page.get_by_text("Sam Sender", exact=True).first
        assert name.is_visible() and name.bounding_box()["width"] > 0
        assert page.get_by_text("sender@example.com").first.is_visible()
        assert page.get_by_text("a code sent by SMS to •••• 0199").is_visible()

        button = page.get_by_role("link", name="Open the message")
        box = button.bounding_box()
        assert button.is_visible() and box["height"] >= 40
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        colour = button.evaluate("a => getComputedStyle(a.parentElement).backgroundColor")
        assert colour == "rgb(122, 31, 92)"

        # The layout fits the width (no sideways scrolling on a phone).
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        assert [url for url in requests if not url.startswith(("data:", "about:"))] == []
        shot = tmp_path / f"email-{device}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
    finally:
        context.close()
