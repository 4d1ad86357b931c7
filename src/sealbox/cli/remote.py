"""What the client commands share: the server's address and API token, the message text
and files to send, the proof arguments, and one way to turn the client's errors into
the command's one line."""

from __future__ import annotations

import argparse
import os

from sealbox.cli.common import CommandError


def server_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("SEALBOX_URL") or os.environ.get("SEALBOX_BASE_URL")
    if not url:
        raise CommandError("no server address: use --url or set SEALBOX_URL")
    return url.rstrip("/")


def api_transport(args: argparse.Namespace):
    """The server's API with the user's personal token (their envelopes, their messages)."""
    from sealbox.client.http import HttpTransport

    token = os.environ.get("SEALBOX_API_TOKEN", "")
    if not token:
        raise CommandError("set SEALBOX_API_TOKEN to a personal API token (Account, Security)")
    url = server_url(args)
    return url, HttpTransport(url, token=token)


def message_text(args: argparse.Namespace) -> str:
    from pathlib import Path

    if args.message_file:
        try:
            return Path(args.message_file).read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot read {args.message_file}: {error.strerror}") from None
    return args.message or ""


def attachments_of(names: list[str]) -> list:
    from pathlib import Path

    from sealbox.client import messages as client

    attachments = []
    for name in names:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"no such file: {name}")
        attachments.append(client.Attachment(path.name, path=path))
    return attachments


class ClientCall:
    """Turns the client's refusals and failures into the command's one line."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, _traceback) -> bool:
        from sealbox.client.http import StoreError
        from sealbox.client.messages import ClientError
        from sealbox.crypto import CryptoError

        if error is None:
            return False
        if isinstance(error, ClientError | StoreError):
            raise CommandError(str(error)) from None
        if isinstance(error, CryptoError):
            raise CommandError(f"cannot decrypt: {error}") from None
        if isinstance(error, OSError):
            raise CommandError(f"cannot reach {self.where}: {error}") from None
        return False


def print_links(envelope: dict) -> None:
    for entry in envelope["recipients"]:
        who = entry["email"] or "public link"
        code = entry.get("opening_code")
        print(f"{who}: {entry['url']}" + (f"  (opening code {code})" if code else ""))


def proof_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    proof = parser.add_mutually_exclusive_group()
    proof.add_argument("--code", help=f"the opening code, or the code sent by SMS or email{what}")
    proof.add_argument("--send-code", action="store_true", help="ask for a code by SMS or email")
    proof.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def message_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    text = parser.add_mutually_exclusive_group(required=required)
    text.add_argument("--message", help="the message text")
    text.add_argument("--message-file", help="read the message text from this file")
