import re
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from sealbox.envelopes import services
from sealbox.envelopes.forms import EnvelopeForm, RecipientFormSet
from sealbox.exchange.services import MAX_RECIPIENTS, ExchangeError
from sealbox.lib import clock
from sealbox.lib.errors import SealboxError
from sealbox.lib.limits import MAX_MANIFEST_BYTES

MB = 1000 * 1000


def _owned(request, public_id):
    try:
        return services.envelope_for_owner(request.user, public_id)
    except ExchangeError:
        raise Http404 from None


@login_required
def list_view(request):
    envelopes = [(e, services.envelope_state(e)) for e in services.envelopes_of(request.user)]
    return render(request, "envelopes/list.html", {"envelopes": envelopes})


def _initial(user) -> dict:
    limit = services.plan_limit(user)
    return {
        "language": user.language,
        "max_total_mb": None if limit is None else max(1, limit // MB),
    }


def _filled(recipients: list[dict]) -> list[int]:
    """The formset rows that hold a recipient (an empty row is no recipient)."""
    return [index for index, row in enumerate(recipients) if row.get("email")]


def _spec(user, data: dict, recipients: list[dict], delivery: str) -> services.EnvelopeSpec:
    public = data["audience"] == "public"
    max_mb = data.get("max_total_mb")
    return services.EnvelopeSpec(
        subject=data["subject"],
        expires_at=clock.now() + timedelta(days=int(data["expires"])),
        recipients=[]
        if public
        else [
            services.EnvelopeRecipient(
                email=recipients[i]["email"],
                phone=recipients[i].get("phone", ""),
                verification=recipients[i]["verification"],
                password=recipients[i].get("password", ""),
            )
            for i in _filled(recipients)
        ],
        public=public,
        instructions=data.get("instructions", ""),
        files_mode=data["files_mode"],
        allowed_extensions=services.normalise_extensions(data.get("allowed_extensions") or ""),
        max_total_bytes=None if max_mb is None else max_mb * MB,
        reply_expiry_hours=int(data["reply_expiry_hours"]),
        reply_max_opens=data["reply_max_opens"],
        notify_on_use=data["notify_on_use"],
        language=data["language"],
        delivery=delivery,
        per_ip_hourly=data["per_ip_hourly"],
        max_submissions=data["max_submissions"],
    )


# The service names what is wrong in its own terms; the form shows it on the field.
FORM_FIELDS = {"max_total_bytes": "max_total_mb", "expires_at": "expires"}
RECIPIENT_FIELD = re.compile(r"recipients\[(\d+)\]\.(\w+)")


def _show_error(form, formset, error: SealboxError) -> None:
    """Put the service's refusal next to the field it is about (or above the form)."""
    name = FORM_FIELDS.get(error.field, error.field)
    if name in form.fields:
        form.add_error(name, error.message)
        return
    match = RECIPIENT_FIELD.fullmatch(error.field or "")
    if match:
        rows = _filled(formset.cleaned_data)
        index, field = int(match.group(1)), match.group(2)
        if index < len(rows) and field in formset.forms[rows[index]].fields:
            formset.forms[rows[index]].add_error(field, error.message)
            form.add_error(None, error.message)
            return
    form.add_error(None, error.message)


def _with_extra_row(post):
    data = post.copy()
    total = int(data.get("form-TOTAL_FORMS", "1") or 1)
    data["form-TOTAL_FORMS"] = str(min(total + 1, MAX_RECIPIENTS))
    return data


@login_required
@require_http_methods(["GET", "POST"])
def new_view(request):
    """New envelope: a plain form (nothing here is encrypted content)."""
    user = request.user
    status = 200
    if request.method == "GET":
        form = EnvelopeForm(initial=_initial(user))
        formset = RecipientFormSet()
    elif "add_recipient" in request.POST:
        form = EnvelopeForm(request.POST)
        formset = RecipientFormSet(_with_extra_row(request.POST))
    else:
        form = EnvelopeForm(request.POST)
        formset = RecipientFormSet(request.POST)
        if form.is_valid() and formset.is_valid():
            delivery = "links" if request.POST.get("delivery") == "links" else "email"
            try:
                spec = _spec(user, form.cleaned_data, formset.cleaned_data, delivery)
                envelope = services.create_envelope(user, spec, request=request)
            except SealboxError as error:
                _show_error(form, formset, error)
                # Storage unavailable (503): nothing to correct, the form is kept to retry.
                status = error.status if error.status >= 500 else 200
            else:
                if delivery == "email":
                    messages.success(request, _("Your envelope is sent."))
                else:
                    messages.success(request, _("Your envelope link is ready."))
                    # Shown this once: the server keeps only a keyed hash of each code.
                    codes = envelope.new_opening_codes
                    for link in envelope.links.order_by("id"):
                        if link.pk in codes:
                            messages.info(
                                request,
                                _("Opening code for %(email)s: %(code)s (shown only now)")
                                % {"email": link.email, "code": codes[link.pk]},
                            )
                return redirect("envelopes:detail", public_id=envelope.public_id)
    context = {
        "form": form,
        "formset": formset,
        "plan_limit": services.plan_limit(user),
        "max_retention_days": user.organisation.plan.max_retention_days,
    }
    return render(request, "envelopes/new.html", context, status=status)


@login_required
def detail_view(request, public_id):
    envelope = _owned(request, public_id)
    context = {
        "envelope": envelope,
        "state": services.envelope_state(envelope),
        "links": [(link, services.link_url(link)) for link in envelope.links.order_by("id")],
        "submissions": services.submissions_of(envelope),
    }
    return render(request, "envelopes/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def close_view(request, public_id):
    envelope = _owned(request, public_id)
    if request.method == "POST":
        services.close_envelope(request.user, envelope, request=request)
        messages.success(request, _("The envelope is closed: its links no longer work."))
        return redirect("envelopes:detail", public_id=envelope.public_id)
    return render(request, "envelopes/close.html", {"envelope": envelope})


@login_required
@require_http_methods(["POST"])
def unlock_link_view(request, public_id, link_id: int):
    envelope = _owned(request, public_id)
    try:
        link = services.unlock_link(request.user, envelope, link_id, request=request)
    except ExchangeError:
        raise Http404 from None
    messages.success(
        request,
        _("The link of %(email)s is unlocked: they can ask for a new code.")
        % {"email": link.email},
    )
    return redirect("envelopes:detail", public_id=envelope.public_id)


@never_cache
@ensure_csrf_cookie
def submit_view(request, token):
    """The submitter's page. Its script verifies, encrypts and uploads."""
    try:
        link = services.find_link(token)
    except ExchangeError:
        return render(request, "envelopes/submit_invalid.html", status=404)
    state = services.link_state(link)
    context = {
        "brand_organisation": link.envelope.organisation,
        "link": link,
        "envelope": link.envelope,
        "state": state,
        "base_url": settings.SEALBOX_BASE_URL,
        "accept": ",".join("." + e for e in link.envelope.extensions),
        "max_manifest_bytes": MAX_MANIFEST_BYTES,
        "max_total_bytes": ""
        if link.envelope.max_total_bytes is None
        else link.envelope.max_total_bytes,
    }
    if state != services.LinkState.OPEN:
        status = 403 if state == services.LinkState.LOCKED else 410
        return render(request, "envelopes/submit_gone.html", context, status=status)
    return render(request, "envelopes/submit.html", context)


@never_cache
def sent_view(request, token):
    try:
        link = services.find_link(token)
    except ExchangeError:
        return render(request, "envelopes/submit_invalid.html", status=404)
    return render(request, "envelopes/sent.html", {"envelope": link.envelope})
