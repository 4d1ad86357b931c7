from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from sealbox.accounts import services as accounts
from sealbox.exchange import services
from sealbox.exchange.forms import RecipientForm, SendForm
from sealbox.exchange.models import MessageState
from sealbox.lib.limits import MAX_MANIFEST_BYTES


@login_required
@ensure_csrf_cookie
def send_view(request):
    """The send page. Its script encrypts in the browser and uses the API."""
    user = request.user
    organisation = user.organisation
    plan = organisation.plan
    # The user's preferences for new messages (Account > Preferences) set the defaults.
    preferences = accounts.message_preferences(user)
    form = SendForm(
        initial={
            "language": preferences.recipient_language or user.language,
            "expires": str(preferences.expiry_days)
            if str(preferences.expiry_days) in ("1", "7", "30")
            else "7",
            "max_opens": preferences.max_opens,
            "notify_on_open": preferences.notify_on_open,
            "show_subject": preferences.show_subject,
            "keep_copy": preferences.keep_copy,
        }
    )
    context = {
        "form": form,
        "recipient_form": RecipientForm(
            prefix="r0", initial={"verification": preferences.verification}
        ),
        "plan": plan,
        "licence": accounts.licence_summary(organisation),
        "max_retention_days": plan.max_retention_days,
        "max_send_bytes": "" if plan.max_send_bytes is None else plan.max_send_bytes,
        "max_manifest_bytes": MAX_MANIFEST_BYTES,
        "base_url": settings.SEALBOX_BASE_URL,
    }
    return render(request, "exchange/send.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def delete_view(request, public_id):
    try:
        message = services.message_for_sender(request.user, public_id)
    except services.ExchangeError:
        raise Http404 from None
    if message.state == MessageState.DELETED:
        return redirect("history:message", public_id=message.public_id)
    if request.method == "POST":
        services.delete_message(request.user, message, request=request)
        messages.success(request, _("The message is deleted: its links no longer work."))
        return redirect("history:message", public_id=message.public_id)
    return render(request, "exchange/delete.html", {"message": message})


@login_required
@require_http_methods(["POST"])
def unlock_grant_view(request, public_id, grant_id: int):
    try:
        message = services.message_for_sender(request.user, public_id)
        grant = services.unlock_grant(request.user, message, grant_id, request=request)
    except services.ExchangeError:
        raise Http404 from None
    messages.success(
        request,
        _("The link of %(email)s is unlocked: they can ask for a new code.")
        % {"email": grant.email},
    )
    return redirect("history:message", public_id=message.public_id)


@never_cache
@ensure_csrf_cookie
def open_view(request, token):
    """The recipient's page. It loads without secrets; its script reads the fragment."""
    try:
        grant = services.find_grant(token)
    except services.ExchangeError:
        return render(request, "exchange/open_invalid.html", status=404)
    if services.sealed_for_someone_else(grant, request.user):
        return render(request, "exchange/open_invalid.html", status=404)
    state = services.grant_state(grant)
    context = {
        "brand_organisation": grant.message.organisation,
        "grant": grant,
        "message": grant.message,
        "state": state,
        "in_memory_limit": settings.SEALBOX_IN_MEMORY_DOWNLOAD_LIMIT,
        "max_manifest_bytes": MAX_MANIFEST_BYTES,
        "base_url": settings.SEALBOX_BASE_URL,
    }
    # The page speaks the language the sender chose for this recipient; the switch at the
    # top changes it with ?lang=, which keeps the link's #fragment (a form post would not).
    language = request.GET.get("lang", "")
    if language not in dict(settings.LANGUAGES):
        language = grant.message.language
    with translation.override(language):
        if state != services.GrantState.OPEN:
            status = 403 if state == services.GrantState.LOCKED else 410
            return render(request, "exchange/open_gone.html", context, status=status)
        return render(request, "exchange/open.html", context)
