"""Rules of user administration. Every function takes the acting administrator, checks
that they may act on the target (same organisation, administrator role) and records an
audit event naming both, in the same transaction as the change."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from sealbox.accounts import services as accounts
from sealbox.accounts.models import (
    ApiToken,
    EmailChange,
    Invitation,
    Language,
    MessagePreferences,
    Organisation,
    Role,
    User,
    normalize_email,
    validate_sms_country,
    validate_time_zone,
)
from sealbox.accounts.notices import _lazy
from sealbox.accounts.services import AccountError, AddressUnavailable, token_hash
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.envelopes import services as envelopes
from sealbox.exchange.models import Message, MessageState
from sealbox.exchange.services import delete_blobs, delete_message
from sealbox.lib import clock, phones
from sealbox.notify import services as notify
from sealbox.twofactor import services as twofactor

INVITATION_LIFETIME = timedelta(hours=72)
LOGO_MAX_BYTES = 500 * 1024
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
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


# --- Who may act on whom ------------------------------------------------------------


def require_admin(actor: User) -> None:
    """Standard users get 403 on every administration page and API."""
    if not (actor.is_authenticated and actor.is_active and actor.is_org_admin):
        raise PermissionDenied


def organisation_users(actor: User) -> QuerySet[User]:
    require_admin(actor)
    return User.objects.filter(organisation=actor.organisation, deleted_at__isnull=True)


def user_for_admin(actor: User, pk: int) -> User:
    """A user of the administrator's organisation; any other user does not exist (404)."""
    user = organisation_users(actor).filter(pk=pk).first()
    if user is None:
        raise Http404
    return user


def list_users(actor: User, search: str = "") -> QuerySet[User]:
    users = organisation_users(actor)
    search = (search or "").strip()
    if search:
        users = users.filter(
            Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    return users.order_by("email")


def active_admins(organisation: Organisation) -> QuerySet[User]:
    return organisation.users.filter(role=Role.ADMIN, is_active=True, deleted_at__isnull=True)


def _ensure_not_last_admin(target: User) -> None:
    if (
        target.role == Role.ADMIN
        and target.is_active
        and active_admins(target.organisation).count() <= 1
    ):
        raise AccountError(
            _(
                "%(email)s is the last active administrator of %(org)s. Make another user "
                "an administrator first."
            )
            % {"email": target.email, "org": target.organisation.name},
            code="last_admin",
        )


def _refusal(error: ValidationError) -> AccountError:
    """A model's validation error as a refusal naming its first field."""
    fields = list(getattr(error, "error_dict", {}))
    return AccountError(" ".join(error.messages), code="invalid", field=fields[0] if fields else "")


def _ensure_not_self(actor: User, target: User) -> None:
    if actor.pk == target.pk:
        raise AccountError(
            _("You cannot do this to your own account. Ask another administrator."),
            code="own_account",
        )


def has_two_factor(user: User) -> bool:
    return twofactor.has_second_factor(user)


# --- Adding users -------------------------------------------------------------------


@dataclass
class NewUser:
    email: str
    first_name: str = ""
    last_name: str = ""
    role: str = Role.MEMBER
    mobile_phone: str = ""  # E.164, already parsed
    sms_country: str = ""
    time_zone: str = ""
    language: str = ""


def _check_seats(organisation: Organisation, wanted: int = 1) -> None:
    free = organisation.seats - accounts.seats_used(organisation)
    if wanted > free:
        raise AccountError(
            _(
                "The licence of %(org)s has no free seat for this (%(used)d of %(seats)d "
                "seats in use). Disable or delete a user, or add seats to the licence."
            )
            % {
                "org": organisation.name,
                "used": accounts.seats_used(organisation),
                "seats": organisation.seats,
            },
            code="no_free_seat",
        )


def _create_invited(request: HttpRequest | None, actor: User, spec: NewUser) -> tuple[User, str]:
    organisation = actor.organisation
    user = User.objects.create_user(
        spec.email,
        None,  # no password until the invitation is accepted
        organisation=organisation,
        role=spec.role,
        first_name=spec.first_name,
        last_name=spec.last_name,
        mobile_phone=spec.mobile_phone,
        sms_country=spec.sms_country or organisation.default_sms_country,
        time_zone=spec.time_zone or actor.time_zone,
        language=spec.language or actor.language,
    )
    secret = _new_invitation(user)
    audit.record(
        Action.USER_INVITED,
        organisation=organisation,
        actor=actor,
        target=user,
        request=request,
        details={"email": user.email, "role": user.role},
    )
    return user, secret


def _new_invitation(user: User) -> str:
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    Invitation.objects.filter(user=user, used_at__isnull=True).delete()
    Invitation.objects.create(
        user=user,
        token_hash=token_hash(secret),
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    return secret


def _send_invitation(user: User, actor: User, secret: str) -> None:
    # The link sets a password: it is a secret, queued sealed.
    notify.send_templated_email(
        user.email,
        subject_template="users/email/invitation_subject.txt",
        text_template="users/email/invitation.txt",
        context={
            "user_name": user.display_name,
            "admin_name": actor.display_name,
            "organisation": user.organisation.name,
            "accept_url": settings.SEALBOX_BASE_URL
            + reverse("users:invitation", kwargs={"token": secret}),
            "hours": int(INVITATION_LIFETIME.total_seconds() // 3600),
        },
        language=user.language,
        sensitive=True,
        # The invitation's fate (email.sent / email.failed) goes to the organisation's
        # log, on the invited user, beside user.invited.
        organisation=user.organisation,
        target=user,
        reference=f"invitation:{user.pk}",
    )


def _record_unavailable(request: HttpRequest | None, actor: User, email: str) -> None:
    """Note in the administrator's organisation that an address was refused without a
    reason. The event must not say more than the page did: the organisation's own log
    is readable by its administrators."""
    with transaction.atomic():
        audit.record(
            Action.USER_INVITATION_REFUSED,
            organisation=actor.organisation,
            actor=actor,
            request=request,
            details={"email": normalize_email(email), "reason": "address unavailable"},
        )


def invite_user(request: HttpRequest | None, actor: User, spec: NewUser) -> User:
    """Add a user and email them a link to set their password (72 hours, single use)."""
    require_admin(actor)
    organisation = actor.organisation
    try:
        spec.email = accounts.check_new_email(organisation, spec.email)
    except AddressUnavailable:
        _record_unavailable(request, actor, spec.email)
        raise
    if spec.role not in Role.values:
        raise AccountError(_("Choose a role from the list."))
    with transaction.atomic():
        # Locking the organisation row serialises concurrent additions against the seats.
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        _check_seats(organisation)
        user, secret = _create_invited(request, actor, spec)
    _send_invitation(user, actor, secret)
    return user


def resend_invitation(request: HttpRequest | None, actor: User, target: User) -> None:
    require_admin(actor)
    if target.has_usable_password():
        raise AccountError(_("%(email)s has already set a password.") % {"email": target.email})
    if not target.is_active:
        raise AccountError(_("Enable the user first."))
    with transaction.atomic():
        secret = _new_invitation(target)
        audit.record(
            Action.USER_INVITATION_RESENT,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"email": target.email},
        )
    _send_invitation(target, actor, secret)


def pending_invitation(token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("user")
        .filter(token_hash=token_hash(token or ""), used_at__isnull=True)
        .first()
    )
    if (
        invitation is None
        or invitation.expires_at <= clock.now()
        or not invitation.user.is_active
        or invitation.user.deleted_at is not None
    ):
        return None
    return invitation


def accept_invitation(request: HttpRequest | None, token: str, password: str) -> User:
    from django.contrib.auth import password_validation

    invitation = pending_invitation(token)
    if invitation is None:
        raise AccountError(_("This link has expired or was already used."))
    user = invitation.user
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from None
    with transaction.atomic():
        claimed = Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(
            used_at=clock.now()
        )
        if not claimed:
            raise AccountError(_("This link has expired or was already used."))
        user.set_password(password)
        user.save(update_fields=["password"])
        audit.record(Action.USER_INVITATION_ACCEPTED, actor=user, target=user, request=request)
    return user


# --- CSV import -----------------------------------------------------------------------


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
                report.unavailable.append(normalize_email(row.get("email", "")))
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


# --- Editing users ----------------------------------------------------------------------

EDIT_FIELDS = ("first_name", "last_name", "sms_country", "time_zone", "language", "role")


def update_user(
    request: HttpRequest | None,
    actor: User,
    target: User,
    *,
    mobile_phone: str | None = None,
    enable_2fa: bool | None = None,
    **values,
) -> list[str]:
    """Save an administrator's edit of a user; return the names of what changed.

    `mobile_phone` is E.164 ("" clears it). Ticking `enable_2fa` makes that number the
    user's confirmed SMS factor: the administrator vouches for the number, and the user's
    next login asks for the code sent to it.
    """
    require_admin(actor)
    if target.organisation_id != actor.organisation_id:
        raise Http404
    changed = [n for n in EDIT_FIELDS if n in values and getattr(target, n) != values[n]]
    if "role" in changed:
        if values["role"] not in Role.values:
            raise AccountError(_("Choose a role from the list."), code="invalid")
        if values["role"] != Role.ADMIN:
            _ensure_not_last_admin(target)
    device = twofactor.sms_device(target)
    phone_changed = mobile_phone is not None and str(target.mobile_phone or "") != mobile_phone
    new_phone = mobile_phone if mobile_phone is not None else str(target.mobile_phone or "")
    turn_on = bool(enable_2fa) and device is None
    turn_off = enable_2fa is False and device is not None
    if turn_on and not new_phone:
        raise AccountError(
            _("Enter the user's mobile phone number to enable 2FA authentication."),
            code="phone_required",
        )
    if device is not None and not turn_off and mobile_phone == "":
        raise AccountError(
            _("A user with SMS 2FA needs a mobile phone number."), code="phone_required"
        )
    if not (changed or phone_changed or turn_on or turn_off):
        return []
    notices = []
    with transaction.atomic():
        old_role = target.role
        for name in changed:
            setattr(target, name, values[name])
        if phone_changed:
            old_phone = target.mobile_phone
            target.mobile_phone = new_phone
        try:
            target.full_clean(exclude=["password"])
        except ValidationError as error:
            raise _refusal(error) from None
        target.save()
        if changed:
            audit.record(
                Action.USER_UPDATED,
                organisation=actor.organisation,
                actor=actor,
                target=target,
                request=request,
                details={"fields": changed},
            )
        if "role" in changed:
            audit.record(
                Action.USER_ROLE_CHANGED,
                organisation=actor.organisation,
                actor=actor,
                target=target,
                request=request,
                details={"from": old_role, "to": target.role},
            )
            notices.append(
                _lazy(gettext_noop("Your role is now: %(role)s."), role=Role(target.role).label)
            )
        if phone_changed:
            twofactor.phone_changed_by_admin(request, actor, target, old_phone, new_phone)
            notices.append(
                _lazy(
                    gettext_noop("Your mobile phone number is now %(phone)s."),
                    phone=phones.mask_phone(new_phone),
                )
            )
        if turn_on:
            twofactor.set_sms_by_admin(request, actor, target, new_phone)
            notices.append(
                _lazy(
                    gettext_noop(
                        "Two-factor authentication is on: logging in now asks for a code sent "
                        "by SMS to %(phone)s."
                    ),
                    phone=phones.mask_phone(new_phone),
                )
            )
        if turn_off:
            twofactor.set_sms_by_admin(request, actor, target, "")
            notices.append(_lazy(gettext_noop("Two-factor authentication by SMS was turned off.")))
        for notice in notices:
            accounts.email_security_notice(target, notice, actor=actor)
    return (
        changed
        + (["mobile_phone"] if phone_changed else [])
        + (["2fa"] if turn_on or turn_off else [])
    )


def set_active(request: HttpRequest | None, actor: User, target: User, active: bool) -> bool:
    """Disable (sessions and API tokens stop at once) or enable a user."""
    require_admin(actor)
    if target.organisation_id != actor.organisation_id:
        raise Http404
    if target.is_active == active:
        return False
    if not active:
        _ensure_not_last_admin(target)
        _ensure_not_self(actor, target)
    with transaction.atomic():
        if active:
            Organisation.objects.select_for_update().filter(pk=actor.organisation_id).first()
            _check_seats(actor.organisation)
        target.is_active = active
        target.save(update_fields=["is_active"])
        if not active:
            accounts.end_sessions(target)
            envelopes.close_envelopes_of(
                target, actor=actor, reason=envelopes.CloseReason.OWNER_DISABLED, request=request
            )
        audit.record(
            Action.USER_ENABLED if active else Action.USER_DISABLED,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"email": target.email},
        )
        accounts.email_security_notice(
            target,
            _lazy(gettext_noop("Your account was enabled again."))
            if active
            else _lazy(gettext_noop("Your account was disabled: you can no longer log in.")),
            actor=actor,
        )
    return True


def live_messages_of(user: User) -> int:
    """The messages deleting the user revokes (the confirmation page says how many)."""
    return Message.objects.filter(sender=user).exclude(state=MessageState.DELETED).count()


def delete_user(request: HttpRequest | None, actor: User, target: User) -> None:
    """Delete a user: their messages are revoked and their ciphertext deleted; the row
    stays (messages keep their sender) with every personal detail scrubbed; the seat is
    freed. Audit events keep the address they were recorded with."""
    require_admin(actor)
    if target.organisation_id != actor.organisation_id:
        raise Http404
    _ensure_not_last_admin(target)
    _ensure_not_self(actor, target)
    email = target.email
    language = target.language
    name = target.display_name
    # The same messages live_messages_of counts.
    messages = list(Message.objects.filter(sender=target).exclude(state=MessageState.DELETED))
    for message in messages:
        delete_message(actor, message, request=request)
    for message in Message.objects.filter(sender=target, blobs_deleted_at__isnull=True):
        delete_blobs(message)
    with transaction.atomic():
        methods = twofactor.login_methods(target)
        twofactor.remove_all_factors(target)
        accounts.end_sessions(target)
        envelopes.close_envelopes_of(
            target, actor=actor, reason=envelopes.CloseReason.OWNER_DELETED, request=request
        )
        ApiToken.objects.filter(user=target).delete()
        Invitation.objects.filter(user=target).delete()
        EmailChange.objects.filter(user=target).delete()
        MessagePreferences.objects.filter(user=target).delete()
        target.email = f"deleted-{target.pk}@{accounts.DELETED_EMAIL_DOMAIN}"
        target.first_name = ""
        target.last_name = ""
        target.mobile_phone = ""
        target.is_active = False
        target.role = Role.MEMBER
        target.deleted_at = clock.now()
        target.set_unusable_password()
        target.save()
        audit.record(
            Action.USER_DELETED,
            organisation=actor.organisation,
            actor=actor,
            target=target,
            request=request,
            details={"email": email, "messages_revoked": len(messages), "factors": methods},
        )
    notify.send_templated_email(
        email,
        subject_template="accounts/email/security_notice_subject.txt",
        text_template="accounts/email/security_notice.txt",
        context={
            "user_name": name,
            "what": _lazy(gettext_noop("Your Sealbox account was deleted.")),
            "admin_name": actor.display_name,
            "base_url": settings.SEALBOX_BASE_URL,
        },
        language=language,
    )


# --- Organisation settings ----------------------------------------------------------------

ORGANISATION_FIELDS = (
    "name",
    "accent_colour",
    "default_sms_country",
    "default_expiry_days",
    "opening_code_in_separate_email",
    "approved_email_domains",
    "audit_retention_days",
)


def clean_domains(text: str) -> str:
    domains = []
    for raw in re.split(r"[\s,;]+", text or ""):
        domain = raw.strip().lower().lstrip("@")
        if not domain:
            continue
        if not DOMAIN.match(domain):
            raise AccountError(_("“%(domain)s” is not a domain name.") % {"domain": raw})
        if domain not in domains:
            domains.append(domain)
    return "\n".join(domains)


def check_logo(data: bytes) -> str:
    if len(data) > LOGO_MAX_BYTES:
        raise AccountError(_("The logo must be at most 500 KB."))
    for magic, content_type in LOGO_TYPES.items():
        if data.startswith(magic):
            return content_type
    raise AccountError(_("The logo must be a PNG or JPEG image."))


def update_organisation(
    request: HttpRequest | None,
    actor: User,
    *,
    logo: bytes | None = None,
    remove_logo: bool = False,
    require_2fa: bool | None = None,
    **values,
) -> list[str]:
    require_admin(actor)
    organisation = Organisation.objects.get(pk=actor.organisation_id)
    if "name" in values:
        values["name"] = accounts.check_organisation_name(values["name"], exclude=organisation)
    if "approved_email_domains" in values:
        values["approved_email_domains"] = clean_domains(values["approved_email_domains"])
    if values.get("accent_colour") and not COLOUR.match(values["accent_colour"]):
        raise AccountError(_("The accent colour is written #RRGGBB, for example #1d4ed8."))
    changed = [
        n
        for n in ORGANISATION_FIELDS
        if n in values and hasattr(organisation, n) and getattr(organisation, n) != values[n]
    ]
    logo_type = check_logo(logo) if logo else ""
    with transaction.atomic():
        for name in changed:
            setattr(organisation, name, values[name])
        if logo:
            organisation.logo = logo
            organisation.logo_type = logo_type
            changed.append("logo")
        elif remove_logo and organisation.logo:
            organisation.logo = None
            organisation.logo_type = ""
            changed.append("logo")
        if changed:
            try:
                organisation.full_clean(exclude=["plan", "logo"])
            except ValidationError as error:
                raise _refusal(error) from None
            try:
                with transaction.atomic():
                    organisation.save()
            except IntegrityError:
                # Another organisation took the name (in some letter case) since the check.
                raise AccountError(
                    _(
                        "Another organisation already has this name (letter case aside). "
                        "Choose another."
                    ),
                    field="name",
                ) from None
            audit.record(
                Action.ORGANISATION_UPDATED,
                organisation=organisation,
                actor=actor,
                target=organisation,
                request=request,
                details={"fields": changed},
            )
        if require_2fa is not None and twofactor.set_require_2fa(
            request, actor, organisation, require_2fa
        ):
            changed.append("require_2fa")
    actor.organisation = organisation
    return changed
