"""Secure messages from the command line, encrypted and decrypted on this machine: send,
open, reply."""

from __future__ import annotations

import argparse
import sys

from sealbox.cli.common import CommandError, read_password
from sealbox.cli.remote import (
    ClientCall,
    api_transport,
    attachments_of,
    message_arguments,
    message_text,
    proof_arguments,
)


def add_parsers(commands) -> None:
    send = commands.add_parser("send", help="encrypt and send a secure message (API token)")
    send.add_argument("files", nargs="*", metavar="FILE", help="files to attach")
    send.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="EMAIL",
        help="a recipient (repeat for several)",
    )
    send.add_argument("--subject", required=True)
    send.add_argument("--message", help="the message text")
    send.add_argument("--message-file", help="read the message text from this file")
    send.add_argument(
        "--verification",
        default="opening_code",
        choices=["opening_code", "email_code", "sms_code", "password"],
    )
    send.add_argument("--phone", help="the recipient's mobile phone (SMS code)")
    send.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the recipients' password from standard input",
    )
    send.add_argument("--expires-days", type=int, default=7)
    send.add_argument("--max-opens", type=int, default=1)
    send.add_argument("--language", default="en", choices=["en", "fr"])
    send.add_argument(
        "--links",
        action="store_true",
        help="print the links instead of emailing them (the server never sees them)",
    )
    send.add_argument(
        "--no-direct",
        action="store_true",
        help="upload through the server even where it offers the object store directly",
    )
    send.add_argument("--url", help="the server (default: $SEALBOX_URL)")
    send.set_defaults(handler=cmd_send)

    open_ = commands.add_parser("open", help="open a secure message link and decrypt it here")
    open_.add_argument("link")
    open_.add_argument("--code", help="the opening code, or the code sent by SMS or email")
    open_.add_argument("--send-code", action="store_true", help="ask for a code by SMS or email")
    open_.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    open_.add_argument("--output", default=".", help="folder for the files (default: here)")
    open_.set_defaults(handler=cmd_open)


def add_reply_parser(commands) -> None:
    reply = commands.add_parser(
        "reply", help="open a secure message link and reply to its sender, encrypted here"
    )
    reply.add_argument("link")
    reply.add_argument("files", nargs="*", metavar="FILE", help="files to attach")
    message_arguments(reply)
    proof_arguments(reply, "")
    reply.add_argument(
        "--output", help="also save the message's files in this folder (default: not saved)"
    )
    reply.set_defaults(handler=cmd_reply)


def cmd_send(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from sealbox.client import messages as client

    url, transport = api_transport(args)
    password = read_password(args) if args.verification == "password" else None
    body = message_text(args)
    attachments = attachments_of(args.files)
    recipients = [
        client.Recipient(email, args.verification, phone=args.phone or "", password=password)
        for email in args.to
    ]
    with ClientCall(url):
        sent = client.send_message(
            transport,
            base_url=url,
            subject=args.subject,
            body=body,
            recipients=recipients,
            expires_at=datetime.now(UTC) + timedelta(days=args.expires_days),
            attachments=attachments,
            delivery="links" if args.links else "email",
            direct=not args.no_direct,
            max_opens=args.max_opens,
            language=args.language,
        )
    print(f"Sent {sent.reference} to {', '.join(args.to)}.")
    if args.links:
        for email, link in sent.links.items():
            code = sent.opening_codes.get(email)
            print(f"{email}: {link}" + (f"  (opening code {code})" if code else ""))
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    from sealbox.client import messages as client
    from sealbox.client.http import HttpTransport
    from sealbox.crypto import CryptoError, links

    try:
        parsed = links.parse_link(args.link)
    except CryptoError as error:
        raise CommandError(f"not a Sealbox link: {error}") from None
    transport = HttpTransport(parsed.base_url)
    with ClientCall(parsed.base_url):
        if args.send_code:
            sent = client.request_code(transport, args.link)
            print(f"A code was sent to {sent['sent_to']}. Run again with --code.")
            return 0
        password = read_password(args) if args.password_stdin else None
        opened = client.open_message(
            transport, args.link, code=args.code or "", password=password, output_dir=args.output
        )
    print(opened.body)
    for name, path in opened.saved.items():
        print(f"Saved {name} to {path}")
    print(f"Opens left: {opened.opens_left}", file=sys.stderr)
    return 0


def cmd_reply(args: argparse.Namespace) -> int:
    from sealbox.client import envelopes as client
    from sealbox.client import messages
    from sealbox.client.http import HttpTransport
    from sealbox.crypto import CryptoError, links

    try:
        parsed = links.parse_link(args.link)
    except CryptoError as error:
        raise CommandError(f"not a Sealbox link: {error}") from None
    transport = HttpTransport(parsed.base_url)
    with ClientCall(parsed.base_url):
        if args.send_code:
            sent = messages.request_code(transport, args.link)
            print(f"A code was sent to {sent['sent_to']}. Run again with --code.")
            return 0
        body = message_text(args)
        attachments = attachments_of(args.files)
        password = read_password(args) if args.password_stdin else None
        replied = client.reply_to_message(
            transport,
            args.link,
            body=body,
            attachments=attachments,
            code=args.code or "",
            password=password,
            output_dir=args.output,
        )
    print(replied.opened.body)
    for name, path in replied.opened.saved.items():
        print(f"Saved {name} to {path}")
    print(f"Replied with {replied.reference}: only the sender can open it.")
    print(f"Opens left: {replied.opened.opens_left}", file=sys.stderr)
    return 0
