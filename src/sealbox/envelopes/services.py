"""Business rules of secure envelopes: create, deliver, verify the submitter, accept a
sealed submission, close, expire.

The submitter's browser encrypts; this module decides who may submit what, and reuses the
exchange's sealed-draft machinery (store_chunk, finalise) for the ciphertext itself."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core import signing
from django.db import transaction
from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.translation import gettext as _

from sealbox.accounts.models import User
from sealbox.audit import services as audit
from sealbox.audit.actions import Action
from sealbox.envelopes.models import (
    Envelope,
    EnvelopeLink,
    EnvelopeState,
    EnvelopeVerification,
    FilesMode,
    Submission,
)
from sealbox.exchange import services as exchange
from sealbox.exchange.models import Blob, BlobKind, Message, MessageKind, MessageState
from sealbox.exchange.services import (
    BlobSpec,
    ExchangeError,
    Notification,
    RecipientSpec,
    check_within_limits,
    enforce_limits,
)
from sealbox.lib import clock, throttle
from sealbox.lib.formats import human_size
from sealbox.lib.http import client_ip
from sealbox.ratelimit import services as ratelimit
from sealbox.ratelimit.services import Rule

SUBMIT_SALT = "sealbox.envelopes.submit"
SUBMIT_WINDOW = timedelta(hours=4)  # after verification, time to fill and upload
START_FAILURES_PER_LINK = Rule("envelope-start-link", 10, timedelta(hours=1))
START_FAILURES_PER_IP = Rule("envelope-start-ip", 20, timedelta(hours=1))
MAX_EXTENSION_LENGTH = 10
GB = 1000 * 1000 * 1000
# Drafts being uploaded to one envelope, which anyone with its link can start: their
# number and declared size are capped per address and per envelope, counted when each is
# created (under a lock on the envelope), until they are sent or purged as abandoned
# (exchange.ABANDONED_AFTER without a chunk).
OPEN_DRAFTS_PER_IP = 3
OPEN_DRAFTS_PER_ENVELOPE = 20
OPEN_DRAFT_BYTES_PER_IP = 5 * GB
OPEN_DRAFT_BYTES_PER_ENVELOPE = 25 * GB
PER_ADDRESS_WINDOW = timedelta(hours=1)  # what per_ip_hourly counts over
# Bounds of an envelope's settings, for every caller (the page, the API): within the
# database columns and what a person could mean.
MAX_SUBJECT_LENGTH = 200
MAX_INSTRUCTIONS_LENGTH = 5000
MAX_EXTENSIONS_LENGTH = 500
MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 200
MIN_PASSWORD_LENGTH = 8
MAX_PER_IP_HOURLY = 1000
MAX_SUBMISSIONS = 100000
LARGEST_TOTAL_BYTES = 10**13  # 10 TB: past any plan, still a number the column holds
DELIVERIES = ("email", "links")
DEFAULT_EXPIRY_DAYS = 7  # the page's default


class LinkState:
    OPEN = "open"
    CLOSED = "closed"
    EXPIRED = "expired"
    USED = "used"
    LOCKED = "locked"  # too many wrong proofs: the owner can unlock it


# --- Creating ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvelopeRecipient:
    email: str
    phone: str = ""
    verification: str = EnvelopeVerification.NONE
    password: str = ""


@dataclass(frozen=True)
class EnvelopeSpec:
    subject: str
    expires_at: datetime
    recipients: list[EnvelopeRecipient] = field(default_factory=list)
    public: bool = False
    instructions: str = ""
    files_mode: str = FilesMode.OPTIONAL
    allowed_extensions: list[str] = field(default_factory=list)
    max_total_bytes: int | None = None
    reply_expiry_hours: int = 24
    reply_max_opens: int = 3
    notify_on_use: bool = True
    language: str = "en"
    delivery: str = "email"
    per_ip_hourly: int = 5
    max_submissions: int = 100


def normalise_extensions(text: str | list[str]) -> list[str]:
    """ "PDF, .jpg docx" → ["pdf", "jpg", "docx"]; raises on anything odd."""
    words = text if isinstance(text, list) else text.replace(",", " ").split()
    found: list[str] = []
    for word in words:
        ext = word.strip().lstrip(".").lower()
        if not ext:
            continue
        if not ext.isalnum() or len(ext) > MAX_EXTENSION_LENGTH:
            raise ExchangeError(
                _("“%(ext)s” is not a file extension (letters and digits, like pdf).")
                % {"ext": word},
                field="allowed_extensions",
            )
        if ext not in found:
            found.append(ext)
    return found


def plan_limit(owner: User) -> int | None:
    return owner.organisation.plan.max_send_bytes


def _validate_spec(owner: User, spec: EnvelopeSpec) -> None:
    """Every rule of a new envelope, whoever asks (the page's form only reads the input)."""
    now = clock.now()
    subject = spec.subject.strip()
    if not subject:
        raise ExchangeError(_("Write a subject."), field="subject")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise ExchangeError(
            _("The subject is too long (at most %(n)d characters).") % {"n": MAX_SUBJECT_LENGTH},
            field="subject",
        )
    if len(spec.instructions.strip()) > MAX_INSTRUCTIONS_LENGTH:
        raise ExchangeError(
            _("The instructions are too long (at most %(n)d characters).")
            % {"n": MAX_INSTRUCTIONS_LENGTH},
            field="instructions",
        )
    if spec.public and spec.recipients:
        raise ExchangeError(_("A public link has no recipients."), field="recipients")
    if not spec.public and not spec.recipients:
        raise ExchangeError(_("Add at least one recipient."), field="recipients")
    exchange.check_recipient_count(spec.recipients)
    if spec.delivery not in DELIVERIES:
        raise ExchangeError(_("Choose Send or Create links."), field="delivery")
    if spec.public and spec.delivery == "email":
        raise ExchangeError(
            _("A public link has nobody to email: choose Create link."), field="delivery"
        )
    if spec.language not in dict(settings.LANGUAGES):
        raise ExchangeError(_("Choose English or French."), field="language")
    expires_at = clock.aware(spec.expires_at)
    if expires_at <= now:
        raise ExchangeError(_("The expiry must be in the future."), field="expires_at")
    if expires_at > exchange.latest_expiry(owner.organisation, now) + timedelta(minutes=5):
        raise ExchangeError(
            _("Your plan keeps messages at most %(days)d days.")
            % {"days": owner.organisation.plan.max_retention_days},
            field="expires_at",
        )
    exchange.check_max_opens(spec.reply_max_opens, "reply_max_opens")
    if not 1 <= spec.reply_expiry_hours <= 24 * owner.organisation.plan.max_retention_days:
        raise ExchangeError(
            _("The reply expiry is longer than your plan allows."), field="reply_expiry_hours"
        )
    if not 1 <= spec.per_ip_hourly <= MAX_PER_IP_HOURLY:
        raise ExchangeError(
            _("Submissions per hour from one address must be between 1 and %(n)d.")
            % {"n": MAX_PER_IP_HOURLY},
            field="per_ip_hourly",
        )
    if not 1 <= spec.max_submissions <= MAX_SUBMISSIONS:
        raise ExchangeError(
            _("Most submissions in total must be between 1 and %(n)d.") % {"n": MAX_SUBMISSIONS},
            field="max_submissions",
        )
    if len(" ".join(normalise_extensions(spec.allowed_extensions))) > MAX_EXTENSIONS_LENGTH:
        raise ExchangeError(
            _("The list of allowed file types is too long."), field="allowed_extensions"
        )
    _validate_size(owner, spec)
    for index, recipient in enumerate(spec.recipients):
        _validate_recipient(recipient, index)


def _validate_size(owner: User, spec: EnvelopeSpec) -> None:
    limit = plan_limit(owner)
    if spec.files_mode not in FilesMode.values:
        raise ExchangeError(
            _("Choose whether files are not allowed, optional or mandatory."), field="files_mode"
        )
    if spec.files_mode != FilesMode.NONE and limit == 0:
        raise ExchangeError(_("Your plan does not allow attachments."), field="files_mode")
    if spec.max_total_bytes is not None and spec.max_total_bytes <= 0:
        raise ExchangeError(_("The largest total size must be positive."), field="max_total_bytes")
    if limit is not None and spec.max_total_bytes is not None and spec.max_total_bytes > limit:
        raise ExchangeError(
            _("Your plan allows %(limit)s per message.") % {"limit": human_size(limit)},
            field="max_total_bytes",
        )
    if spec.max_total_bytes is not None and spec.max_total_bytes > LARGEST_TOTAL_BYTES:
        raise ExchangeError(
            _("The largest total size can be at most %(limit)s.")
            % {"limit": human_size(LARGEST_TOTAL_BYTES)},
            field="max_total_bytes",
        )


def _valid_email(email: str) -> bool:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(email)
    except ValidationError:
        return False
    return len(email) <= MAX_EMAIL_LENGTH


def _validate_recipient(recipient: EnvelopeRecipient, index: int) -> None:
    field = f"recipients[{index}]"
    if not _valid_email(recipient.email.strip()):
        raise ExchangeError(
            _("Enter a valid email address for each recipient."), field=f"{field}.email"
        )
    if recipient.verification not in EnvelopeVerification.values:
        raise ExchangeError(
            _("Choose how the recipient proves who they are."), field=f"{field}.verification"
        )
    if recipient.verification == EnvelopeVerification.SMS_CODE and not recipient.phone:
        raise ExchangeError(
            _("An SMS code needs the recipient's mobile phone."), field=f"{field}.phone"
        )
    if recipient.verification != EnvelopeVerification.PASSWORD:
        return
    if len(recipient.password) < MIN_PASSWORD_LENGTH:
        raise ExchangeError(
            _("Type a password for each recipient verified by password (at least 8 characters)."),
            field=f"{field}.password",
        )
    if len(recipient.password) > MAX_PASSWORD_LENGTH:
        raise ExchangeError(
            _("A recipient's password is too long (at most %(n)d characters).")
            % {"n": MAX_PASSWORD_LENGTH},
            field=f"{field}.password",
        )


def new_link_token() -> str:
    return secrets.token_urlsafe(16)


def link_url(link: EnvelopeLink) -> str:
    return f"{settings.SEALBOX_BASE_URL.rstrip('/')}/e/{link.token}"


def create_envelope(
    owner: User, spec: EnvelopeSpec, *, request: HttpRequest | None = None
) -> Envelope:
    """Create the envelope and its links; with Send, email each recipient their link."""
    _validate_spec(owner, spec)
    phones = [
        exchange.recipient_phone(r.phone, owner.sms_country, i)
        for i, r in enumerate(spec.recipients)
    ]
    limit = plan_limit(owner)
    max_total = spec.max_total_bytes if spec.max_total_bytes is not None else limit
    with transaction.atomic():
        envelope = Envelope.objects.create(
            organisation=owner.organisation,
            owner=owner,
            subject=spec.subject.strip(),
            instructions=spec.instructions.strip(),
            public=spec.public,
            files_mode=spec.files_mode,
            allowed_extensions=" ".join(normalise_extensions(spec.allowed_extensions)),
            max_total_bytes=max_total,
            expires_at=clock.aware(spec.expires_at),
            reply_expiry_hours=spec.reply_expiry_hours,
            reply_max_opens=spec.reply_max_opens,
            notify_on_use=spec.notify_on_use,
            language=spec.language,
            delivery=spec.delivery,
            per_ip_hourly=spec.per_ip_hourly,
            max_submissions=spec.max_submissions if spec.public else len(spec.recipients),
            created_at=clock.now(),
        )
        links = _create_links(envelope, spec, phones)
        audit.record(
            Action.ENVELOPE_CREATED,
            actor=owner,
            target=envelope,
            request=request,
            details={
                "reference": envelope.reference,
                "public": envelope.public,
                "recipients": len(spec.recipients),
            },
        )
        if spec.delivery == "email":
            _deliver(envelope, links, request)
    envelope.new_opening_codes = opening_codes(links) if spec.delivery != "email" else {}
    return envelope


def _create_links(envelope: Envelope, spec: EnvelopeSpec, phones: list[str]) -> list:
    if spec.public:
        return [EnvelopeLink.objects.create(envelope=envelope, token=new_link_token())]
    links = []
    for recipient, phone in zip(spec.recipients, phones, strict=True):
        link = EnvelopeLink(
            envelope=envelope,
            token=new_link_token(),
            email=recipient.email.strip().lower(),
            phone=phone,
            verification=recipient.verification,
            password_hash=make_password(recipient.password)
            if recipient.verification == EnvelopeVerification.PASSWORD
            else "",
        )
        if recipient.verification == EnvelopeVerification.OPENING_CODE:
            # Known in clear only until it is emailed or shown to the owner, once.
            link.opening_code = exchange.new_opening_code()
            link.opening_code_hash = exchange.proof_hash(link.token, "opening", link.opening_code)
        link.save()
        links.append(link)
    return links


def opening_codes(links: list[EnvelopeLink]) -> dict[int, str]:
    """Each new link's opening code by link id, to show the owner once (Create link).
    By link, not by address: two links for one address each have their own code."""
    return {link.pk: link.opening_code for link in links if getattr(link, "opening_code", "")}


def _deliver(envelope: Envelope, links: list[EnvelopeLink], request: HttpRequest | None) -> None:
    from sealbox.envelopes import notifications

    for link in links:
        notifications.send_envelope_link(
            envelope, link, link_url(link), opening_code=getattr(link, "opening_code", "")
        )
        audit.record(
            Action.ENVELOPE_LINK_QUEUED,
            actor=envelope.owner,
            target=envelope,
            request=request,
            details={"reference": envelope.reference, "to": link.email},
        )


# --- The owner's envelopes ----------------------------------------------------------------


def envelopes_of(owner: User):
    return (
        Envelope.objects.filter(owner=owner, organisation=owner.organisation)
        .select_related("owner", "organisation")
        .annotate(submission_count=Coalesce(Sum("links__submissions"), 0))
        .prefetch_related("links")
        .order_by("-created_at", "-id")
    )


def envelope_for_owner(user: User, public_id) -> Envelope:
    """The user's own envelope; anyone else (even an administrator) gets 404."""
    envelope = (
        Envelope.objects.select_related("owner", "organisation")
        .filter(public_id=public_id, owner=user, organisation=user.organisation)
        .first()
    )
    if envelope is None:
        raise ExchangeError(_("No such envelope."), status=404, code="not_found")
    return envelope


def envelope_state(envelope: Envelope, now: datetime | None = None) -> str:
    if envelope.state == EnvelopeState.CLOSED:
        return LinkState.CLOSED
    if envelope.expires_at <= (now or clock.now()):
        return LinkState.EXPIRED
    return LinkState.OPEN


class CloseReason:
    """Why an envelope was closed (the `reason` of its envelope.closed event)."""

    OWNER = "closed_by_owner"
    OWNER_DISABLED = "owner_disabled"
    OWNER_DELETED = "owner_deleted"


def close_envelope(
    user: User,
    envelope: Envelope,
    *,
    request: HttpRequest | None = None,
    reason: str = CloseReason.OWNER,
) -> bool:
    """Close before expiry: every link of the envelope dies at once. One conditional
    update, so an envelope is closed (and its event recorded) once, however many ask."""
    now = clock.now()
    with transaction.atomic():
        closed = Envelope.objects.filter(pk=envelope.pk, state=EnvelopeState.OPEN).update(
            state=EnvelopeState.CLOSED, closed_at=now
        )
        if not closed:
            return False
        envelope.state = EnvelopeState.CLOSED
        envelope.closed_at = now
        audit.record(
            Action.ENVELOPE_CLOSED,
            actor=user,
            organisation=envelope.organisation,
            target=envelope,
            request=request,
            details={"reference": envelope.reference, "reason": reason},
        )
    return True


def close_envelopes_of(
    owner: User, *, actor: User, reason: str, request: HttpRequest | None = None
) -> int:
    """Close every open envelope of an owner who is being disabled or deleted: what they
    would receive nobody could open (only the owner, logged in, holds the way in).
    Called inside the caller's transaction, with its own audit event per envelope."""
    envelopes = Envelope.objects.filter(
        owner=owner, state=EnvelopeState.OPEN, expires_at__gt=clock.now()
    ).select_related("organisation")
    return sum(
        close_envelope(actor, envelope, request=request, reason=reason) for envelope in envelopes
    )


def unlock_link(
    user: User, envelope: Envelope, link_id: int, *, request: HttpRequest | None = None
) -> EnvelopeLink:
    """The owner unlocks a link that wrong proofs locked (`envelope` from
    `envelope_for_owner`); its submitter can ask for a new code at once."""
    link = envelope.links.filter(pk=link_id).first()
    if link is None:
        raise ExchangeError(_("No such envelope."), status=404, code="not_found")
    with transaction.atomic():
        unlocked = EnvelopeLink.objects.filter(pk=link.pk, locked_at__isnull=False).update(
            locked_at=None, failed_attempts=0
        )
        if unlocked:
            ratelimit.clear(START_FAILURES_PER_LINK, link.token)
            audit.record(
                Action.ENVELOPE_LINK_UNLOCKED,
                actor=user,
                target=envelope,
                request=request,
                details={"reference": envelope.reference, "recipient": link.email},
            )
    link.refresh_from_db()
    return link


def submissions_of(envelope: Envelope) -> list[Submission]:
    return list(
        envelope.submissions.filter(submitted_at__isnull=False)
        .select_related("message")
        .order_by("-submitted_at")
    )


# --- The submitter ------------------------------------------------------------------------


def find_link(token: str) -> EnvelopeLink:
    link = (
        EnvelopeLink.objects.select_related("envelope", "envelope__owner", "envelope__organisation")
        .filter(token=token)
        .first()
    )
    if link is None:
        raise ExchangeError(
            _("This link is not valid. Check that you copied all of it."),
            status=404,
            code="not_found",
        )
    return link


def submission_limit(link: EnvelopeLink) -> int:
    return link.envelope.max_submissions if link.envelope.public else 1


def link_state(link: EnvelopeLink) -> str:
    state = envelope_state(link.envelope)
    if state == LinkState.OPEN and not link.envelope.owner.is_active:
        # Disabled other than through user administration (which closes the envelope):
        # still closed, as nobody could open a submission.
        return LinkState.CLOSED
    if state == LinkState.OPEN and link.submissions >= submission_limit(link):
        return LinkState.USED
    if state == LinkState.OPEN and link.locked_at is not None:
        return LinkState.LOCKED
    return state


def locked_error() -> ExchangeError:
    return ExchangeError(
        _("Too many wrong attempts: this link is locked. Ask the envelope’s owner to unlock it."),
        status=403,
        code="locked",
    )


def ensure_link_open(link: EnvelopeLink) -> None:
    state = link_state(link)
    if state == LinkState.LOCKED:
        raise locked_error()
    if state == LinkState.USED:
        raise ExchangeError(
            _("This envelope was already used. Ask its owner for a new one."),
            status=410,
            code="used",
        )
    if state != LinkState.OPEN:
        raise ExchangeError(
            _("This envelope is no longer available. Ask its owner for a new one."),
            status=410,
            code="gone",
        )


def code_binding(link: EnvelopeLink) -> str:
    return f"envelope-link:{link.pk}"


def resend_wait(link: EnvelopeLink) -> int:
    """Seconds before the submitter may ask for another code (the resend cooldown)."""
    from sealbox.twofactor import services as codes

    return codes.resend_wait(code_binding(link))


def send_code(link: EnvelopeLink, request: HttpRequest | None = None):
    """Send the submitter a code by the channel their link uses (same rules as messages)."""
    from sealbox.envelopes import notifications
    from sealbox.twofactor import services as codes

    ensure_link_open(link)
    if link.verification not in (EnvelopeVerification.SMS_CODE, EnvelopeVerification.EMAIL_CODE):
        raise ExchangeError(_("This envelope does not use a code sent by SMS or email."))
    common = {
        "binding": code_binding(link),
        "language": link.envelope.language,
        "account_key": f"envelope:{link.token}",
        "ip": client_ip(request) if request else None,
        "purpose": "message",
        "organisation": link.envelope.organisation,
        "target": link.envelope,
        "request": request,
        "fresh_tries": True,  # the link counts failures across codes, as a grant does
    }
    if link.verification == EnvelopeVerification.SMS_CODE:
        return codes.send_code(phone=link.phone, **common)
    return codes.send_code(
        phone="",
        channel="email",
        deliver=lambda code, reference: notifications.send_code(link, code, reference=reference),
        **common,
    )


def _proof_error(link: EnvelopeLink, code: str, password: str) -> str:
    """What is wrong with the submitter's proof ("" when it is right)."""
    from sealbox.twofactor import services as codes

    method = link.verification
    if method == EnvelopeVerification.NONE:
        return ""
    if method == EnvelopeVerification.OPENING_CODE:
        given = exchange.normalise_opening_code(code)
        if code and exchange.proof_is_right(
            EnvelopeLink, link.pk, "opening_code_hash", link.token, "opening", given
        ):
            return ""
        return _("This opening code is not correct.")
    if method == EnvelopeVerification.PASSWORD:
        if password and check_password(password, link.password_hash):
            return ""
        return _("This password is not correct.")
    result = codes.check_code(code_binding(link), (code or "").strip())
    if result == codes.CodeResult.OK:
        return ""
    return codes.code_result_message(result, "message")


def _record_submitter(
    link: EnvelopeLink, action: str, request, target=None, label: str = "", **details
) -> None:
    audit.record(
        action,
        organisation=link.envelope.organisation,
        actor_type="submitter",
        actor_id=str(link.pk),
        actor_label=label or link.email,
        target=target or link.envelope,
        request=request,
        details={"reference": link.envelope.reference, **details},
    )


def start(
    link: EnvelopeLink, *, code: str = "", password: str = "", request: HttpRequest | None = None
) -> str:
    """Check the submitter's proof; return the token that lets them submit for a while."""
    ensure_link_open(link)
    ip = (client_ip(request) if request else None) or "unknown"
    limits = [(START_FAILURES_PER_LINK, link.token), (START_FAILURES_PER_IP, ip)]
    if link.verification == EnvelopeVerification.NONE:
        # Nothing to guess (a public link's many submitters): nothing to count.
        enforce_limits(limits)
    else:
        locked: list[int] = []

        def record(_error: str) -> None:
            _record_submitter(link, Action.ENVELOPE_VERIFICATION_FAILED, request)
            failures = exchange.count_proof_failure(EnvelopeLink, link.pk)
            if failures is not None:
                locked.append(failures)
                _record_submitter(link, Action.ENVELOPE_LINK_LOCKED, request, failures=failures)

        error = check_within_limits(
            limits,
            lambda: _proof_error(link, code, password) or None,
            record,
            slow=link.verification == EnvelopeVerification.PASSWORD,  # Argon2
        )
        if locked:
            raise locked_error()
        if error:
            raise ExchangeError(error, status=403, code="verification_failed")
    with transaction.atomic():
        # The right proof ends the run of consecutive failures.
        EnvelopeLink.objects.filter(pk=link.pk).update(failed_attempts=0)
        first = EnvelopeLink.objects.filter(pk=link.pk, first_opened_at__isnull=True).update(
            first_opened_at=clock.now()
        )
        _record_submitter(link, Action.ENVELOPE_OPENED, request)
        if first and link.envelope.notify_on_use:
            from sealbox.envelopes import notifications

            notifications.send_used_notice(link)
    return signing.dumps({"l": link.pk}, salt=SUBMIT_SALT, compress=False)


def link_for_submit_token(token: str) -> EnvelopeLink:
    try:
        data = signing.loads(token or "", salt=SUBMIT_SALT, max_age=SUBMIT_WINDOW.total_seconds())
    except signing.BadSignature:
        raise ExchangeError(
            _("This page has been open too long. Reload it and start again."),
            status=403,
            code="expired",
        ) from None
    link = (
        EnvelopeLink.objects.select_related("envelope", "envelope__owner", "envelope__organisation")
        .filter(pk=data.get("l"))
        .first()
    )
    if link is None:
        raise ExchangeError(_("No such envelope."), status=404, code="not_found")
    ensure_link_open(link)
    return link


def _same_address(ip: str | None, field: str = "ip") -> Q:
    return Q(**{field: ip}) if ip else Q(**{f"{field}__isnull": True})


def _wait(since: datetime | None, lasting: timedelta) -> int:
    """Seconds until something that started at `since` and lasts `lasting` is over."""
    if since is None:
        return 60
    return max(60, math.ceil((since + lasting - clock.now()).total_seconds()))


def check_draft_limits(envelope: Envelope, ip: str | None, size: int) -> None:
    """Refuse (429) a new draft of `size` declared bytes from `ip` once the envelope has
    as many drafts under way as it may: the caller holds the lock on the envelope's row,
    so parallel requests are counted one after the other."""
    now = clock.now()
    submissions = Submission.objects.filter(envelope=envelope)
    if envelope.public:
        recent = submissions.filter(_same_address(ip), created_at__gt=now - PER_ADDRESS_WINDOW)
        if recent.count() >= envelope.per_ip_hourly:
            retry = _wait(recent.aggregate(first=Min("created_at"))["first"], PER_ADDRESS_WINDOW)
            raise throttle.too_many_attempts(retry, kind=ExchangeError)
    drafts = Message.objects.filter(submission__envelope=envelope, state=MessageState.DRAFT)
    mine = drafts.filter(_same_address(ip, "submission__ip"))
    for found, count_limit, bytes_limit, text in (
        (
            mine,
            OPEN_DRAFTS_PER_IP,
            OPEN_DRAFT_BYTES_PER_IP,
            _("Too many unfinished submissions from your network. Try again in %(n)d minutes."),
        ),
        (
            drafts,
            OPEN_DRAFTS_PER_ENVELOPE,
            OPEN_DRAFT_BYTES_PER_ENVELOPE,
            _(
                "Too many submissions are being uploaded to this envelope right now. "
                "Try again in %(n)d minutes."
            ),
        ),
    ):
        totals = found.aggregate(
            count=Count("id", distinct=True), idle=Min(Coalesce("last_upload_at", "created_at"))
        )
        declared = Blob.objects.filter(message__in=found).aggregate(total=Sum("size"))["total"]
        if totals["count"] >= count_limit or (declared or 0) + size > bytes_limit:
            retry = _wait(totals["idle"], exchange.ABANDONED_AFTER)
            raise ExchangeError(
                text % {"n": -(-retry // 60)}, status=429, code="throttled", retry_after=retry
            )


@dataclass(frozen=True)
class DeclaredFile:
    """A file's blob as the submitter declares it: its extension travels in clear so the
    server can enforce the allowed types (the name itself stays in the encrypted manifest)."""

    blob: BlobSpec
    extension: str


def check_files(envelope: Envelope, files: list[DeclaredFile]) -> None:
    """The envelope's rules on files: allowed or not, mandatory, types, total size."""
    if envelope.files_mode == FilesMode.NONE and files:
        raise ExchangeError(_("This envelope does not accept files."), field="files")
    if envelope.files_mode == FilesMode.MANDATORY and not files:
        raise ExchangeError(_("Add at least one file."), field="files")
    allowed = envelope.extensions
    for item in files:
        ext = item.extension.lstrip(".").lower()
        if allowed and ext not in allowed:
            raise ExchangeError(
                _("This type of file is not accepted. Allowed types: %(types)s.")
                % {"types": ", ".join(allowed)},
                status=415,
                code="file_type",
                field="files",
            )
    total = sum(exchange.plaintext_size(item.blob.size) for item in files)
    if envelope.max_total_bytes is not None and total > envelope.max_total_bytes:
        raise ExchangeError(
            _("The files total %(total)s; this envelope accepts at most %(limit)s.")
            % {"total": human_size(total), "limit": human_size(envelope.max_total_bytes)},
            status=413,
            code="too_large",
            field="files",
        )


def submission_expiry(envelope: Envelope, now: datetime) -> datetime:
    wanted = now + timedelta(hours=envelope.reply_expiry_hours)
    return min(wanted, exchange.latest_expiry(envelope.organisation, now))


def create_submission(
    submit_token: str,
    *,
    name: str,
    email: str,
    grant: RecipientSpec,
    manifest: BlobSpec,
    files: list[DeclaredFile],
    direct: bool = False,
    request: HttpRequest | None = None,
) -> Message:
    """A submission draft sealed in the submitter's browser for the envelope's owner
    (`direct`: its uploader asks to send the parts straight to the store)."""
    link = link_for_submit_token(submit_token)
    envelope = link.envelope
    if not name.strip():
        raise ExchangeError(_("Write your name."), field="name")
    ip = client_ip(request) if request else None
    check_files(envelope, files)
    now = clock.now()
    with transaction.atomic():
        # Drafts of one envelope are counted and created one at a time.
        Envelope.objects.select_for_update().filter(pk=envelope.pk).first()
        check_draft_limits(envelope, ip, manifest.size + sum(f.blob.size for f in files))
        message = exchange.create_sealed_draft(
            envelope.owner,
            kind=MessageKind.ENVELOPE,
            subject=envelope.subject,
            expires_at=submission_expiry(envelope, now),
            max_opens=envelope.reply_max_opens,
            grant=grant,
            blobs=[manifest, *(f.blob for f in files)],
            language=envelope.owner.language,
            direct=direct,
        )
        Submission.objects.create(
            envelope=envelope,
            link=link,
            message=message,
            name=name.strip()[:200],
            email=email.strip().lower()[:254],
            ip=ip,
            created_at=now,
        )
    return message


def finalise_submission(
    upload_token: str,
    message_id,
    notifications: list[Notification],
    *,
    request: HttpRequest | None = None,
) -> Message:
    """Count the submission (atomically, within the link's limit) and email the owner."""
    from sealbox.envelopes import notifications as notify

    message = exchange.sealed_draft(upload_token, message_id)
    submission = Submission.objects.select_related("link", "envelope").filter(message=message)
    submission = submission.first()
    if submission is None:
        raise ExchangeError(_("No such submission."), status=404, code="not_found")
    link = submission.link
    link.envelope = submission.envelope
    ensure_link_open(link)
    # The address's hourly limit was counted when the draft was created (check_draft_limits).

    def record(sealed: Message) -> None:
        counted = EnvelopeLink.objects.filter(
            pk=link.pk, submissions__lt=submission_limit(link)
        ).update(submissions=F("submissions") + 1)
        if not counted:
            raise ExchangeError(
                _("This envelope was already used. Ask its owner for a new one."),
                status=410,
                code="used",
            )
        now = clock.now()
        Submission.objects.filter(pk=submission.pk).update(submitted_at=now)
        # "Reply expires" counts from the submission, not from the start of the upload.
        sealed.expires_at = submission_expiry(link.envelope, sealed.sent_at)
        Message.objects.filter(pk=sealed.pk).update(expires_at=sealed.expires_at)
        sealed.grants.update(expires_at=sealed.expires_at)
        details = {"files": sealed.file_count, "bytes": sealed.attachment_bytes}
        for target, extra in ((sealed, {"submission": sealed.reference}), (None, {})):
            _record_submitter(
                link,
                Action.ENVELOPE_SUBMITTED,
                request,
                target=target,
                label=submission.email,
                **details,
                **extra,
            )

    return exchange.finalise_sealed(
        message,
        notifications,
        record=record,
        owner_email=lambda m, g, url: notify.send_submission_link(submission, m, url, grant=g),
        request=request,
    )


# --- Expiry ---------------------------------------------------------------------------------


def record_expired(now: datetime | None = None) -> int:
    """Record envelope.expired once for each envelope past its expiry (the purge calls it);
    the submissions themselves expire and are destroyed as messages are."""
    now = now or clock.now()
    due = Envelope.objects.filter(
        state=EnvelopeState.OPEN, expires_at__lte=now, expired_recorded_at__isnull=True
    ).select_related("organisation")
    count = 0
    for envelope in due:
        with transaction.atomic():
            # The claim: of parallel purges, the one whose update changes the row records.
            claimed = Envelope.objects.filter(
                pk=envelope.pk, expired_recorded_at__isnull=True
            ).update(expired_recorded_at=now)
            if not claimed:
                continue
            audit.record(
                Action.ENVELOPE_EXPIRED,
                organisation=envelope.organisation,
                target=envelope,
                details={"reference": envelope.reference},
            )
        count += 1
    return count


__all__ = ["BlobKind"]
