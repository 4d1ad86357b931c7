"""Business rules for organisations, licences, users and logging in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth import authenticate, login, logout, password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from sealbox.accounts import registry
from sealbox.accounts.models import (
    ApiToken,
    EmailChange,
    MessagePreferences,
    Organisation,
    PasswordReset,
    Plan,
    Role,
    SessionRecord,
    User,
    normalize_email,
)
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.lib import clock
from sealbox.lib.errors import SealboxError
from sealbox.lib.http import client_ip
from sealbox.notify import services as notify
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
# When this session last proved the password or a second factor: the only clock
# re-authentication trusts. Set where a proof was checked, never defaulted.
SESSION_AUTHENTICATED_AT = "sealbox_reauth_at"
# Addresses Sealbox gives deleted accounts: never a real mailbox.
DELETED_EMAIL_DOMAIN = "deleted.invalid"


class AccountError(SealboxError):
    """A request on accounts, users or organisations the rules refuse. The API answers
    409 (the request conflicts with the accounts as they are) unless a raise site says
    otherwise; `field` names the input at fault, when there is one."""

    status = 409
    code = "refused"


class NotTheirs(AccountError):
    """The object is not the user's: for them it does not exist (pages answer 404)."""

    status = 404
    code = "not_found"


class AddressUnavailable(AccountError):
    """An address that cannot be given to a new user, for a reason the administrator
    must not learn (an account of another organisation, a reserved address)."""

    code = "address_unavailable"


# --- Organisations and licences ---------------------------------------------------


class OrganisationNotFound(AccountError):
    """No organisation answers to the reference an operator gave."""

    status = 404
    code = "not_found"


def organisation_name_taken(name: str, *, exclude: Organisation | None = None) -> bool:
    """Whether another organisation has this name, letter case aside (as the database's
    constraint on Lower(name) judges it)."""
    others = Organisation.objects.filter(name__iexact=name.strip())
    if exclude is not None and exclude.pk:
        others = others.exclude(pk=exclude.pk)
    return others.exists()


def check_organisation_name(name: str, *, exclude: Organisation | None = None) -> str:
    """The name cleaned, or AccountError when it is empty or another organisation's."""
    name = (name or "").strip()
    if not name:
        raise AccountError(_("The organisation needs a name."))
    if organisation_name_taken(name, exclude=exclude):
        raise AccountError(
            _("Another organisation already has this name (letter case aside). Choose another.")
        )
    return name


def find_organisation(reference: str) -> Organisation:
    """The organisation an operator names by id, slug or name, or AccountError.

    A number is only ever an id. Otherwise the reference may match a slug or a name
    (letter case aside); administrators choose names, so one could be made to look like
    another organisation's slug: a reference that fits more than one is refused, never
    guessed, and the id always names exactly one.
    """
    text = (reference or "").strip()
    if text.isdigit():
        found = Organisation.objects.filter(pk=int(text)).first()
        if found is None:
            raise OrganisationNotFound(_("no organisation with id %(id)s") % {"id": text})
        return found
    matches = list(
        Organisation.objects.filter(Q(slug=text.lower()) | Q(name__iexact=text)).order_by("pk")
    )
    if not matches:
        raise OrganisationNotFound(_("no organisation named %(name)r") % {"name": reference})
    if len(matches) > 1:
        listed = ", ".join(f"id {o.pk} (slug {o.slug}, name {o.name!r})" for o in matches)
        raise AccountError(
            _("%(reference)r could be several organisations: %(listed)s. Give its id.")
            % {"reference": reference, "listed": listed}
        )
    return matches[0]


def get_or_create_organisation(
    name: str, *, plan_name: str = "Advanced"
) -> tuple[Organisation, bool]:
    name = (name or "").strip()
    if not name:
        raise AccountError(_("The organisation needs a name."))
    existing = Organisation.objects.filter(name__iexact=name).first()
    if existing:
        return existing, False
    try:
        plan = Plan.objects.get(name__iexact=plan_name)
    except Plan.DoesNotExist:
        raise AccountError(_("There is no plan named %(name)s.") % {"name": plan_name}) from None
    for _attempt in range(3):
        try:
            with transaction.atomic():
                organisation = Organisation.objects.create(
                    name=name,
                    plan=plan,
                    seats=plan.default_seats,
                    renewal_date=clock.now().date() + timedelta(days=365),
                    default_expiry_days=min(7, plan.max_retention_days),
                )
                audit.record(
                    Action.ORGANISATION_CREATED,
                    organisation=organisation,
                    target=organisation,
                    details={"plan": plan.name},
                )
            return organisation, True
        except IntegrityError:
            # Created at the same moment by someone else (the same name in another case,
            # or a name that makes the same slug): join it, or take the next slug.
            existing = Organisation.objects.filter(name__iexact=name).first()
            if existing:
                return existing, False
    raise AccountError(_("The organisation could not be created. Try again."))


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
                Action.LICENCE_CHANGED,
                organisation=organisation,
                target=organisation,
                details=changes,
            )
    return organisation


def seats_used(organisation: Organisation) -> int:
    return organisation.users.filter(is_active=True).count()


def messages_sent_this_month(organisation: Organisation) -> int:
    # The apps that send messages count them (accounts.registry, filled at their ready()).
    return registry.messages_sent_since(
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
    email = check_new_email(organisation, email)
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
            Action.USER_CREATED,
            organisation=organisation,
            actor=actor,
            target=user,
            details={"email": user.email, "role": role},
        )
    return user


PROFILE_FIELDS = ("first_name", "last_name", "time_zone", "language", "date_format", "sms_country")


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
            Action.PROFILE_UPDATED,
            actor=user,
            target=user,
            request=request,
            details={"fields": changed},
        )
    return changed


def change_password(request: HttpRequest, user: User, new_password: str) -> None:
    from django.contrib.auth import update_session_auth_hash

    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        audit.record(Action.PASSWORD_CHANGED, actor=user, target=user, request=request)
        email_security_notice(
            user, _lazy(gettext_noop("The password of your account was changed."))
        )
    # Keep this session; every other session of the user ends with the old hash.
    update_session_auth_hash(request, user)


def request_password_reset(request: HttpRequest, email: str) -> bool:
    """A reset link was asked for: count it by address and by IP, and record it; False
    at the limit (no email may be sent, and nothing is recorded).

    Reserved before the email is sent, so parallel requests cannot send more.
    """
    email = normalize_email(email)
    ip = client_ip(request) or "unknown"
    allowed = ratelimit.reserve(
        [(RESET_REQUESTS_PER_EMAIL, email), (RESET_REQUESTS_PER_IP, ip)]
    ).allowed
    if not allowed:
        return False
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None:
        audit.record(
            Action.PASSWORD_RESET_REQUESTED,
            request=request,
            actor_type="anonymous",
            details={"email": email, "known": False},
        )
    else:
        audit.record(Action.PASSWORD_RESET_REQUESTED, actor=user, target=user, request=request)
    return True


class PasswordResetTokens:
    """Reset links that a copy of the data folder cannot mint.

    It has the interface of Django's token generator (`make_token`, `check_token`), so
    Django's reset views and form use it, but the token is 32 random bytes whose SHA-256
    alone is stored (`PasswordReset`), instead of an HMAC of the user's row under the
    secret key, which anyone holding the secret key and the database could compute.
    """

    @staticmethod
    def state_of(user: User) -> str:
        """What ends a link when it changes: the password, the last login, the address."""
        import hashlib

        last_login = user.last_login.isoformat() if user.last_login else ""
        state = "\0".join((str(user.pk), user.password or "", last_login, user.email))
        return hashlib.sha256(state.encode()).hexdigest()

    def make_token(self, user: User) -> str:
        import secrets

        from django.conf import settings

        secret = secrets.token_urlsafe(32)
        now = clock.now()
        with transaction.atomic():
            PasswordReset.objects.filter(user=user, expires_at__lte=now).delete()
            PasswordReset.objects.create(
                user=user,
                token_hash=token_hash(secret),
                state_hash=self.state_of(user),
                created_at=now,
                expires_at=now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT),
            )
        return secret

    def check_hash(self, user: User, hashed: str | None) -> bool:
        """Whether `hashed` (the SHA-256 of a token) is a live reset link of `user`."""

        if not hashed or user is None:
            return False
        return PasswordReset.objects.filter(
            user=user,
            token_hash=hashed,
            state_hash=self.state_of(user),
            used_at__isnull=True,
            expires_at__gt=clock.now(),
        ).exists()

    def check_token(self, user: User, token: str | None) -> bool:
        return bool(token) and self.check_hash(user, token_hash(token))


password_reset_tokens = PasswordResetTokens()


def record_password_reset(request: HttpRequest, user: User) -> None:
    """The new password is saved: every reset link of the account is used up."""

    with transaction.atomic():
        PasswordReset.objects.filter(user=user, used_at__isnull=True).update(used_at=clock.now())
        audit.record(Action.PASSWORD_RESET, actor=user, target=user, request=request)
    email_security_notice(
        user, _lazy(gettext_noop("The password of your account was reset with an email link."))
    )


# --- Logging in -------------------------------------------------------------------


def login_delay(failures: list) -> int:
    """Seconds the next attempt must wait after the failures still in the window."""
    if len(failures) <= LOGIN_DELAY_AFTER:
        return 0
    wait = 2 ** (len(failures) - LOGIN_DELAY_AFTER)
    elapsed = (clock.now() - failures[-1]).total_seconds()
    return max(0, int(wait - elapsed + 0.999))


def _login_limits(email: str, ip: str | None) -> list[tuple[Rule, str]]:
    checks = [(LOGIN_FAILURES_PER_ACCOUNT, normalize_email(email))]
    if ip:
        checks.append((LOGIN_FAILURES_PER_IP, ip))
    return checks


def _login_wait(rule: Rule, failures: list) -> int:
    return login_delay(failures)


def login_throttle(email: str, ip: str | None) -> Decision:
    """Whether an attempt would be checked now: limits by account and by address.

    Only a preview: `check_password` reserves the attempt, which is the check that
    counts. Unknown addresses are throttled exactly like real accounts, so the answers
    never tell which accounts exist.
    """
    retry_after = 0
    for rule, key in _login_limits(email, ip):
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
    """The password step: rate limits, then the password; every failure is recorded.

    The attempt is counted as a failure before the password is checked (and given back
    if it was right), so parallel attempts can never check more passwords than the
    limits and delays allow.
    """
    ip = client_ip(request)
    email = normalize_email(email)
    reservation = ratelimit.reserve(_login_limits(email, ip), wait=_login_wait)
    if not reservation.allowed:
        return LoginResult(None, reservation)
    user = authenticate(request, username=email, password=password)
    if user is None:
        with transaction.atomic():
            known = User.objects.filter(email=email).first()
            if known is not None:
                audit.record(
                    Action.LOGIN_FAILED,
                    actor=known,
                    target=known,
                    request=request,
                    details={"reason": "password"},
                )
            else:
                audit.record(
                    Action.LOGIN_FAILED,
                    request=request,
                    actor_type="anonymous",
                    actor_label=email,
                    details={"reason": "unknown account"},
                )
        return LoginResult(None)
    reservation.release()
    return LoginResult(user)


def complete_login(request: HttpRequest, user: User) -> None:
    """Open the session: a new session id, timeout clocks, the user's language.

    Only for a user whose password (and second factor, when they have one) was just
    checked: the session counts as freshly authenticated from now on. A session opened
    any other way has no login time, and the timeout middleware ends it.
    """
    with transaction.atomic():
        ratelimit.clear(LOGIN_FAILURES_PER_ACCOUNT, user.email)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        now = clock.now().timestamp()
        request.session[SESSION_LOGIN_AT] = now
        request.session[SESSION_SEEN_AT] = now
        request.session[SESSION_AUTHENTICATED_AT] = now
        audit.record(Action.LOGIN_SUCCEEDED, actor=user, target=user, request=request)
        record_session(request, user)


def log_out(request: HttpRequest, *, reason: str = "") -> None:
    user = request.user
    if user.is_authenticated:
        audit.record(
            Action.LOGOUT,
            actor=user,
            target=user,
            request=request,
            details={"reason": reason} if reason else None,
        )
        forget_session(request.session.session_key)
    logout(request)


# --- Security notices ----------------------------------------------------------------


def email_security_notice(user: User, what, *, actor: User | None = None, to: str = "") -> None:
    """Tell a user that something about their account's security changed.

    `what` is a lazy translation: it is rendered in the user's language.
    """
    from django.conf import settings

    notify.send_templated_email(
        to or user.email,
        subject_template="accounts/email/security_notice_subject.txt",
        text_template="accounts/email/security_notice.txt",
        context={
            "user_name": user.display_name,
            "what": what,
            "admin_name": actor.display_name if actor is not None and actor != user else "",
            "base_url": settings.SEALBOX_BASE_URL,
        },
        language=user.language,
    )


def token_hash(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()


# --- Active sessions ----------------------------------------------------------------

SESSION_TOUCH_SECONDS = 30


def _session_store():
    from importlib import import_module

    from django.conf import settings

    return import_module(settings.SESSION_ENGINE).SessionStore


def record_session(request: HttpRequest, user: User) -> None:
    """Note the device and address of a newly opened session (called at login)."""
    from sealbox.lib.http import user_agent

    key = request.session.session_key
    if not key:
        request.session.save()
        key = request.session.session_key
    now = clock.now()
    SessionRecord.objects.update_or_create(
        session_key=key,
        defaults={
            "user": user,
            "ip": client_ip(request),
            "user_agent": user_agent(request),
            "created_at": now,
            "last_seen_at": now,
        },
    )


def touch_session(request: HttpRequest) -> None:
    """Refresh last seen and address (the timeout middleware calls this every 30 s)."""
    from sealbox.lib.http import user_agent

    key = request.session.session_key
    if not key or not request.user.is_authenticated:
        return
    now = clock.now()
    updated = SessionRecord.objects.filter(session_key=key, user=request.user).update(
        last_seen_at=now, ip=client_ip(request)
    )
    if not updated:
        SessionRecord.objects.create(
            session_key=key,
            user=request.user,
            ip=client_ip(request),
            user_agent=user_agent(request),
            created_at=now,
            last_seen_at=now,
        )


def forget_session(session_key: str | None) -> None:

    if session_key:
        SessionRecord.objects.filter(session_key=session_key).delete()


def active_sessions(user: User):
    """The user's sessions still alive, most recent first (stale records are dropped)."""
    from django.conf import settings

    cutoff = clock.now() - timedelta(seconds=settings.SEALBOX_SESSION_IDLE_SECONDS)
    SessionRecord.objects.filter(user=user, last_seen_at__lt=cutoff).delete()
    return SessionRecord.objects.filter(user=user).order_by("-last_seen_at")


def end_sessions(user: User, *, keep: str | None = None) -> int:
    """End every session of the user (but `keep`): the session rows are deleted."""

    store = _session_store()
    records = SessionRecord.objects.filter(user=user)
    if keep:
        records = records.exclude(session_key=keep)
    keys = list(records.values_list("session_key", flat=True))
    for key in keys:
        store(session_key=key).delete()
    records.delete()
    return len(keys)


def log_out_other_sessions(request: HttpRequest, user: User) -> int:
    with transaction.atomic():
        count = end_sessions(user, keep=request.session.session_key)
        audit.record(
            Action.SESSIONS_LOGGED_OUT_OTHERS,
            actor=user,
            target=user,
            request=request,
            details={"sessions": count},
        )
    return count


def describe_device(agent: str) -> str:
    """ "Firefox on Windows": enough to recognise a session, from the user agent."""
    agent = agent or ""
    browser = next(
        (
            name
            for token, name in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Chromium/", "Chromium"),
                ("Safari/", "Safari"),
                ("python-requests", "Python"),
                ("python-httpx", "Python"),
                ("curl/", "curl"),
            )
            if token in agent
        ),
        "",
    )
    system = next(
        (
            name
            for token, name in (
                ("Android", "Android"),
                ("iPhone", "iPhone"),
                ("iPad", "iPad"),
                ("Windows", "Windows"),
                ("Mac OS X", "macOS"),
                ("CrOS", "ChromeOS"),
                ("Linux", "Linux"),
            )
            if token in agent
        ),
        "",
    )
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown device")


# --- Personal API tokens ------------------------------------------------------------

TOKEN_PREFIX = "sbx_"
TOKEN_EXPIRY_CHOICES_DAYS = (7, 30, 90, 365)
MAX_TOKENS_PER_USER = 20
TOKEN_TOUCH_SECONDS = 60


def live_tokens(user: User):

    return ApiToken.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=clock.now()
    ).order_by("-created_at")


def create_api_token(request: HttpRequest | None, user: User, name: str, days: int):
    """A new token: 256 random bits after a recognisable prefix. Returns (token, secret);
    the secret is shown once and only its SHA-256 is stored."""
    import secrets

    name = (name or "").strip()
    if not name:
        raise AccountError(_("Give the token a name, for example the tool that will use it."))
    if days not in TOKEN_EXPIRY_CHOICES_DAYS:
        raise AccountError(_("Choose an expiry from the list."))
    if live_tokens(user).count() >= MAX_TOKENS_PER_USER:
        raise AccountError(
            _("You have %(n)d active tokens, the most allowed. Revoke one first.")
            % {"n": MAX_TOKENS_PER_USER}
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:64],
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            token_hash=token_hash(secret),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit.record(
            Action.API_TOKEN_CREATED,
            actor=user,
            target=user,
            request=request,
            details={
                "token": token.pk,
                "name": token.name,
                "expires_at": token.expires_at.isoformat(),
            },
        )
        email_security_notice(
            user,
            _lazy(
                gettext_noop("A personal API token named “%(name)s” was created."), name=token.name
            ),
        )
    return token, secret


def revoke_api_token(request: HttpRequest | None, user: User, pk: int) -> None:

    token = ApiToken.objects.filter(user=user, pk=pk).first()
    if token is None:
        raise NotTheirs(_("No such token."))
    if token.revoked_at is not None:
        raise AccountError(_("No such token."))
    with transaction.atomic():
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            Action.API_TOKEN_REVOKED,
            actor=user,
            target=user,
            request=request,
            details={"token": token.pk, "name": token.name},
        )
        email_security_notice(
            user,
            _lazy(
                gettext_noop("The personal API token named “%(name)s” was revoked."),
                name=token.name,
            ),
        )


def user_for_token(secret: str) -> User | None:
    """The active user a Bearer token belongs to, or None (unknown, revoked, expired)."""

    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    now = clock.now()
    # The organisation with the user: every call checks its 2FA policy, and the services
    # read it (plan, limits) — one query instead of two.
    token = (
        ApiToken.objects.select_related("user__organisation")
        .filter(token_hash=token_hash(secret), revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if token is None or not token.user.is_active or token.user.deleted_at is not None:
        return None
    if (
        token.last_used_at is None
        or (now - token.last_used_at).total_seconds() >= TOKEN_TOUCH_SECONDS
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


class _lazy:
    """A translatable sentence with values, translated when rendered (in an email's
    language, not the language of the request that caused it)."""

    def __init__(self, text: str, **values):
        self.text = text
        self.values = values

    def __str__(self) -> str:
        from django.utils.translation import gettext

        return gettext(self.text) % self.values


# --- Email address change -----------------------------------------------------------

EMAIL_CHANGE_LIFETIME = timedelta(hours=24)


def check_new_email(organisation: Organisation, email: str) -> str:
    """The address, normalised, if a new user of this organisation may have it.

    An address of this organisation's own users is named as such; an address taken in
    another organisation (or reserved) raises AddressUnavailable with the same answer
    whatever the reason, so administrators cannot probe who has an account elsewhere.
    """
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError(
            _("%(email)s is not a valid email address.") % {"email": email}, code="invalid_email"
        ) from None
    unavailable = AddressUnavailable(_("%(email)s cannot be invited.") % {"email": email})
    if email.rsplit("@", 1)[-1] == DELETED_EMAIL_DOMAIN:
        raise unavailable
    existing = User.objects.filter(email=email).values_list("organisation_id", flat=True).first()
    if existing == organisation.pk:
        raise AccountError(
            _("A user with the email %(email)s already exists.") % {"email": email},
            code="email_taken",
        )
    # The domain rule before the accounts of others: an address it refuses is refused
    # alike, taken or not.
    if not email_allowed(organisation, email):
        raise AccountError(domain_refused_message(organisation, email), code="domain_refused")
    if existing is not None:
        raise unavailable
    return email


def email_allowed(organisation: Organisation, email: str) -> bool:
    domains = organisation.approved_domains
    if not domains:
        return True
    return email.rsplit("@", 1)[-1].lower() in domains


def domain_refused_message(organisation: Organisation, email: str) -> str:
    return _("%(email)s is outside the approved email domains of %(org)s (%(domains)s).") % {
        "email": email,
        "org": organisation.name,
        "domains": ", ".join(organisation.approved_domains),
    }


def request_email_change(request: HttpRequest, user: User, new_email: str, password: str) -> None:
    """Send a confirmation link to the new address; nothing changes until it is used."""
    import secrets

    from django.conf import settings
    from django.urls import reverse

    if not user.check_password(password):
        raise AccountError(_("Your password is not correct."))
    new_email = normalize_email(new_email)
    try:
        validate_email(new_email)
    except ValidationError:
        raise AccountError(
            _("%(email)s is not a valid email address.") % {"email": new_email}
        ) from None
    if new_email == user.email:
        raise AccountError(_("This is already your email address."))
    if User.objects.filter(email=new_email).exists():
        raise AccountError(_("Another account already uses this address."))
    if not email_allowed(user.organisation, new_email):
        raise AccountError(domain_refused_message(user.organisation, new_email))
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    with transaction.atomic():
        EmailChange.objects.filter(user=user, used_at__isnull=True).delete()
        EmailChange.objects.create(
            user=user,
            new_email=new_email,
            token_hash=token_hash(secret),
            created_at=now,
            expires_at=now + EMAIL_CHANGE_LIFETIME,
        )
        audit.record(
            Action.EMAIL_CHANGE_REQUESTED,
            actor=user,
            target=user,
            request=request,
            details={"from": user.email, "to": new_email},
        )
    notify.send_templated_email(
        new_email,
        subject_template="accounts/email/email_change_subject.txt",
        text_template="accounts/email/email_change.txt",
        context={
            "user_name": user.display_name,
            "confirm_url": settings.SEALBOX_BASE_URL
            + reverse("accounts:email_confirm", kwargs={"token": secret}),
            "hours": int(EMAIL_CHANGE_LIFETIME.total_seconds() // 3600),
        },
        language=user.language,
        sensitive=True,
    )


def pending_email_for(user: User) -> str:
    """The address waiting for confirmation, if any."""

    change = (
        EmailChange.objects.filter(user=user, used_at__isnull=True, expires_at__gt=clock.now())
        .order_by("-created_at")
        .first()
    )
    return change.new_email if change else ""


def pending_email_change(token: str):

    change = (
        EmailChange.objects.select_related("user")
        .filter(token_hash=token_hash(token or ""), used_at__isnull=True)
        .first()
    )
    if change is None or change.expires_at <= clock.now() or not change.user.is_active:
        return None
    return change


def confirm_email_change(request: HttpRequest, token: str) -> User:

    with transaction.atomic():
        change = pending_email_change(token)
        if change is None:
            raise AccountError(_("This link has expired or was already used."))
        # Single use, even when two requests race for it.
        claimed = EmailChange.objects.filter(pk=change.pk, used_at__isnull=True).update(
            used_at=clock.now()
        )
        if not claimed:
            raise AccountError(_("This link has expired or was already used."))
        user = change.user
        if User.objects.filter(email=change.new_email).exclude(pk=user.pk).exists():
            raise AccountError(_("Another account already uses this address."))
        old_email = user.email
        user.email = change.new_email
        user.save(update_fields=["email"])
        audit.record(
            Action.EMAIL_CHANGED,
            actor=user,
            target=user,
            request=request,
            details={"from": old_email, "to": user.email},
        )
        email_security_notice(
            user,
            _lazy(
                gettext_noop("The email address of your account was changed to %(email)s."),
                email=user.email,
            ),
            to=old_email,
        )
    return user


# --- Preferences for new messages ---------------------------------------------------

PREFERENCE_FIELDS = (
    "expiry_days",
    "max_opens",
    "verification",
    "notify_on_open",
    "show_subject",
    "keep_copy",
    "recipient_language",
)


def message_preferences(user: User):
    """The user's saved defaults, or the product's defaults when none are saved."""

    found = MessagePreferences.objects.filter(user=user).first()
    if found is not None:
        return found
    return MessagePreferences(
        user=user,
        expiry_days=user.organisation.default_expiry_days
        if user.organisation.default_expiry_days in (1, 7, 30)
        else 7,
    )


def update_preferences(user: User, request: HttpRequest | None = None, **values) -> list[str]:
    preferences = message_preferences(user)
    changed = [
        name
        for name in PREFERENCE_FIELDS
        if name in values and getattr(preferences, name) != values[name]
    ]
    if not changed and preferences.pk:
        return []
    for name in changed:
        setattr(preferences, name, values[name])
    preferences.full_clean(exclude=["user"])
    with transaction.atomic():
        preferences.save()
        audit.record(
            Action.PREFERENCES_UPDATED,
            actor=user,
            target=user,
            request=request,
            details={"fields": changed},
        )
    return changed
