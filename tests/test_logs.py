"""SEALBOX_LOG_FORMAT=json: one JSON object per line, with the request it belongs to."""

import io
import json
import logging

import pytest

from sealbox import logs
from tests.conftest import PASSWORD


@pytest.fixture
def json_lines(settings):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def access_lines(lines):
    return [line for line in lines if line["logger"] == "sealbox.request"]


@pytest.mark.django_db
def test_each_request_gets_an_id_and_one_access_line(client, json_lines):
    response = client.get("/login/", REMOTE_ADDR="203.0.113.9")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    (line,) = access_lines(json_lines())
    assert line["request_id"] == request_id
    assert line["client_ip"] == "203.0.113.9"
    assert line["route"] == "login/"
    assert line["status"] == 200 and line["method"] == "GET"
    assert line["user_id"] is None
    assert isinstance(line["duration_ms"], float)


@pytest.mark.django_db
def test_access_line_names_the_user_and_the_client_behind_a_trusted_proxy(
    client, user, settings, json_lines
):
    settings.SEALBOX_TRUSTED_PROXY_COUNT = 1
    client.post("/login/", {"email": user.email, "password": PASSWORD})
    client.get(
        "/account/",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        HTTP_X_REQUEST_ID="proxy-id-0123456789",
    )
    line = access_lines(json_lines())[-1]
    assert line["client_ip"] == "198.51.100.7"
    assert line["user_id"] == user.pk
    assert line["request_id"] == "proxy-id-0123456789"


@pytest.mark.django_db
def test_untrusted_request_ids_are_replaced(client, json_lines):
    response = client.get("/login/", HTTP_X_REQUEST_ID="forged-by-anyone-0123")
    assert response["X-Request-ID"] != "forged-by-anyone-0123"


@pytest.mark.django_db
def test_routes_not_paths_are_logged(client, json_lines):
    # The recipient page's path holds the grant token: the log names the pattern only.
    client.get("/o/grant-token-that-must-not-be-logged")
    text = json.dumps(json_lines())
    assert "grant-token-that-must-not-be-logged" not in text
    assert access_lines(json_lines())[-1]["route"].startswith("o/")


def test_lines_logged_inside_a_request_carry_its_id():
    token = logs.request_context.set({"request_id": "abc123", "client_ip": "192.0.2.1"})
    try:
        record = logging.makeLogRecord({"msg": "hello %s", "args": ("world",), "name": "x"})
        logs.RequestContextFilter().filter(record)
        entry = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_context.reset(token)
    assert entry["message"] == "hello world"
    assert entry["request_id"] == "abc123" and entry["client_ip"] == "192.0.2.1"


def test_log_format_setting(tmp_path):
    from sealbox import config

    assert config.load({"SEALBOX_DATA_DIR": str(tmp_path)}).log_format == "plain"
    cfg = config.load({"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_LOG_FORMAT": "json"})
    assert cfg.log_format == "json"
    formatter = logs.logging_config("json")["formatters"]["sealbox"]["()"]
    assert formatter == "sealbox.logs.JsonFormatter"
    with pytest.raises(config.ConfigError, match="^SEALBOX_LOG_FORMAT: expected one of"):
        config.load({"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_LOG_FORMAT": "xml"})
