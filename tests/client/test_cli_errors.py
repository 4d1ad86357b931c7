"""Every CLI HTTP failure is one line saying what failed and what to do.

A real forwarding proxy stands between the CLI and the live server and, like nginx's
default `client_max_body_size 1m`, refuses larger bodies with its own HTML page."""

import os

import pytest

from sealbox.client.messages import CHUNK_BYTES, ClientError
from tests.client.proxy import proxy_to
from tests.client.test_cli import api_token, cli_lines, run, server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def behind_a_proxy(server, monkeypatch):  # noqa: F811
    httpd, url = proxy_to(server)
    monkeypatch.setenv("SEALBOX_URL", url)
    yield url
    httpd.shutdown()


def test_a_proxy_body_limit_is_explained(behind_a_proxy, tmp_path, capsys, monkeypatch):
    big = tmp_path / "scan.pdf"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    code, _, err = run(
        capsys, monkeypatch, "send", str(big), "--to", "a@example.org", "--subject", "x"
    )
    assert code == 1
    [line] = cli_lines(err)
    mib = CHUNK_BYTES // (1024 * 1024)
    assert "HTTP 413" in line
    assert f"refused a {mib} MiB upload chunk" in line
    assert "client_max_body_size" in line


def test_an_unavailable_server_is_one_line(server, capsys, monkeypatch):  # noqa: F811
    httpd, url = proxy_to(server, status=502)
    monkeypatch.setenv("SEALBOX_URL", url)
    try:
        code, _, err = run(capsys, monkeypatch, "send", "--to", "a@example.org", "--subject", "x")
    finally:
        httpd.shutdown()
    assert code == 1
    [line] = cli_lines(err)
    assert line == "sealbox: the server is unavailable (HTTP 502); try again in a moment"


def test_a_json_message_wins_over_the_status():
    assert str(ClientError(429, {"message": "Too many attempts."})) == "Too many attempts."
    assert str(ClientError(418, None)) == "the server answered HTTP 418"
