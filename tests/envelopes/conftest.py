"""Helpers for the envelope and reply tests: seal a submission or a reply for its owner
the way the browser does (fresh content key, one account grant), over Django's client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from sealbox.crypto import ece, grants, links
from sealbox.crypto._b64 import b64url_encode
from sealbox.envelopes import services
from sealbox.envelopes.models import Envelope
from sealbox.lib import clock
from tests.exchange.conftest import (  # noqa: F401 - shared fixtures
    DjangoTransport,
    emails_to,
    link_in,
    recipient_transport,
    resend_cooldown,
    send,
    sender,
    sender_transport,
)

SUBMITTER_IP = "203.0.113.77"


@dataclass
class Sealed:
    status: int
    data: dict
    link: str = ""  # the owner's link (with its secret), as emailed


def api(client: Client, method: str, path: str, body=None, *, ip=SUBMITTER_IP, token=""):
    extra = {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": "sealbox-tests"}
    if token:
        extra["HTTP_X_UPLOAD_TOKEN"] = token
    if isinstance(body, bytes):
        response = client.generic(
            method, path, data=body, content_type="application/octet-stream", **extra
        )
    else:
        response = client.generic(
            method, path, data=json.dumps(body or {}), content_type="application/json", **extra
        )
    data = (
        response.json() if response.get("Content-Type", "").startswith("application/json") else {}
    )
    return response.status_code, data


def seal_for_owner(
    client: Client,
    create_path: str,
    fields: dict,
    finalise_path: str,
    *,
    body: str = "Here are my documents.",
    files: dict[str, bytes] | None = None,
    extensions: dict[str, str] | None = None,
    ip: str = SUBMITTER_IP,
    finalise: bool = True,
) -> Sealed:
    """Encrypt, create, upload and finalise, as envelope-upload.js does."""
    files = files or {}
    content_key = grants.new_content_key()
    refs = {name: f"ref{i:04d}" for i, name in enumerate(files)}
    manifest = {
        "v": 1,
        "body": body,
        "files": [
            {"id": refs[n], "name": n, "type": "application/octet-stream", "size": len(d)}
            for n, d in files.items()
        ],
    }
    manifest_ct = ece.encrypt(json.dumps(manifest).encode(), content_key)
    token = links.new_grant_token()
    grant = grants.create_grant(content_key, token)
    payload = fields | {
        "grant": {
            "grant_token": token,
            "server_secret": b64url_encode(grant.server_secret),
            "wrapped_key": b64url_encode(grant.wrapped_key),
        },
        "blobs": [{"kind": "manifest", "size": len(manifest_ct)}]
        + [
            {
                "kind": "file",
                "size": ece.encrypted_size(len(d)),
                "file_ref": refs[n],
                "extension": (extensions or {}).get(n, n.rsplit(".", 1)[-1]),
            }
            for n, d in files.items()
        ],
    }
    status, data = api(client, "POST", create_path, payload, ip=ip)
    if status != 201:
        return Sealed(status, data)
    upload = data["upload_token"]
    blob_ids = {b["file_ref"] or "manifest": b["id"] for b in data["blobs"]}
    bodies = {"manifest": manifest_ct} | {
        refs[n]: b"".join(ece.encrypt_stream([d], content_key)) for n, d in files.items()
    }
    for ref, ciphertext in bodies.items():
        path = f"/api/v1/uploads/{data['id']}/blobs/{blob_ids[ref]}?offset=0"
        status, answer = api(client, "PUT", path, ciphertext, ip=ip, token=upload)
        assert status == 200, answer
    link = links.build_link(settings.SEALBOX_BASE_URL, token, grant.link_secret)
    if not finalise:
        return Sealed(201, data, link)
    status, answer = api(
        client,
        "POST",
        finalise_path.format(id=data["id"]),
        {"links": [{"grant_token": token, "link": link}]},
        ip=ip,
        token=upload,
    )
    return Sealed(status, data | answer, link)


@pytest.fixture
def make_envelope(sender):  # noqa: F811
    def make(**options) -> Envelope:
        recipients = options.pop("recipients", None)
        public = options.pop("public", False)
        if recipients is None and not public:
            recipients = [services.EnvelopeRecipient("client@example.org")]
        spec = services.EnvelopeSpec(
            subject=options.pop("subject", "Your tax documents"),
            expires_at=clock.now() + timedelta(days=options.pop("days", 7)),
            recipients=recipients or [],
            public=public,
            delivery=options.pop("delivery", "links" if public else "email"),
            **options,
        )
        return services.create_envelope(sender, spec)

    return make


def submit(
    envelope: Envelope,
    *,
    link=None,
    name="Carla Client",
    email="carla@example.org",
    code="",
    password="",
    ip=SUBMITTER_IP,
    **options,
) -> Sealed:
    """A submitter opens the envelope's link, proves who they are, and submits."""
    client = Client()
    link = link or envelope.links.order_by("id").first()
    status, data = api(
        client,
        "POST",
        f"/api/v1/envelope-links/{link.token}/start",
        {"code": code, "password": password},
        ip=ip,
    )
    if status != 200:
        return Sealed(status, data)
    return seal_for_owner(
        client,
        "/api/v1/envelope-submissions",
        {"submit_token": data["submit_token"], "name": name, "email": email},
        "/api/v1/envelope-submissions/{id}/finalise",
        ip=ip,
        **options,
    )


def open_as(client_transport: DjangoTransport, link: str):
    from sealbox.client import messages as client

    return client.open_message(client_transport, link)
