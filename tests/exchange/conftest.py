"""Helpers for the exchange tests: the Python client over Django's test client, a sender
and recipients, and readers for the emails the server sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from sealbox.accounts.models import Role
from sealbox.client import messages as client
from sealbox.lib import clock
from tests.conftest import PASSWORD
from tests.twofactor.conftest import (  # noqa: F401 - shared fixtures
    SMSOutbox,
    resend_cooldown,
    sms_outbox,
)

LINK = re.compile(r"http://\S+/o/[A-Za-z0-9_-]+#[A-Za-z0-9_-]+")
OPENING_CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")
SIX_DIGITS = re.compile(r"\b(\d{6})\b")


class DjangoTransport:
    """The client's transport over Django's test client (real views, real API)."""

    def __init__(self, django_client: Client, *, ip: str = "198.51.100.20"):
        self.client = django_client
        self.ip = ip

    def request(self, method, path, *, json_body=None, body=None, headers=None):
        extra = {"REMOTE_ADDR": self.ip, "HTTP_USER_AGENT": "sealbox-tests"}
        for name, value in (headers or {}).items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        if json_body is not None or method in ("POST",):
            response = self.client.generic(
                method,
                path,
                data=__import__("json").dumps(json_body or {}),
                content_type="application/json",
                **extra,
            )
        else:
            response = self.client.generic(
                method, path, data=body or b"", content_type="application/octet-stream", **extra
            )
        data = None
        if response.status_code != 204 and response.get("Content-Type", "").startswith(
            "application/json"
        ):
            data = response.json()
        return response.status_code, data

    def stream(self, path) -> Iterator[bytes]:
        response = self.client.get(path, REMOTE_ADDR=self.ip, HTTP_USER_AGENT="sealbox-tests")
        if response.status_code == 302:
            # Direct mode: the presigned GET goes to the (real, moto) store over HTTP.
            from sealbox.client.http import stream_from_store

            yield from stream_from_store(response["Location"])
            return
        if response.status_code != 200:
            raise client.ClientError(response.status_code, response.json())
        yield from response.streaming_content


@pytest.fixture
def sender(make_user):
    return make_user("sender@example.com", first_name="Sam", last_name="Sender")


@pytest.fixture
def sender_transport(sender) -> DjangoTransport:
    django_client = Client()
    assert (
        django_client.post("/login/", {"email": sender.email, "password": PASSWORD}).status_code
        == 302
    )
    return DjangoTransport(django_client)


@pytest.fixture
def recipient_transport() -> DjangoTransport:
    return DjangoTransport(Client(), ip="203.0.113.50")


@pytest.fixture
def send(sender_transport):
    """Send a message as `sender` through the API; returns client.Sent."""

    def go(
        *,
        recipients=None,
        attachments=(),
        delivery="links",
        subject="Quarterly report",
        body="Please find the report attached.",
        days=7,
        **options,
    ):
        return client.send_message(
            sender_transport,
            base_url=settings.SEALBOX_BASE_URL,
            subject=subject,
            body=body,
            recipients=recipients or [client.Recipient("client@example.org")],
            expires_at=clock.now() + timedelta(days=days),
            attachments=list(attachments),
            delivery=delivery,
            **options,
        )

    return go


def emails_to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def link_in(message) -> str:
    return LINK.search(message.body).group(0)


def opening_code_in(messages) -> str:
    for message in messages:
        match = OPENING_CODE.search(message.body)
        if match:
            return match.group(1)
    raise AssertionError("no opening code in these emails")


@pytest.fixture
def admin_of_org(make_user):
    return make_user("boss@example.com", role=Role.ADMIN)
