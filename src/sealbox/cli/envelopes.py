"""Secure envelopes from the command line: create, list and close (API token), and submit
to an envelope link, sealed on this machine for the envelope's owner."""

from __future__ import annotations

import argparse

from sealbox.cli.common import CommandError, read_password
from sealbox.cli.remote import (
    ClientCall,
    api_transport,
    attachments_of,
    message_arguments,
    message_text,
    print_links,
    proof_arguments,
)


def add_parsers(commands) -> None:
    envelope = commands.add_parser(
        "envelope", help="secure envelopes: create, list, close (API token); submit to a link"
    )
    actions = envelope.add_subparsers(dest="envelope_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create an envelope and print its links")
    create.add_argument("--subject", required=True)
    create.add_argument(
        "--to", action="append", metavar="EMAIL", help="a recipient (repeat for several)"
    )
    create.add_argument(
        "--public", action="store_true", help="one link for anyone (e.g. for a web site)"
    )
    create.add_argument(
        "--verification",
        default="none",
        choices=["none", "opening_code", "email_code", "sms_code", "password"],
        help="how each recipient proves who they are (default: none, the link is enough)",
    )
    create.add_argument("--phone", help="the recipient's mobile phone (SMS code)")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the recipients' password from standard input",
    )
    create.add_argument("--instructions", help="shown to the submitter (not encrypted)")
    create.add_argument("--files", default="optional", choices=["none", "optional", "mandatory"])
    create.add_argument("--types", metavar="EXTENSIONS", help='allowed file types: "pdf jpg"')
    create.add_argument("--max-total-mb", type=int, help="largest total size (default: plan's)")
    create.add_argument("--expires-days", type=int, default=7)
    create.add_argument("--reply-expiry-hours", type=int, default=24)
    create.add_argument("--reply-max-opens", type=int, default=3)
    create.add_argument(
        "--no-notify", action="store_true", help="no email when the envelope is first used"
    )
    create.add_argument("--language", choices=["en", "fr"], help="the recipients' language")
    create.add_argument("--per-ip-hourly", type=int, default=5, help="public link")
    create.add_argument("--max-submissions", type=int, default=100, help="public link")
    create.add_argument(
        "--links",
        action="store_true",
        help="print the links (and opening codes) instead of emailing them",
    )
    create.add_argument("--url", help="the server (default: $SEALBOX_URL)")
    create.set_defaults(handler=cmd_envelope_create)

    list_ = actions.add_parser("list", help="your envelopes, newest first, with their links")
    list_.add_argument("--url", help="the server (default: $SEALBOX_URL)")
    list_.set_defaults(handler=cmd_envelope_list)

    close = actions.add_parser("close", help="close an envelope: its links stop working")
    close.add_argument("envelope", help="its reference (V-…), id or one of its links")
    close.add_argument("--url", help="the server (default: $SEALBOX_URL)")
    close.set_defaults(handler=cmd_envelope_close)

    submit = actions.add_parser(
        "submit", help="send a message and files to an envelope link, encrypted here"
    )
    submit.add_argument("link")
    submit.add_argument("files", nargs="*", metavar="FILE", help="files to send")
    submit.add_argument("--name", help="your name (required to send)")
    submit.add_argument("--email", help="your email address (required to send)")
    message_arguments(submit)
    proof_arguments(submit, " (if the envelope asks for one)")
    submit.set_defaults(handler=cmd_envelope_submit)


def cmd_envelope_create(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from sealbox.client import envelopes as client

    if args.public and args.to:
        raise CommandError("a public envelope has no recipients: leave out --to")
    if not args.public and not args.to:
        raise CommandError("name a recipient with --to, or make a public envelope with --public")
    password = read_password(args) if args.verification == "password" else ""
    recipients = [
        {
            "email": email,
            "phone": args.phone or "",
            "verification": args.verification,
            "password": password,
        }
        for email in args.to or []
    ]
    fields = {
        "subject": args.subject,
        "public": args.public,
        "recipients": recipients,
        "instructions": args.instructions or "",
        "files_mode": args.files,
        "allowed_extensions": (args.types or "").replace(",", " ").split(),
        "expires_at": datetime.now(UTC) + timedelta(days=args.expires_days),
        "reply_expiry_hours": args.reply_expiry_hours,
        "reply_max_opens": args.reply_max_opens,
        "notify_on_use": not args.no_notify,
        "delivery": "links" if args.links or args.public else "email",
        "per_ip_hourly": args.per_ip_hourly,
        "max_submissions": args.max_submissions,
    }
    if args.max_total_mb is not None:
        fields["max_total_bytes"] = args.max_total_mb * 1000 * 1000
    if args.language:
        fields["language"] = args.language
    url, transport = api_transport(args)
    with ClientCall(url):
        created = client.create_envelope(transport, **fields)
    emailed = "" if fields["delivery"] == "links" else " and emailed its links"
    print(f"Created {created['reference']} ({created['subject']}){emailed}.")
    print_links(created)
    return 0


def cmd_envelope_list(args: argparse.Namespace) -> int:
    from sealbox.client import envelopes as client

    url, transport = api_transport(args)
    with ClientCall(url):
        envelopes = client.list_envelopes(transport)
    if not envelopes:
        print("You have no envelopes.")
    for envelope in envelopes:
        count = envelope["submissions"]
        print(
            f"{envelope['reference']}  {envelope['state']}  "
            f"{count} submission{'s' if count != 1 else ''}  "
            f"expires {envelope['expires_at'][:10]}  {envelope['subject']}"
        )
        for entry in envelope["recipients"]:
            print(f"  {entry['email'] or 'public link'}: {entry['url']}  ({entry['state']})")
    return 0


def cmd_envelope_close(args: argparse.Namespace) -> int:
    from sealbox.client import envelopes as client

    url, transport = api_transport(args)
    with ClientCall(url):
        envelope = client.find_envelope(transport, args.envelope)
        closed = client.close_envelope(transport, envelope["id"])
    print(f"Closed {closed['reference']} ({closed['subject']}): its links no longer work.")
    return 0


def cmd_envelope_submit(args: argparse.Namespace) -> int:
    from sealbox.client import envelopes as client
    from sealbox.client.http import HttpTransport
    from sealbox.crypto import CryptoError

    try:
        parsed = client.parse_envelope_link(args.link)
    except CryptoError as error:
        raise CommandError(f"not a Sealbox envelope link: {error}") from None
    transport = HttpTransport(parsed.base_url)
    with ClientCall(parsed.base_url):
        if args.send_code:
            sent = client.request_envelope_code(transport, args.link)
            print(f"A code was sent to {sent['sent_to']}. Run again with --code.")
            return 0
        if not (args.name and args.email):
            raise CommandError("say who you are with --name and --email")
        body = message_text(args)
        attachments = attachments_of(args.files)
        password = read_password(args) if args.password_stdin else None
        submitted = client.submit_to_envelope(
            transport,
            args.link,
            name=args.name,
            email=args.email,
            body=body,
            attachments=attachments,
            code=args.code or "",
            password=password,
        )
    print(
        f"Sent {submitted.reference} securely to {submitted.owner} ({submitted.organisation}): "
        f"only they can open it."
    )
    return 0
