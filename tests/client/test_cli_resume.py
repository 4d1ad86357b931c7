"""`sealbox send` resumes from the server's offset after a cut connection or a dead server.

The faults come from a real proxy between the CLI and the live server: a chunk whose
connection is cut half-way, and an app server answering 502 for a while (restarting)."""

import hashlib
import os
import socket

import pytest

from sealbox.client import messages as client
from sealbox.exchange.models import Blob, Message
from tests.client.proxy import proxy_to
from tests.client.test_cli import api_token, cli_lines, run, server  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(client, "UPLOAD_RETRY_DELAYS_SECONDS", (0.05, 0.1, 0.2, 0.4, 0.8))


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "ledger.bin"
    path.write_bytes(os.urandom(client.CHUNK_BYTES + 5 * 1024 * 1024))  # two chunks
    return path


def send_through(proxy_url, big_file, capsys, monkeypatch):
    monkeypatch.setenv("SEALBOX_URL", proxy_url)
    return run(
        capsys,
        monkeypatch,
        "send",
        str(big_file),
        "--to",
        "client@example.org",
        "--subject",
        "Ledger",
        "--links",
    )


def open_and_compare(out: str, big_file, tmp_path, capsys, monkeypatch):
    link = next(line.split(": ", 1)[1].split("  ")[0] for line in out.splitlines() if "/o/" in line)
    code = out.split("opening code ")[1].rstrip(")\n").split(")")[0]
    target = tmp_path / "opened"
    target.mkdir()
    result = run(capsys, monkeypatch, "open", link, "--code", code, "--output", str(target))
    assert result[0] == 0, result
    opened = target / big_file.name
    assert (
        hashlib.sha256(opened.read_bytes()).digest()
        == hashlib.sha256(big_file.read_bytes()).digest()
    )


def test_a_chunk_cut_half_way_is_sent_again(server, big_file, tmp_path, capsys, monkeypatch):  # noqa: F811
    cuts = []

    def cut_first_big_put(handler, length) -> bool:
        if handler.command == "PUT" and length > 1024 * 1024 and not cuts:
            cuts.append(length)
            handler.rfile.read(length // 2)
            handler.connection.shutdown(socket.SHUT_RDWR)  # the server vanished mid-body
            return True
        return False

    httpd, url = proxy_to(server, body_limit=64 * 1024 * 1024, fault=cut_first_big_put)
    try:
        code, out, err = send_through(url, big_file, capsys, monkeypatch)
        assert code == 0, err
        assert cuts, "the fault never happened"
        assert Message.objects.count() == 1
        blob = Blob.objects.get(kind="file")
        assert blob.stored == blob.size
        # The links name the proxy's address, as they name a real proxy's.
        open_and_compare(out, big_file, tmp_path, capsys, monkeypatch)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_answer_lost_after_the_chunk_was_stored_moves_on(
    server,  # noqa: F811
    big_file,
    tmp_path,
    capsys,
    monkeypatch,  # noqa: F811
):
    import http.client
    from urllib.parse import urlsplit

    lost = []
    target = urlsplit(server)

    def store_then_drop_the_answer(handler, length) -> bool:
        if handler.command == "PUT" and length > 1024 * 1024 and not lost:
            lost.append(length)
            body = handler.rfile.read(length)
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = dict(handler.headers.items())
            upstream.request("PUT", handler.path, body=body, headers=headers)
            assert upstream.getresponse().status == 200
            handler.connection.shutdown(socket.SHUT_RDWR)  # stored; the answer never comes
            return True
        return False

    httpd, url = proxy_to(server, body_limit=64 * 1024 * 1024, fault=store_then_drop_the_answer)
    try:
        code, out, err = send_through(url, big_file, capsys, monkeypatch)
        assert code == 0, err
        assert lost
        # The links name the proxy's address, as they name a real proxy's.
        open_and_compare(out, big_file, tmp_path, capsys, monkeypatch)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_restarting_server_is_waited_for(server, big_file, tmp_path, capsys, monkeypatch):  # noqa: F811
    answered = []

    def bad_gateway_three_times(handler, length) -> bool:
        if handler.command == "PUT" and len(answered) < 3:
            handler.rfile.read(length)
            answered.append(502)
            handler.send_response(502)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return True
        return False

    httpd, url = proxy_to(server, body_limit=64 * 1024 * 1024, fault=bad_gateway_three_times)
    try:
        code, out, err = send_through(url, big_file, capsys, monkeypatch)
        assert code == 0, err
        assert answered == [502, 502, 502]
        # The links name the proxy's address, as they name a real proxy's.
        open_and_compare(out, big_file, tmp_path, capsys, monkeypatch)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_server_that_stays_down_is_one_line(server, big_file, capsys, monkeypatch):  # noqa: F811
    def always_bad_gateway(handler, length) -> bool:
        if handler.command == "PUT":
            handler.rfile.read(length)
            handler.send_response(502)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return True
        return False

    httpd, url = proxy_to(server, body_limit=64 * 1024 * 1024, fault=always_bad_gateway)
    try:
        code, _, err = send_through(url, big_file, capsys, monkeypatch)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 1
    [line] = cli_lines(err)
    assert line == "sealbox: the server is unavailable (HTTP 502); try again in a moment"
