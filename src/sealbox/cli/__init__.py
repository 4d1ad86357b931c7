"""The `sealbox` command: serve, worker, createuser, audit, manage; and the client commands
(send, open, reply, envelope) that encrypt and decrypt on this machine.

One module per group of commands, each adding its own parsers: `server`, `operators`,
`messages`, `envelopes`; `common` and `remote` hold what they share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sealbox.cli import envelopes, messages, operators, server
from sealbox.cli.common import CommandError, migrate, read_password, setup_django
from sealbox.cli.server import cmd_worker, run_purge

__all__ = [
    "CommandError",
    "build_parser",
    "cmd_worker",
    "main",
    "migrate",
    "read_password",
    "run_purge",
    "setup_django",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sealbox", description="Sealbox secure exchange portal")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.add_parsers(commands)  # serve, migrate, worker, purge
    operators.add_parsers(commands)  # createuser, audit
    messages.add_parsers(commands)  # send, open
    envelopes.add_parsers(commands)
    messages.add_reply_parser(commands)
    operators.add_manage_parser(commands)
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
