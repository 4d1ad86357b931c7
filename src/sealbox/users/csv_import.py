"""Adding users from a CSV file: every row checked first, then all invited or none."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts import services as accounts
from sealbox.accounts.models import (
    Language,
    Organisation,
    Role,
    User,
    normalise_email,
    validate_sms_country,
    validate_time_zone,
)
from sealbox.accounts.services import AccountError, AddressUnavailable
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import phones
from sealbox.users.access import require_admin
from sealbox.users.invitations import (
    NewUser,
    _check_seats,
    _create_invited,
    _record_unavailable,
    _send_invitation,
)

CSV_COLUMNS = [
    "email",
    "first_name",
    "last_name",
    "role",
    "mobile_phone",
    "sms_country",
    "time_zone",
    "language",
]
CSV_MAX_ROWS = 1000
CSV_MAX_BYTES = 1024 * 1024


@dataclass
class CsvReport:
    rows: list[NewUser] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    unavailable: list[str] = field(default_factory=list)  # addresses refused without reason


def csv_template() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerow(
        [
            "jane.doe@example.com",
            "Jane",
            "Doe",
            "member",
            "514 555 0100",
            "CA",
            "America/Toronto",
            "en",
        ]
    )
    return out.getvalue()


ROLE_WORDS = {
    "member": Role.MEMBER,
    "standard": Role.MEMBER,
    "standard user": Role.MEMBER,
    "user": Role.MEMBER,
    "utilisateur standard": Role.MEMBER,
    "admin": Role.ADMIN,
    "administrator": Role.ADMIN,
    "administrateur": Role.ADMIN,
}


def read_csv(organisation: Organisation, data: bytes) -> CsvReport:
    """Validate every row; nothing is created here. Line numbers count the header as 1."""
    report = CsvReport()
    if len(data) > CSV_MAX_BYTES:
        report.errors.append((0, _("The file is larger than 1 MB.")))
        return report
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.errors.append((0, _("The file is not UTF-8 text. Save it as “CSV UTF-8”.")))
        return report
    sample = text[:2048]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = [h.strip().lower() for h in next(reader, [])]
    if "email" not in header:
        report.errors.append((1, _("The first line must name the columns; “email” is missing.")))
        return report
    unknown = [h for h in header if h and h not in CSV_COLUMNS]
    if unknown:
        report.errors.append(
            (1, _("Unknown columns: %(columns)s.") % {"columns": ", ".join(unknown)})
        )
        return report
    seen: dict[str, int] = {}
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(report.rows) + len(report.errors) >= CSV_MAX_ROWS:
            report.errors.append((number, _("A file can add at most 1000 users.")))
            break
        row = {
            name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)
        }
        try:
            spec = _row_to_user(organisation, row)
            if spec.email in seen:
                raise AccountError(
                    _("%(email)s is already on line %(line)d.")
                    % {"email": spec.email, "line": seen[spec.email]}
                )
            seen[spec.email] = number
            report.rows.append(spec)
        except AccountError as error:
            report.errors.append((number, str(error)))
            if isinstance(error, AddressUnavailable):
                report.unavailable.append(normalise_email(row.get("email", "")))
    if not report.rows and not report.errors:
        report.errors.append((0, _("The file has no user in it.")))
    free = organisation.seats - accounts.seats_used(organisation)
    if not report.errors and len(report.rows) > free:
        report.errors.append(
            (
                0,
                _("The file adds %(n)d users but the licence has %(free)d free seats.")
                % {"n": len(report.rows), "free": free},
            )
        )
    return report


def _row_to_user(organisation: Organisation, row: dict) -> NewUser:
    email = accounts.check_new_email(organisation, row.get("email", ""))
    role_word = (row.get("role") or "member").lower()
    if role_word not in ROLE_WORDS:
        raise AccountError(
            _("The role “%(role)s” is unknown: use member or admin.") % {"role": row.get("role")}
        )
    country = (row.get("sms_country") or organisation.default_sms_country).upper()
    try:
        validate_sms_country(country)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages), field="sms_country") from None
    phone = ""
    if row.get("mobile_phone"):
        try:
            phone = phones.parse_phone(row["mobile_phone"], country)
        except ValidationError as error:
            raise AccountError(" ".join(error.messages)) from None
    time_zone = row.get("time_zone") or ""
    if time_zone:
        try:
            validate_time_zone(time_zone)
        except ValidationError:
            raise AccountError(
                _("The time zone “%(tz)s” is unknown (for example America/Toronto).")
                % {"tz": time_zone}
            ) from None
    language = (row.get("language") or "").lower()
    if language and language not in Language.values:
        raise AccountError(_("The language must be en or fr."))
    for name in ("first_name", "last_name"):
        if len(row.get(name) or "") > 150:
            raise AccountError(_("A name is longer than 150 characters."))
    return NewUser(
        email=email,
        first_name=row.get("first_name") or "",
        last_name=row.get("last_name") or "",
        role=ROLE_WORDS[role_word],
        mobile_phone=phone,
        sms_country=country,
        time_zone=time_zone,
        language=language,
    )


def import_users(request: HttpRequest | None, actor: User, data: bytes) -> CsvReport:
    """All or nothing: any faulty row and nobody is created; otherwise everyone is invited."""
    require_admin(actor)
    organisation = actor.organisation
    report = read_csv(organisation, data)
    for email in report.unavailable:
        _record_unavailable(request, actor, email)
    if report.errors:
        return report
    invited = []
    try:
        with transaction.atomic():
            Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
            _check_seats(organisation, len(report.rows))
            for spec in report.rows:
                invited.append(_create_invited(request, actor, spec))
            audit.record(
                Action.USER_IMPORTED,
                organisation=organisation,
                actor=actor,
                target=organisation,
                request=request,
                details={"count": len(invited)},
            )
    except AccountError as error:
        return CsvReport(errors=[(0, str(error))])
    for user, secret in invited:
        _send_invitation(user, actor, secret)
    return report
