"""The operator's commands: createuser, audit verify and verify-export, manage."""

from __future__ import annotations

import argparse
import os
import secrets

from sealbox.cli.common import CommandError, migrate, read_password, setup_django


def add_parsers(commands) -> None:
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


def add_manage_parser(commands) -> None:
    manage = commands.add_parser("manage", help="run a Django management command", add_help=False)
    manage.add_argument("arguments", nargs=argparse.REMAINDER)
    manage.set_defaults(handler=cmd_manage)


def cmd_createuser(args: argparse.Namespace) -> int:
    setup_django()
    migrate()
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from sealbox.accounts import services
    from sealbox.accounts.models import Role, User, normalise_email

    email = normalise_email(args.email)
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


def cmd_manage(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["sealbox manage", *args.arguments])
    return 0
