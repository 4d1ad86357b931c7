"""Every CLI HTTP failure is one line saying what failed and what to do.

A real forwarding proxy stands between the CLI and the live server and, like nginx's
default `client_max_body_size 1m`, refuses larger bodies with its own HTML page."""

import http.client
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from sealbox.client.messages import CHUNK_BYTES, ClientError
from tests.client.test_cli import api_token, cli_lines, run, server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

PROXY_BODY_LIMIT = 1024 * 1024


def proxy_to(upstream: str, *, body_limit: int = PROXY_BODY_LIMIT, status: int | None = None):
    target = urlsplit(upstream)

    class Proxy(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if status is not None or length > body_limit:
                # nginx reads and drops the body it refuses (lingering close), so the
                # client finishes sending and reads the answer.
                remaining = length
                while remaining:
                    remaining -= len(self.rfile.read(min(remaining, 1 << 20)) or b"x" * remaining)
                code = status or 413
                page = f"<html><body><h1>{code}</h1><hr>nginx</body></html>".encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(page)
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else None
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


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
