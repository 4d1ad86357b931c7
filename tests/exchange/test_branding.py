"""The organisation's logo and accent colour on recipient pages and in their emails."""

import base64

import pytest

from sealbox.crypto import links
from tests.exchange.conftest import emails_to

pytestmark = pytest.mark.django_db

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def branded(sender):
    organisation = sender.organisation
    organisation.logo = PNG
    organisation.logo_type = "image/png"
    organisation.accent_colour = "#7a1f5c"
    organisation.save()
    return organisation


def test_open_page_shows_the_senders_logo_and_colour(branded, send, recipient_transport):
    sent = send()
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    page = recipient_transport.client.get(f"/o/{token}").content.decode()
    assert f'src="/organisation-logo/{branded.pk}/"' in page
    assert f'href="/organisation-theme/{branded.pk}.css"' in page
    assert 'alt="Tremblay Avocats"' in page
    css = recipient_transport.client.get(f"/organisation-theme/{branded.pk}.css")
    assert css["Content-Type"].startswith("text/css")
    assert css.content.decode().strip() == ":root { --accent: #7a1f5c; }"
    logo = recipient_transport.client.get(f"/organisation-logo/{branded.pk}/")
    assert logo.content == PNG and logo["Content-Type"] == "image/png"


def test_notification_email_carries_the_brand(branded, send):
    send(delivery="email")
    email = emails_to("client@example.org")[0]
    html = email.alternatives[0][0]
    # The logo goes inside the email (a CID part): nothing is fetched from the server.
    assert 'src="cid:logo@sealbox"' in html
    assert "/organisation-logo/" not in html
    assert "background-color:#7a1f5c" in html
    [logo] = email.inline
    assert base64.b64decode(logo["data"]) == PNG and logo["type"] == "image/png"


def test_no_brand_no_extra_requests(send, recipient_transport, sender):
    sent = send()
    token = links.parse_link(sent.links["client@example.org"]).grant_token
    page = recipient_transport.client.get(f"/o/{token}").content.decode()
    assert "organisation-logo" not in page and "organisation-theme" not in page
    assert (
        recipient_transport.client.get(
            f"/organisation-theme/{sender.organisation.pk}.css"
        ).status_code
        == 404
    )


def test_the_logo_is_not_loaded_with_every_request(branded, sender):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sealbox.accounts.models import User

    with CaptureQueriesContext(connection) as queries:
        user = User.objects.get(pk=sender.pk)
        assert user.organisation.name == "Tremblay Avocats"
    column = '"accounts_organisation"."logo"'
    assert queries.captured_queries
    assert not any(column in q["sql"] for q in queries.captured_queries)
