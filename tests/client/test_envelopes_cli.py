"""`sealbox envelope create|list|close|submit` and `sealbox reply` against a real server
(live_server): what the CLI seals, the owner (or the original sender) opens logged in,
byte for byte; the server only ever holds ciphertext."""

import hashlib
import io
import os
import re
import sys
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from sealbox import cli
from sealbox.accounts import services as accounts
from sealbox.client import messages as client
from sealbox.client.http import HttpTransport
from sealbox.envelopes.models import Envelope, EnvelopeState, Submission
from sealbox.exchange import services as exchange
from sealbox.exchange import storage
from sealbox.exchange.models import Blob, Message, MessageKind
from sealbox.lib import clock as sealbox_clock
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

OWNER_LINK = re.compile(r"http://\S+/o/[A-Za-z0-9_-]+#[A-Za-z0-9_-]+")
SIX_DIGITS = re.compile(r"\b(\d{6})\b")


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


def links_in(out: str) -> dict[str, str]:
    """Each `who: URL  (opening code …)` line of the output, by who."""
    found = {}
    for line in out.splitlines():
        match = re.match(r"(\S+(?: link)?): (http\S+)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def owner_link(address: str) -> str:
    """The last link emailed to `address` (the owner's, with its secret)."""
    [*_, email] = [m for m in mail.outbox if address in m.to and OWNER_LINK.search(m.body)]
    return OWNER_LINK.search(email.body).group(0)


def logged_in(server: str, user) -> HttpTransport:
    transport = HttpTransport(server)
    transport.login(user.email, PASSWORD)
    return transport


def sha256(path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def test_create_submit_and_the_owner_opens_the_files_byte_for_byte(
    server, user, tmp_path, capsys, monkeypatch
):
    code, out, err = run(
        capsys,
        monkeypatch,
        "envelope",
        "create",
        "--subject",
        "Year-end documents",
        "--to",
        "client@example.org",
        "--verification",
        "opening_code",
        "--types",
        "pdf, txt",
        "--links",
    )
    assert code == 0, err
    assert out.startswith("Created V-")
    line = next(line for line in out.splitlines() if line.startswith("client@example.org: "))
    opening_code = line.rsplit("opening code ", 1)[1].rstrip(")")
    link = links_in(out)["client@example.org"]
    assert not [m for m in mail.outbox if "client@example.org" in m.to]  # --links: not emailed

    report = tmp_path / "report.pdf"
    report.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    notes = tmp_path / "notes.txt"
    notes.write_text("café\n")
    code, out, err = run(
        capsys,
        monkeypatch,
        "envelope",
        "submit",
        link,
        str(report),
        str(notes),
        "--name",
        "Carla Client",
        "--email",
        "carla@example.org",
        "--message",
        "Both documents, as asked.",
        "--code",
        opening_code.lower(),
    )
    assert code == 0, err
    assert out.startswith("Sent E-") and "Alice Martin (Tremblay Avocats)" in out
    submission = Submission.objects.get()
    assert (submission.name, submission.email) == ("Carla Client", "carla@example.org")
    message = submission.message
    assert message.kind == MessageKind.ENVELOPE and message.reference in out
    # The server holds ciphertext only: neither the text nor a file name is in it.
    stored = b"".join(
        b"".join(storage.read_chunks(exchange.blob_chunk_names(blob)))
        for blob in Blob.objects.filter(message=message)
    )
    assert len(stored) > len(report.read_bytes())
    assert b"report.pdf" not in stored and b"Both documents" not in stored

    # The owner, logged in, opens it through the API: the files match byte for byte.
    received = tmp_path / "received"
    opened = client.open_message(
        logged_in(server, user), owner_link(user.email), output_dir=received
    )
    assert opened.body == "Both documents, as asked."
    assert sha256(received / "report.pdf") == sha256(report)
    assert (received / "notes.txt").read_text() == "café\n"
    # …and the History lists it.
    history = Client()
    history.post("/login/", {"email": user.email, "password": PASSWORD})
    assert message.reference.encode() in history.get("/history/").content

    # The addressed link took its one submission.
    code, out, _ = run(capsys, monkeypatch, "envelope", "list")
    assert code == 0
    assert re.search(r"V-\w+  open  1 submission  expires \S+  Year-end documents", out)
    assert f"client@example.org: {link}  (used)" in out


def test_a_code_sent_by_email_then_the_submission(server, user, capsys, monkeypatch):
    code, out, err = run(
        capsys,
        monkeypatch,
        "envelope",
        "create",
        "--subject",
        "Payslips",
        "--to",
        "client@example.org",
        "--verification",
        "email_code",
    )
    assert code == 0, err
    assert "and emailed its links" in out
    link = links_in(out)["client@example.org"]
    [invitation] = [m for m in mail.outbox if "client@example.org" in m.to]
    assert link in invitation.body

    code, out, err = run(capsys, monkeypatch, "envelope", "submit", link, "--send-code")
    assert code == 0, err
    assert out.strip() == "A code was sent to client@example.org. Run again with --code."
    sent_code = SIX_DIGITS.search(mail.outbox[-1].body).group(1)
    wrong = "000000" if sent_code != "000000" else "111111"
    args = ["envelope", "submit", link, "--name", "C", "--email", "c@example.org"]
    code, _, err = run(capsys, monkeypatch, *args, "--message", "hello", "--code", wrong)
    assert code == 1 and cli_lines(err)[0].startswith("sealbox: ")
    assert not Submission.objects.exists()
    code, out, err = run(capsys, monkeypatch, *args, "--message", "hello", "--code", sent_code)
    assert code == 0, err
    opened = client.open_message(logged_in(server, user), owner_link(user.email))
    assert opened.body == "hello" and opened.files == {}


def test_a_public_envelope_then_closed_by_reference(server, user, capsys, monkeypatch):
    code, out, err = run(
        capsys, monkeypatch, "envelope", "create", "--subject", "Applications", "--public"
    )
    assert code == 0, err
    reference = out.split()[1]
    link = links_in(out)["public link"]
    submit = ["envelope", "submit", link, "--name", "Pat", "--email", "pat@example.org"]
    code, _, err = run(capsys, monkeypatch, *submit, "--message", "My application.")
    assert code == 0, err

    code, out, err = run(capsys, monkeypatch, "envelope", "close", reference)
    assert code == 0, err
    assert out.startswith(f"Closed {reference} (Applications)")
    assert Envelope.objects.get().state == EnvelopeState.CLOSED
    code, _, err = run(capsys, monkeypatch, *submit, "--message", "Too late?")
    assert code == 1
    assert cli_lines(err) == [
        "sealbox: This envelope is no longer available. Ask its owner for a new one."
    ]
    assert Submission.objects.filter(submitted_at__isnull=False).count() == 1


def send_with_replies(server: str, token: str, reply_mode: str, **options) -> client.Sent:
    return client.send_message(
        HttpTransport(server, token=token),
        base_url=server,
        subject="Contract",
        body="Please sign and send it back.",
        recipients=[client.Recipient("client@example.org")],
        expires_at=sealbox_clock.now() + timedelta(days=7),
        delivery="links",
        reply_mode=reply_mode,
        **options,
    )


def test_reply_with_a_file_and_the_sender_opens_it(
    server, user, api_token, tmp_path, capsys, monkeypatch
):
    sent = send_with_replies(server, api_token, "files", max_opens=2)
    link = sent.links["client@example.org"]
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(os.urandom(1024 * 1024 + 5))
    code, out, err = run(
        capsys,
        monkeypatch,
        "reply",
        link,
        str(signed),
        "--message",
        "Signed, see attached.",
        "--code",
        sent.opening_codes["client@example.org"],
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Please sign and send it back."  # what was replied to
    assert lines[-1].startswith("Replied with R-")
    assert "Opens left: 1" in err
    reply = Message.objects.get(kind=MessageKind.REPLY)
    assert reply.reference in out and reply.parent.public_id.hex == sent.id.replace("-", "")

    received = tmp_path / "received"
    opened = client.open_message(
        logged_in(server, user), owner_link(user.email), output_dir=received
    )
    assert opened.body == "Signed, see attached."
    assert sha256(received / "signed.pdf") == sha256(signed)


def test_reply_refusals_are_one_line(server, user, api_token, tmp_path, capsys, monkeypatch):
    attachment = tmp_path / "a.pdf"
    attachment.write_bytes(b"%PDF")
    no_replies = send_with_replies(server, api_token, "none")
    text_only = send_with_replies(server, api_token, "text", max_opens=3)

    def reply(sent, *argv):
        link = sent.links["client@example.org"]
        return run(
            capsys,
            monkeypatch,
            "reply",
            link,
            *argv,
            "--code",
            sent.opening_codes["client@example.org"],
        )

    code, _, err = reply(no_replies, "--message", "Thanks")
    assert code == 1
    assert cli_lines(err) == ["sealbox: The sender does not accept replies to this message."]
    code, _, err = reply(text_only, str(attachment), "--message", "Thanks")
    assert code == 1 and cli_lines(err) == ["sealbox: The sender allows replies without files."]
    code, _, err = reply(text_only)
    assert code == 1 and cli_lines(err) == ["sealbox: Write a reply or attach a file."]
    assert not Message.objects.filter(kind=MessageKind.REPLY).exists()
    code, out, err = reply(text_only, "--message", "Thanks, all good.")
    assert code == 0, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["envelope", "create", "--subject", " ", "--to", "a@example.org"],
            "sealbox: Write a subject.",
        ),
        (
            ["envelope", "create", "--subject", "x", "--public", "--per-ip-hourly", "0"],
            "sealbox: Submissions per hour from one address must be between 1 and 1000.",
        ),
        (
            ["envelope", "create", "--subject", "x", "--to", "a@example.org", "--types", "p/f"],
            "sealbox: “p/f” is not a file extension",
        ),
        (["envelope", "create", "--subject", "x"], "sealbox: name a recipient with --to"),
        (["envelope", "close", "V-NOPE1234"], "sealbox: You have no envelope V-NOPE1234."),
        (["envelope", "submit", "https://elsewhere.example/x"], "sealbox: not a Sealbox envelope"),
        (["reply", "https://elsewhere.example/x"], "sealbox: not a Sealbox link"),
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(server, capsys, monkeypatch, argv, message):
    code, _, err = run(capsys, monkeypatch, *argv)
    assert code == 1
    [line] = cli_lines(err)
    assert line.startswith(message)
    assert not Envelope.objects.exists()


def test_a_file_type_the_envelope_refuses_uploads_nothing(server, tmp_path, capsys, monkeypatch):
    code, out, _ = run(
        capsys,
        monkeypatch,
        "envelope",
        "create",
        "--subject",
        "PDF only",
        "--public",
        "--types",
        "pdf",
    )
    link = links_in(out)["public link"]
    script = tmp_path / "setup.exe"
    script.write_bytes(b"MZ")
    code, _, err = run(
        capsys,
        monkeypatch,
        "envelope",
        "submit",
        link,
        str(script),
        "--name",
        "Mallory",
        "--email",
        "m@example.org",
    )
    assert code == 1
    assert cli_lines(err) == ["sealbox: This type of file is not accepted. Allowed types: pdf."]
    assert not Message.objects.filter(kind=MessageKind.ENVELOPE).exists()
