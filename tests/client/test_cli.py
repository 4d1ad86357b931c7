"""`sealbox send` and `sealbox open`: encrypt and decrypt on this machine, over HTTP, with a
personal API token — against a real server (live_server) and real files on disk."""

import hashlib
import io
import os
import sys

import pytest

from sealbox import cli
from sealbox.accounts import services as accounts
from sealbox.exchange.models import Grant, Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_token(user, plans):
    _token, secret = accounts.create_api_token(None, user, "cli", 30)
    return secret


@pytest.fixture
def server(live_server, settings, monkeypatch, api_token):
    settings.SEALBOX_BASE_URL = live_server.url
    monkeypatch.setenv("SEALBOX_URL", live_server.url)
    monkeypatch.setenv("SEALBOX_API_TOKEN", api_token)
    return live_server.url


def cli_lines(err: str) -> list[str]:
    """The command's own lines (the live server in this process logs to stderr too)."""
    return [line for line in err.splitlines() if line.startswith("sealbox:")]


def run(capsys, monkeypatch, *argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_send_links_and_open_to_a_folder(server, tmp_path, capsys, monkeypatch):
    report = tmp_path / "report.pdf"
    report.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    notes = tmp_path / "notes.txt"
    notes.write_text("café\n")
    code, out, err = run(
        capsys,
        monkeypatch,
        "send",
        str(report),
        str(notes),
        "--to",
        "client@example.org",
        "--subject",
        "Year-end",
        "--message",
        "Here you are.",
        "--links",
        "--max-opens",
        "2",
    )
    assert code == 0, err
    assert out.startswith("Sent M-")
    line = next(line for line in out.splitlines() if line.startswith("client@example.org: "))
    link = line.split(": ", 1)[1].split("  (opening code ")[0]
    opening_code = line.rsplit("opening code ", 1)[1].rstrip(")")
    # The server never received the link secret.
    secret = link.split("#", 1)[1]
    assert not Grant.objects.filter(token__contains=secret).exists()

    received = tmp_path / "received"
    code, out, err = run(
        capsys, monkeypatch, "open", link, "--code", opening_code, "--output", str(received)
    )
    assert code == 0, err
    assert out.splitlines()[0] == "Here you are."
    assert (
        hashlib.sha256((received / "report.pdf").read_bytes()).digest()
        == hashlib.sha256(report.read_bytes()).digest()
    )
    assert (received / "notes.txt").read_text() == "café\n"
    assert "Opens left: 1" in err
    # Opening again to the same folder keeps both copies.
    run(capsys, monkeypatch, "open", link, "--code", opening_code, "--output", str(received))
    assert (received / "notes (2).txt").exists()


def test_password_from_stdin(server, tmp_path, capsys, monkeypatch):
    code, out, err = run(
        capsys,
        monkeypatch,
        "send",
        "--to",
        "client@example.org",
        "--subject",
        "Payslip",
        "--message",
        "Secret pay",
        "--links",
        "--verification",
        "password",
        "--password-stdin",
        stdin="harbour tulip 77\n",
    )
    assert code == 0, err
    link = out.splitlines()[1].split(": ", 1)[1]
    code, _, err = run(capsys, monkeypatch, "open", link, "--password-stdin", stdin="wrong guess\n")
    assert code == 1 and cli_lines(err) == ["sealbox: This password is not correct."]
    code, out, _ = run(
        capsys, monkeypatch, "open", link, "--password-stdin", stdin="harbour tulip 77\n"
    )
    assert code == 0 and out.startswith("Secret pay")
    # One open allowed: the next attempt says so plainly.
    code, _, err = run(
        capsys, monkeypatch, "open", link, "--password-stdin", stdin="harbour tulip 77\n"
    )
    assert code == 1
    assert cli_lines(err) == [
        "sealbox: This message is no longer available. Ask the sender to send it again."
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["send", "--to", "a@example.org", "--subject", "x", "/no/such/file"],
            "sealbox: no such file: /no/such/file",
        ),
        (
            ["send", "--to", "a@example.org", "--subject", " ", "--links"],
            "sealbox: Write a subject.",
        ),
        (
            ["send", "--to", "a@example.org", "--subject", "x", "--expires-days", "400"],
            "sealbox: Your plan keeps messages at most 30 days.",
        ),
        (["open", "https://elsewhere.example/x"], "sealbox: not a Sealbox link"),
    ],
)
def test_bad_input_is_one_line_and_sends_nothing(server, capsys, monkeypatch, argv, message):
    code, _, err = run(capsys, monkeypatch, *argv)
    assert code == 1
    [line] = cli_lines(err)
    assert line.startswith(message)
    assert not Message.objects.exists()


def test_send_needs_a_token(server, capsys, monkeypatch):
    monkeypatch.delenv("SEALBOX_API_TOKEN")
    code, _, err = run(capsys, monkeypatch, "send", "--to", "a@example.org", "--subject", "x")
    assert code == 1 and "SEALBOX_API_TOKEN" in err


def test_a_revoked_token_is_refused(server, user, capsys, monkeypatch):
    from sealbox.accounts.models import ApiToken

    ApiToken.objects.update(revoked_at=ApiToken.objects.first().created_at)
    code, _, err = run(capsys, monkeypatch, "send", "--to", "a@example.org", "--subject", "x")
    assert code == 1 and "Log in" in err
