"""SMS gateways chosen by SEALBOX_SMS_URL: console, file (JSON lines), Twilio, webhook."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response

from sealbox.notify import sms
from sealbox.notify.sms import (
    ConsoleGateway,
    FileGateway,
    SMSConfigurationError,
    SMSDeliveryError,
    TwilioGateway,
    WebhookGateway,
    gateway_from_url,
)

BODY = "Your Sealbox code is 123456. It expires in 10 minutes."


def test_console_prints_the_sms(capsys):
    ConsoleGateway().send("+15145550100", BODY)
    assert capsys.readouterr().out == f"SMS to +15145550100: {BODY}\n"


def test_file_appends_one_json_object_per_line(tmp_path, clock):
    path = tmp_path / "sub" / "sms.jsonl"
    gateway = gateway_from_url(f"file://{path}")
    assert gateway == FileGateway(str(path))
    gateway.send("+15145550100", BODY)
    clock.advance(seconds=5)
    gateway.send("+33612345678", "Votre code Sealbox est 654321. Il expire dans 10 minutes.")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"to": "+15145550100", "body": BODY, "sent_at": "2026-11-02T09:00:00+00:00"},
        {
            "to": "+33612345678",
            "body": "Votre code Sealbox est 654321. Il expire dans 10 minutes.",
            "sent_at": "2026-11-02T09:00:05+00:00",
        },
    ]
    assert (path.stat().st_mode & 0o777) == 0o600


def test_file_errors_do_not_quote_the_body(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(SMSDeliveryError) as error:
        FileGateway(str(blocker / "sms.jsonl")).send("+15145550100", BODY)
    assert "123456" not in str(error.value)


class FakeTwilioHttp(HttpClient):
    def __init__(self, status=201, code=21211):
        super().__init__(logger=None, is_async=False)
        self.status = status
        self.code = code
        self.requests = []

    def request(
        self,
        method,
        uri,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ):
        self.requests.append({"method": method, "uri": uri, "data": data, "auth": auth})
        if self.status >= 400:
            return Response(
                self.status,
                json.dumps({"code": self.code, "message": "refused", "status": self.status}),
            )
        return Response(self.status, json.dumps({"sid": "SM123", "status": "queued"}))


def test_twilio_url_is_read_with_the_plus_of_the_sender():
    gateway = gateway_from_url("twilio://AC123:s3cret@?from=+15145550000")
    assert gateway == TwilioGateway("AC123", "s3cret", "+15145550000")


def test_twilio_sends_through_the_twilio_client():
    http = FakeTwilioHttp()
    TwilioGateway("AC123", "s3cret", "+15145550000", http_client=http).send("+15145550100", BODY)
    [request] = http.requests
    assert request["method"] == "POST"
    assert request["uri"] == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert request["data"] == {"To": "+15145550100", "From": "+15145550000", "Body": BODY}
    assert request["auth"] == ("AC123", "s3cret")


def test_twilio_refusals_become_delivery_errors_without_the_body():
    http = FakeTwilioHttp(status=400)
    with pytest.raises(SMSDeliveryError) as error:
        TwilioGateway("AC123", "s3cret", "+15145550000", http_client=http).send(
            "+15145550100", BODY
        )
    assert "status 400" in str(error.value)
    assert "123456" not in str(error.value)


@pytest.mark.parametrize(
    "status, code, transient",
    [
        (400, 21211, False),  # not a valid number: never
        (401, 20003, False),  # wrong credentials
        (429, 20429, True),  # too many requests: later
        (503, 20503, True),
        (500, 20500, True),
        (400, 30001, True),  # queue overflow
    ],
)
def test_twilio_says_which_refusals_are_worth_another_attempt(status, code, transient):
    http = FakeTwilioHttp(status=status, code=code)
    with pytest.raises(SMSDeliveryError) as error:
        TwilioGateway("AC123", "s3cret", "+15145550000", http_client=http).send(
            "+15145550100", BODY, key="ignored"
        )
    assert error.value.transient is transient
    assert "123456" not in str(error.value)


class Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        Hook.received.append(
            {
                "path": self.path,
                "json": json.loads(self.rfile.read(length)),
                "auth": self.headers.get("Authorization"),
                "type": self.headers.get("Content-Type"),
                "key": self.headers.get("Idempotency-Key"),
            }
        )
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Hook.received = []
    Hook.status = 200
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_webhook_posts_json_with_basic_auth_from_the_url(webhook):
    gateway = gateway_from_url(webhook.replace("http://", "http://sealbox:p%40ss@") + "/sms?x=1")
    assert isinstance(gateway, WebhookGateway)
    assert "p@ss" not in gateway.url and "sealbox" not in gateway.url
    gateway.send("+15145550100", BODY)
    [call] = Hook.received
    assert call["path"] == "/sms?x=1"
    assert call["json"] == {"to": "+15145550100", "body": BODY}
    assert call["type"] == "application/json"
    assert call["auth"] == "Basic " + base64.b64encode(b"sealbox:p@ss").decode()


def test_webhook_errors_are_delivery_errors(webhook):
    Hook.status = 502
    with pytest.raises(SMSDeliveryError) as error:
        gateway_from_url(webhook + "/sms").send("+15145550100", BODY)
    assert "502" in str(error.value) and "123456" not in str(error.value)
    assert error.value.transient
    with pytest.raises(SMSDeliveryError) as error:
        gateway_from_url("http://127.0.0.1:9/sms").send("+15145550100", BODY)
    assert error.value.transient


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
def test_every_webhook_error_is_worth_another_attempt(webhook, status):
    # The webhook's meaning is the operator's: any answer but 2xx is retried, a few times.
    Hook.status = status
    with pytest.raises(SMSDeliveryError) as error:
        gateway_from_url(webhook + "/sms").send("+15145550100", BODY)
    assert error.value.transient


def test_the_webhook_gets_the_same_idempotency_key_on_every_attempt(webhook):
    gateway = gateway_from_url(webhook + "/sms")
    Hook.status = 503
    with pytest.raises(SMSDeliveryError):
        gateway.send("+15145550100", BODY, key="3f1c0d6e-outbox-id")
    Hook.status = 200
    gateway.send("+15145550100", BODY, key="3f1c0d6e-outbox-id")
    assert [call["key"] for call in Hook.received] == ["3f1c0d6e-outbox-id"] * 2
    gateway.send("+15145550100", BODY)  # no key, no header
    assert Hook.received[-1]["key"] is None


def test_a_broken_configuration_is_not_retried(settings):
    settings.SEALBOX_SMS_URL = "smtp://nope"
    with pytest.raises(SMSDeliveryError) as error:
        sms.send_sms_now("+15145550100", BODY)
    assert not error.value.transient


@pytest.mark.parametrize(
    "url", ["smtp://host", "twilio://AC123@?from=+1", "twilio://AC1:tok@", "file://", "https://"]
)
def test_unusable_urls_are_refused(url):
    with pytest.raises(SMSConfigurationError):
        gateway_from_url(url)


def test_send_now_uses_the_configured_gateway(settings, tmp_path):
    settings.SEALBOX_SMS_URL = f"file://{tmp_path}/out.jsonl"
    sms.send_sms_now("+15145550100", BODY)
    assert json.loads((tmp_path / "out.jsonl").read_text())["body"] == BODY
    settings.SEALBOX_SMS_URL = "smtp://nope"
    with pytest.raises(SMSDeliveryError):
        sms.send_sms_now("+15145550100", BODY)
