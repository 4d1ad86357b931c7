"""The `sealbox` command: serve, worker, createuser, audit, manage; and the client commands
(send, open, reply, envelope) that encrypt and decrypt on this machine."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence


class CommandError(Exception):
    """Printed as one line; the command exits with status 1."""


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sealbox.settings")
    import django

    from sealbox.config import ConfigError

    try:
        django.setup()
    except ConfigError as error:
        print(f"sealbox: configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    from django.conf import settings
    from django.utils import translation

    # The command speaks the server's language, whatever a request handled before set.
    translation.activate(settings.LANGUAGE_CODE)


def migrate() -> None:
    """Apply migrations, under the migration lock (the `migrate` command takes it)."""
    from django.core.management import CommandError as DjangoCommandError
    from django.core.management import call_command

    try:
        call_command("migrate", interactive=False, verbosity=0)
    except DjangoCommandError as error:  # a migration refused to run: it says why
        raise CommandError(str(error)) from None


def cmd_migrate(args: argparse.Namespace) -> int:
    setup_django()
    from django.conf import settings

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    migrate()
    print("Migrations applied.")
    return 0


# --- serve --------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    metrics_directory()
    setup_django()
    from django.conf import settings

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    if not args.no_migrate:
        migrate()
    worker = None if args.no_worker else EmbeddedWorker()
    address = f"http://{args.host}:{args.port}"
    print(
        f"Sealbox is serving on {address} (data in {settings.DATA_DIR}). Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        run_gunicorn(args.host, args.port, args.workers)
    finally:
        if worker is not None:
            worker.stop()
    return 0


class EmbeddedWorker:
    """The background worker `serve` runs beside gunicorn, restarted if it dies.

    Nothing else is watching it on a one-machine install: without a restart, an email or
    a login's SMS code would wait in the queue until someone noticed."""

    RESTART_DELAYS_SECONDS = (1, 2, 5, 10, 30)

    def __init__(self) -> None:
        import threading

        self._stopping = threading.Event()
        self.process = self._start()
        self.restarts = 0
        threading.Thread(target=self._watch, name="sealbox-worker-watch", daemon=True).start()

    @staticmethod
    def _start() -> subprocess.Popen:
        # The migrations are done already.
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "sealbox.cli", "worker", "--no-migrate"]
        )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self.process.wait()
            if self._stopping.is_set():
                return
            delay = self.RESTART_DELAYS_SECONDS[
                min(self.restarts, len(self.RESTART_DELAYS_SECONDS) - 1)
            ]
            print(
                f"sealbox: the background worker stopped (exit {code}); restarting in {delay} s",
                file=sys.stderr,
                flush=True,
            )
            if self._stopping.wait(delay):
                return
            self.restarts += 1
            self.process = self._start()

    def stop(self) -> None:
        self._stopping.set()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def metrics_directory() -> None:
    """Share request metrics between gunicorn's processes (prometheus multi-process mode).

    Set before anything imports prometheus-client, so every process writes its counts
    there; a fresh folder per `serve`, so a restart does not add up the last run's."""
    import shutil
    import tempfile

    from sealbox import config

    try:
        parent = config.data_dir() / "metrics"
    except config.ConfigError:
        return  # setup_django() reports it, in one line
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        shutil.rmtree(old, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(dir=parent)


def run_gunicorn(host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from sealbox.ops.metrics import forget_process
    from sealbox.wsgi import application

    class SealboxServer(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"{host}:{port}",
                "workers": workers,
                # Threads let one worker stream a large upload while serving other pages.
                "worker_class": "gthread",
                "threads": 8,
                "timeout": 120,
                "graceful_timeout": 10,
                # Sealbox logs each request itself (sealbox.request), with the client's
                # address resolved behind trusted proxies and the route, not the path.
                "accesslog": None,
                "errorlog": "-",
                "child_exit": lambda _server, worker: forget_process(worker.pid),
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return application

    try:
        SealboxServer().run()
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise


def cmd_worker(args: argparse.Namespace) -> int:
    setup_django()
    from sealbox.ops.worker import run_worker, wait_for_migrations

    if args.no_migrate:
        wait_for_migrations()
    else:
        migrate()
    start_purge_thread(args.purge_interval)
    run_worker()
    return 0


def start_purge_thread(interval: int) -> None:
    """Run the purge every `interval` seconds beside the task worker (a daemon thread)."""
    import logging
    import threading
    import time

    from django.db import close_old_connections

    from sealbox.lib.errors import StorageUnavailable

    logger = logging.getLogger("sealbox.purge")

    def loop() -> None:
        while True:
            try:
                report = run_purge()
                if any(vars(report).values()):
                    logger.info("purge: %s", vars(report))
            except StorageUnavailable:  # expected in an outage, and logged by the step
                logger.warning("purge incomplete: storage unavailable; trying again later")
            except Exception:  # keep purging on the next round
                logger.exception("purge failed")
            finally:
                close_old_connections()
            time.sleep(interval)

    threading.Thread(target=loop, name="sealbox-purge", daemon=True).start()


def run_purge():
    """Every purge step, each on its own: one that fails (storage unavailable, say) is
    logged and the others still run; the first failure is raised at the end."""
    import logging
    from datetime import timedelta

    from sealbox.audit import retention
    from sealbox.envelopes import services as envelopes
    from sealbox.exchange import services as exchange
    from sealbox.notify import services as notify
    from sealbox.ops import services as ops
    from sealbox.ops.worker import requeue_abandoned_tasks
    from sealbox.ratelimit import services as ratelimit
    from sealbox.twofactor import services as twofactor

    report = exchange.PurgeReport()

    def purge_messages() -> None:
        nonlocal report
        report = exchange.purge()

    def purge_rate_limits() -> int:
        return ratelimit.purge_older_than(timedelta(days=2))

    steps = [
        requeue_abandoned_tasks,
        ops.purge_stale_heartbeats,
        ops.purge_finished_tasks,  # result rows of tasks that ended more than a day ago
        purge_messages,
        envelopes.record_expired,  # envelope.expired events; submissions expire as messages
        purge_rate_limits,
        twofactor.purge_expired,
        notify.purge,  # erases what was left queued; gives stalled messages a task again
        retention.purge_expired_events,  # after a signed checkpoint of each chain
    ]
    failures: list[Exception] = []
    for step in steps:
        try:
            step()
        except Exception as error:  # the other steps do not depend on this one
            logging.getLogger("sealbox.purge").warning(
                "purge step %s failed: %s", step.__qualname__, error
            )
            failures.append(error)
    if failures:
        raise failures[0]
    return report


def cmd_purge(args: argparse.Namespace) -> int:
    setup_django()
    from sealbox.audit.sealing import SealingKeyUnavailable
    from sealbox.lib.errors import StorageUnavailable

    try:
        report = run_purge()
    except StorageUnavailable as error:
        raise CommandError(f"{error.message} The purge did the rest; run it again later.") from None
    except SealingKeyUnavailable as error:
        raise CommandError(f"audit retention skipped: {error}. The purge did the rest.") from None
    print(
        f"Purge done: {report.grants_wiped} grants wiped, {report.blobs_deleted} messages' "
        f"content deleted ({report.messages_expired} expired), "
        f"{report.drafts_removed} unfinished uploads removed."
    )
    if report.deletions_waiting:
        print(f"{report.deletions_waiting} messages' content waits for the storage to delete it.")
    return 0


# --- createuser ------------------------------------------------------------------


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password: use --password-stdin")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Password (again): "):
        raise CommandError("the two passwords differ")
    return password


def cmd_createuser(args: argparse.Namespace) -> int:
    setup_django()
    migrate()
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from sealbox.accounts import services
    from sealbox.accounts.models import Role, User, normalize_email

    email = normalize_email(args.email)
    try:
        validate_email(email)
    except ValidationError:
        raise CommandError(f"{args.email!r} is not a valid email address") from None
    if User.objects.filter(email=email).exists():
        raise CommandError(f"a user with the email {email} already exists")
    password = read_password(args)
    from django.db import transaction

    try:
        with transaction.atomic():
            organisation, created = organisation_for_createuser(args.org, args.plan)
            user = services.create_user(
                email,
                password,
                organisation,
                role=Role.ADMIN if args.admin else Role.MEMBER,
                first_name=args.first_name,
                last_name=args.last_name,
                is_staff=args.operator,
            )
    except services.AccountError as error:
        raise CommandError(str(error)) from None
    role = "administrator" if args.admin else "standard user"
    note = " (new organisation)" if created else ""
    print(f"Created {user.email}, {role} of {organisation.name}{note}.")
    print(f"Organisation id {organisation.pk}, slug {organisation.slug}.")
    if args.operator:
        print(
            "Operators must use two-factor authentication: at the first login, after the "
            "password, they set up a second factor before they can reach anything else."
        )
    return 0


def organisation_for_createuser(reference: str, plan: str):
    """The organisation `--org` names (id, slug or name), or a new one of that name."""
    from sealbox.accounts import services

    try:
        return services.find_organisation(reference), False
    except services.OrganisationNotFound:
        if reference.strip().isdigit():
            raise  # a number is an id: a typo must not create an organisation named "12"
    return services.get_or_create_organisation(reference, plan_name=plan)


def find_organisation(reference: str):
    """The organisation an operator names by id, slug or name; ambiguity is refused."""
    from sealbox.accounts import services

    try:
        return services.find_organisation(reference)
    except services.AccountError as error:
        raise CommandError(str(error)) from None


# --- audit ----------------------------------------------------------------------


def cmd_audit_verify(args: argparse.Namespace) -> int:
    setup_django()
    from sealbox.audit import services as audit

    organisation = find_organisation(args.org) if args.org else None
    total = verified = 0
    broken_chains = breaks = 0
    # Every chain is walked, whatever an earlier one showed: a break in one chain must not
    # hide another.
    for chain in audit.chains(organisation):
        report = audit.verify_chain(chain)
        total += report.checked
        verified += report.verified
        if not report.intact:
            print(audit.describe(report))
            broken_chains += 1
            breaks += report.break_count
    if broken_chains:
        print(
            f"Audit log broken: {breaks} break{'s' if breaks != 1 else ''} in {broken_chains} "
            f"chain{'s' if broken_chains != 1 else ''}; {verified} of {total} events verify."
        )
        return 1
    print(f"Audit log intact: {total} events checked.")
    return 0


def cmd_audit_verify_export(args: argparse.Namespace) -> int:
    # An offline check reads no server data: a throwaway secret key keeps an auditor's
    # folder free of a generated data folder (the secret key is not used).
    os.environ.setdefault("SEALBOX_SECRET_KEY", secrets.token_urlsafe(48))
    setup_django()
    from sealbox.audit.exports import verify_jsonl

    certificate = None
    try:
        if args.certificate:
            with open(args.certificate, "rb") as handle:
                certificate = handle.read()
        with open(args.file, "rb") as lines:
            result = verify_jsonl(lines, certificate=certificate)
    except OSError as error:
        raise CommandError(f"cannot read {error.filename}: {error.strerror}") from None
    print(result.message)
    return 0 if result.ok else 1


# --- send and open: the client, encrypting on this machine ---------------------------------


def server_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("SEALBOX_URL") or os.environ.get("SEALBOX_BASE_URL")
    if not url:
        raise CommandError("no server address: use --url or set SEALBOX_URL")
    return url.rstrip("/")


def cmd_send(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from sealbox.client import messages as client
    from sealbox.client.http import HttpTransport

    token = os.environ.get("SEALBOX_API_TOKEN", "")
    if not token:
        raise CommandError("set SEALBOX_API_TOKEN to a personal API token (Account, Security)")
    password = read_password(args) if args.verification == "password" else None
    body = args.message or ""
    if args.message_file:
        try:
            body = Path(args.message_file).read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"cannot read {args.message_file}: {error.strerror}") from None
    attachments = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"no such file: {name}")
        attachments.append(client.Attachment(path.name, path=path))
    url = server_url(args)
    transport = HttpTransport(url, token=token)
    recipients = [
        client.Recipient(email, args.verification, phone=args.phone or "", password=password)
        for email in args.to
    ]
    try:
        sent = client.send_message(
            transport,
            base_url=url,
            subject=args.subject,
            body=body,
            recipients=recipients,
            expires_at=datetime.now(UTC) + timedelta(days=args.expires_days),
            attachments=attachments,
            delivery="links" if args.links else "email",
            max_opens=args.max_opens,
            language=args.language,
        )
    except client.ClientError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot reach {url}: {error}") from None
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
    try:
        if args.send_code:
            sent = client.request_code(transport, args.link)
            print(f"A code was sent to {sent['sent_to']}. Run again with --code.")
            return 0
        password = read_password(args) if args.password_stdin else None
        opened = client.open_message(
            transport, args.link, code=args.code or "", password=password, output_dir=args.output
        )
    except client.ClientError as error:
        raise CommandError(str(error)) from None
    except CryptoError as error:
        raise CommandError(f"cannot decrypt: {error}") from None
    except OSError as error:
        raise CommandError(f"cannot reach {parsed.base_url}: {error}") from None
    print(opened.body)
    for name, path in opened.saved.items():
        print(f"Saved {name} to {path}")
    print(f"Opens left: {opened.opens_left}", file=sys.stderr)
    return 0


# --- envelopes and replies: the client, sealing on this machine ------------------------------


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
        from sealbox.client.messages import ClientError
        from sealbox.crypto import CryptoError

        if error is None:
            return False
        if isinstance(error, ClientError):
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


def envelope_parser(commands) -> None:
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


# --- manage -----------------------------------------------------------------------


def cmd_manage(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["sealbox manage", *args.arguments])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sealbox", description="Sealbox secure exchange portal")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="apply migrations and serve the portal")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=2, help="web worker processes")
    serve.add_argument(
        "--no-worker", action="store_true", help="do not start the background task worker"
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations at start (run `sealbox migrate` once per deploy)",
    )
    serve.set_defaults(handler=cmd_serve)

    migrate_ = commands.add_parser(
        "migrate", help="apply database migrations (once per deploy; safe to run concurrently)"
    )
    migrate_.set_defaults(handler=cmd_migrate)

    worker = commands.add_parser("worker", help="run background tasks (email, SMS, purge)")
    worker.add_argument(
        "--purge-interval",
        type=int,
        default=60,
        metavar="SECONDS",
        help="how often expired content is wiped (default 60)",
    )
    worker.add_argument(
        "--no-migrate", action="store_true", help="do not apply migrations at start"
    )
    worker.set_defaults(handler=cmd_worker)

    purge = commands.add_parser("purge", help="wipe dead grants and delete expired content now")
    purge.set_defaults(handler=cmd_purge)

    createuser = commands.add_parser("createuser", help="add a user (and their organisation)")
    createuser.add_argument("email")
    createuser.add_argument(
        "--org",
        required=True,
        help="organisation id, slug or name (a new name creates the organisation)",
    )
    createuser.add_argument("--admin", action="store_true", help="organisation administrator")
    createuser.add_argument("--first-name", default="")
    createuser.add_argument("--last-name", default="")
    createuser.add_argument(
        "--plan", default="Advanced", help="plan of a new organisation (Eco, Advanced, Pro)"
    )
    createuser.add_argument(
        "--operator",
        action="store_true",
        help="also give access to the operator admin (/operator/); a second factor is "
        "required, set up at the first login",
    )
    createuser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    createuser.set_defaults(handler=cmd_createuser)

    audit = commands.add_parser("audit", help="audit log tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="check the audit hash chains")
    verify.add_argument("--org", help="only this organisation (id, slug or name)")
    verify.set_defaults(handler=cmd_audit_verify)
    verify_export = audit_commands.add_parser(
        "verify-export", help="check a JSON Lines export of the audit log, offline"
    )
    verify_export.add_argument("file", metavar="FILE.jsonl")
    verify_export.add_argument(
        "--certificate",
        metavar="CERT.pem",
        help="the organisation's seal certificate: also check the export's signature",
    )
    verify_export.set_defaults(handler=cmd_audit_verify_export)

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

    envelope_parser(commands)

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

    manage = commands.add_parser("manage", help="run a Django management command", add_help=False)
    manage.add_argument("arguments", nargs=argparse.REMAINDER)
    manage.set_defaults(handler=cmd_manage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args) or 0
    except CommandError as error:
        print(f"sealbox: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
