"""Business rules for organisations, licences, users and logging in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth import authenticate, login, logout, password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox import clock
from sealbox.accounts.models import Organisation, Plan, Role, User, normalize_email
from sealbox.audit import services as audit
from sealbox.http import client_ip
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Decision, Rule

LOGIN_FAILURES_PER_ACCOUNT = Rule("login-account", 10, timedelta(minutes=5))
LOGIN_FAILURES_PER_IP = Rule("login-ip", 10, timedelta(minutes=5))
RESET_REQUESTS_PER_EMAIL = Rule("reset-email", 5, timedelta(hours=1))
RESET_REQUESTS_PER_IP = Rule("reset-ip", 20, timedelta(hours=1))
# Before the hard limit, each further failure makes the next attempt wait twice as long.
LOGIN_DELAY_AFTER = 3

SESSION_LOGIN_AT = "sealbox_login_at"
SESSION_SEEN_AT = "sealbox_seen_at"


class AccountError(Exception):
    """A request the rules refuse; the message is shown to the person as is."""


# --- Organisations and licences ---------------------------------------------------


def get_or_create_organisation(
    name: str, *, plan_name: str = "Advanced"
) -> tuple[Organisation, bool]:
    name = name.strip()
    if not name:
        raise AccountError(_("The organisation needs a name."))
    existing = Organisation.objects.filter(name__iexact=name).first()
    if existing:
        return existing, False
    try:
        plan = Plan.objects.get(name__iexact=plan_name)
    except Plan.DoesNotExist:
        raise AccountError(_("There is no plan named %(name)s.") % {"name": plan_name}) from None
    with transaction.atomic():
        organisation = Organisation.objects.create(
            name=name,
            plan=plan,
            seats=plan.default_seats,
            renewal_date=clock.now().date() + timedelta(days=365),
            default_expiry_days=min(7, plan.max_retention_days),
        )
        audit.record(
            "organisation.created",
            organisation=organisation,
            target=organisation,
            details={"plan": plan.name},
        )
    return organisation, True


def set_licence(
    organisation: Organisation,
    *,
    plan: Plan | None = None,
    seats: int | None = None,
    renewal_date: date | None = None,
) -> Organisation:
    changes = {}
    if plan is not None and plan != organisation.plan:
        organisation.plan = plan
        changes["plan"] = plan.name
    if seats is not None and seats != organisation.seats:
        if seats < seats_used(organisation):
            raise AccountError(
                _("%(org)s has %(used)d active users: it needs at least that many seats.")
                % {"org": organisation.name, "used": seats_used(organisation)}
            )
        organisation.seats = seats
        changes["seats"] = seats
    if renewal_date is not None and renewal_date != organisation.renewal_date:
        organisation.renewal_date = renewal_date
        changes["renewal_date"] = renewal_date.isoformat()
    if changes:
        with transaction.atomic():
            organisation.save()
            audit.record(
                "licence.changed", organisation=organisation, target=organisation, details=changes
            )
    return organisation


def seats_used(organisation: Organisation) -> int:
    return organisation.users.filter(is_active=True).count()


def messages_sent_this_month(organisation: Organisation) -> int:
    # Secure messages arrive with the exchange app; until then nothing can be sent.
    from django.apps import apps

    if not apps.is_installed("sealbox.exchange"):
        return 0
    from sealbox.exchange.services import count_sent_since  # pragma: no cover

    return count_sent_since(
        organisation, clock.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )


@dataclass(frozen=True)
class LicenceSummary:
    plan: Plan
    renewal_date: date
    seats_used: int
    seats_total: int
    messages_sent_this_month: int

    @property
    def messages_remaining(self) -> int | None:
        limit = self.plan.messages_per_month
        if limit is None:
            return None
        return max(0, limit - self.messages_sent_this_month)


def licence_summary(organisation: Organisation) -> LicenceSummary:
    return LicenceSummary(
        plan=organisation.plan,
        renewal_date=organisation.renewal_date,
        seats_used=seats_used(organisation),
        seats_total=organisation.seats,
        messages_sent_this_month=messages_sent_this_month(organisation),
    )


# --- Users ----------------------------------------------------------------------


def create_user(
    email: str,
    password: str,
    organisation: Organisation,
    *,
    role: str = Role.MEMBER,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    actor: User | None = None,
) -> User:
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError(
            _("%(email)s is not a valid email address.") % {"email": email}
        ) from None
    if User.objects.filter(email=email).exists():
        raise AccountError(_("A user with the email %(email)s already exists.") % {"email": email})
    if seats_used(organisation) >= organisation.seats:
        raise AccountError(
            _("%(org)s has no free seat (%(seats)d in use). Free one or add seats first.")
            % {"org": organisation.name, "seats": organisation.seats}
        )
    candidate = User(
        email=email, first_name=first_name, last_name=last_name, organisation=organisation
    )
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from None
    with transaction.atomic():
        user = User.objects.create_user(
            email,
            password,
            organisation=organisation,
            role=role,
            first_name=first_name,
            last_name=last_name,
            sms_country=organisation.default_sms_country,
            is_staff=is_staff,
            is_superuser=is_staff,
        )
        audit.record(
            "user.created",
            organisation=organisation,
            actor=actor,
            target=user,
            details={"email": user.email, "role": role},
        )
    return user


PROFILE_FIELDS = ("first_name", "last_name", "time_zone", "language", "date_format")


def update_profile(user: User, request: HttpRequest | None = None, **values) -> list[str]:
    """Save the given profile fields; return the names of those that changed."""
    changed = [
        name for name in PROFILE_FIELDS if name in values and getattr(user, name) != values[name]
    ]
    if not changed:
        return []
    for name in changed:
        setattr(user, name, values[name])
    user.full_clean(exclude=["password"])
    with transaction.atomic():
        user.save(update_fields=changed)
        audit.record(
            "profile.updated", actor=user, target=user, request=request, details={"fields": changed}
        )
    return changed


def change_password(request: HttpRequest, user: User, new_password: str) -> None:
    from django.contrib.auth import update_session_auth_hash

    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        audit.record("password.changed", actor=user, target=user, request=request)
    # Keep this session; every other session of the user ends with the old hash.
    update_session_auth_hash(request, user)


def record_password_reset_requested(request: HttpRequest, email: str) -> None:
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        audit.record(
            "password.reset_requested",
            request=request,
            actor_type="anonymous",
            details={"email": normalize_email(email), "known": False},
        )
    else:
        audit.record("password.reset_requested", actor=user, target=user, request=request)


def record_password_reset(request: HttpRequest, user: User) -> None:
    audit.record("password.reset", actor=user, target=user, request=request)


# --- Logging in -------------------------------------------------------------------


def login_delay(failures: list) -> int:
    """Seconds the next attempt must wait after the failures still in the window."""
    if len(failures) <= LOGIN_DELAY_AFTER:
        return 0
    wait = 2 ** (len(failures) - LOGIN_DELAY_AFTER)
    elapsed = (clock.now() - failures[-1]).total_seconds()
    return max(0, int(wait - elapsed + 0.999))


def login_throttle(email: str, ip: str | None) -> Decision:
    """Whether an attempt may be checked at all: limits by account and by address.

    Unknown addresses are throttled exactly like real accounts, so the answers never
    tell which accounts exist.
    """
    checks = [(LOGIN_FAILURES_PER_ACCOUNT, normalize_email(email))]
    if ip:
        checks.append((LOGIN_FAILURES_PER_IP, ip))
    retry_after = 0
    for rule, key in checks:
        decision = ratelimit.check(rule, key)
        if not decision.allowed:
            retry_after = max(retry_after, decision.retry_after)
            continue
        retry_after = max(retry_after, login_delay(ratelimit.recent(rule, key)))
    return Decision(retry_after == 0, retry_after)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    throttled: Decision | None = None


def check_password(request: HttpRequest, email: str, password: str) -> LoginResult:
    """The password step: rate limits, then the password; every failure is recorded."""
    ip = client_ip(request)
    email = normalize_email(email)
    decision = login_throttle(email, ip)
    if not decision.allowed:
        return LoginResult(None, decision)
    user = authenticate(request, username=email, password=password)
    if user is None:
        with transaction.atomic():
            ratelimit.hit(LOGIN_FAILURES_PER_ACCOUNT, email)
            if ip:
                ratelimit.hit(LOGIN_FAILURES_PER_IP, ip)
            known = User.objects.filter(email=email).first()
            if known is not None:
                audit.record(
                    "login.failed",
                    actor=known,
                    target=known,
                    request=request,
                    details={"reason": "password"},
                )
            else:
                audit.record(
                    "login.failed",
                    request=request,
                    actor_type="anonymous",
                    actor_label=email,
                    details={"reason": "unknown account"},
                )
        return LoginResult(None)
    return LoginResult(user)


def complete_login(request: HttpRequest, user: User) -> None:
    """Open the session: a new session id, timeout clocks, the user's language."""
    with transaction.atomic():
        ratelimit.clear(LOGIN_FAILURES_PER_ACCOUNT, user.email)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        now = clock.now().timestamp()
        request.session[SESSION_LOGIN_AT] = now
        request.session[SESSION_SEEN_AT] = now
        audit.record("login.succeeded", actor=user, target=user, request=request)


def log_out(request: HttpRequest, *, reason: str = "") -> None:
    user = request.user
    if user.is_authenticated:
        audit.record(
            "logout",
            actor=user,
            target=user,
            request=request,
            details={"reason": reason} if reason else None,
        )
    logout(request)
