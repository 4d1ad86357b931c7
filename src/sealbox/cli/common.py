"""What every command shares: its one-line error, Django's setup, migrations, passwords."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


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
