"""Pages of two-factor authentication: the login step, security settings, set-up pages.

Views stay thin: every rule lives in services.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from sealbox.accounts.decorators import reauth_required, reauth_url
from sealbox.accounts.models import User
from sealbox.accounts.reauth import ReauthRequired
from sealbox.accounts.registry import AccountSection
from sealbox.lib import phones
from sealbox.lib.language import set_language_cookie
from sealbox.lib.urls import safe_next
from sealbox.twofactor import forms, services
from sealbox.twofactor.models import CodeDelivery, Factor, PendingLogin
from sealbox.twofactor.services import TwoFactorError

PHONE_PREFIX = "twofactor"
PHONE_ACTION = "twofactor_action"


# --- The login step -----------------------------------------------------------------


def second_step(request: HttpRequest, user: User, next_url: str = "") -> HttpResponse | None:
    """Registered with accounts (see apps.py): the login page calls it once the password
    is right. Users with a factor go on to it; for the others (None) the password alone
    opens the session."""
    if not services.needs_second_step(user):
        return None
    pending = services.start_login(request, user, next_url)
    if pending.method == Factor.SMS:
        _send_login_code(request, pending, quiet_success=True)
    return redirect("twofactor:login_verify")


def _send_login_code(request: HttpRequest, pending: PendingLogin, *, quiet_success: bool) -> None:
    try:
        services.send_login_code(request, pending)
    except TwoFactorError as error:
        messages.error(request, error.message)
    else:
        if not quiet_success:
            messages.success(
                request,
                _("We sent a new code to %(phone)s.")
                % {"phone": phones.mask_phone(services.sms_device(pending.user).number)},
            )


def _pending_or_redirect(request: HttpRequest):
    pending = services.current_pending_login(request)
    if pending is None:
        if request.session.get(services.SESSION_PENDING):
            services.forget_pending_login(request)
            messages.info(request, _("Your login attempt has expired. Please log in again."))
        return None, redirect("accounts:login")
    return pending, None


def _logged_in(request: HttpRequest, pending: PendingLogin) -> HttpResponse:
    target = safe_next(request, pending.next_url, reverse(settings.LOGIN_REDIRECT_URL))
    return set_language_cookie(redirect(target), pending.user.language)


@never_cache
@sensitive_post_parameters("code")
def login_verify(request: HttpRequest) -> HttpResponse:
    pending, response = _pending_or_redirect(request)
    if response:
        return response
    user = pending.user
    method = pending.method
    form_class = forms.RecoveryCodeForm if method == Factor.RECOVERY else forms.CodeForm
    posted = request.method == "POST" and method != Factor.PASSKEY
    form = form_class(request.POST if posted else None)
    if posted and form.is_valid():
        try:
            services.verify_login(request, pending, method, form.cleaned_data["code"])
        except services.PendingLoginExpired as error:
            services.forget_pending_login(request)
            messages.info(request, error.message)
            return redirect("accounts:login")
        except TwoFactorError as error:
            form.add_error("code", error.message)
        else:
            return _logged_in(request, pending)
    context = {
        "pending": pending,
        "method": method,
        "form": form,
        "other_methods": len(services.login_methods(user)) > 1,
        "locked": services.is_locked(user, method),
    }
    if method == Factor.SMS:
        device = services.sms_device(user)
        code = services.latest_code(pending.binding)
        context.update(
            phone=phones.mask_phone(device.number) if device else "",
            code_sent=code is not None and code.delivery != CodeDelivery.FAILED,
            delivery_failed=code is not None and code.delivery == CodeDelivery.FAILED,
            resend_wait=services.resend_wait(pending.binding),
        )
    return render(request, "twofactor/login_verify.html", context)


@require_POST
@never_cache
def login_send(request: HttpRequest) -> HttpResponse:
    pending, response = _pending_or_redirect(request)
    if response:
        return response
    if pending.method == Factor.SMS:
        _send_login_code(request, pending, quiet_success=False)
    return redirect("twofactor:login_verify")


@never_cache
def login_methods(request: HttpRequest) -> HttpResponse:
    pending, response = _pending_or_redirect(request)
    if response:
        return response
    user = pending.user
    if request.method == "POST":
        method = request.POST.get("method", "")
        try:
            services.choose_method(pending, method)
        except TwoFactorError as error:
            messages.error(request, error.message)
        else:
            if method == Factor.SMS and not _live_code_exists(pending):
                _send_login_code(request, pending, quiet_success=True)
            return redirect("twofactor:login_verify")
    sms = services.sms_device(user)
    methods = [
        {
            "value": method,
            "label": _method_label(method, sms),
            "locked": services.is_locked(user, method),
            "current": method == pending.method,
        }
        for method in services.login_methods(user)
    ]
    return render(request, "twofactor/login_methods.html", {"methods": methods})


def _live_code_exists(pending: PendingLogin) -> bool:
    code = services.latest_delivered_code(pending.binding)
    return code is not None and code.used_at is None and code.expires_at > services.clock.now()


def _method_label(method: str, sms) -> str:
    if method == Factor.SMS and sms is not None:
        return _("Text message to %(phone)s") % {"phone": phones.mask_phone(sms.number)}
    return {
        Factor.TOTP: _("Code from your authenticator app"),
        Factor.PASSKEY: _("Passkey or security key"),
        Factor.RECOVERY: _("Recovery code"),
    }.get(method, str(Factor(method).label))


def _json_body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _json_error(message: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"detail": message, **extra}, status=status)


@require_POST
@never_cache
def login_passkey_begin(request: HttpRequest) -> JsonResponse:
    pending = services.current_pending_login(request)
    if pending is None:
        return _json_error(
            _("Your login attempt has expired. Please log in again."),
            redirect_url=reverse("accounts:login"),
        )
    try:
        options = services.passkey_login_begin(request, pending)
    except TwoFactorError as error:
        return _json_error(error.message)
    return JsonResponse(options)


@require_POST
@never_cache
def login_passkey_complete(request: HttpRequest) -> JsonResponse:
    pending = services.current_pending_login(request)
    if pending is None:
        return _json_error(
            _("Your login attempt has expired. Please log in again."),
            redirect_url=reverse("accounts:login"),
        )
    try:
        services.passkey_login_complete(request, pending, _json_body(request))
    except TwoFactorError as error:
        return _json_error(error.message)
    target = safe_next(request, pending.next_url, reverse(settings.LOGIN_REDIRECT_URL))
    return set_language_cookie(JsonResponse({"redirect_url": target}), pending.user.language)


# --- Phone section (Account page and Security page) --------------------------------


@dataclass
class PhoneSection:
    form: forms.PhoneSettingsForm
    code_form: forms.CodeForm
    pending_phone: str = ""
    resend_wait: int = 0
    enabled: bool = False
    phone: str = ""
    response: HttpResponse | None = None
    handled: bool = False
    alert: str = forms.AREA_CODE_ALERT
    # The worker reports delivery later when tasks are queued: say so on the next view.
    delivery_failed: bool = False


def phone_section(request: HttpRequest) -> PhoneSection:
    """The "Enable 2FA authentication" checkbox and "Mobile phone" field, then the
    confirmation code. Handles its own POSTs (those with a twofactor_action)."""
    user = request.user
    device = services.sms_device(user)
    initial = {
        "enabled": device is not None,
        "mobile_phone": phones.display_phone(device.number if device else user.mobile_phone),
    }
    action = request.POST.get(PHONE_ACTION) if request.method == "POST" else None
    data = request.POST if action == "save" else None
    form = forms.PhoneSettingsForm(
        data, prefix=PHONE_PREFIX, initial=initial, country=user.sms_country
    )
    code_form = forms.CodeForm(request.POST if action == "verify" else None, prefix=PHONE_PREFIX)
    here = request.path
    response = None
    if action == "save" and form.is_valid():
        response = _save_phone_settings(request, form, device, here)
    elif action == "verify" and code_form.is_valid():
        try:
            confirmed = services.confirm_phone(request, user, code_form.cleaned_data["code"])
        except TwoFactorError as error:
            code_form.add_error("code", error.message)
        else:
            messages.success(
                request,
                _(
                    "Two-factor authentication is on. From now on, logging in asks for a code "
                    "sent by SMS to %(phone)s."
                )
                % {"phone": phones.mask_phone(confirmed.number)},
            )
            response = redirect(here)
    elif action == "resend":
        try:
            services.resend_phone_code(request, user)
        except TwoFactorError as error:
            messages.error(request, error.message)
        else:
            pending = services.pending_phone_device(user)
            messages.success(
                request,
                _("We sent a new code to %(phone)s.")
                % {"phone": phones.mask_phone(pending.number)},
            )
        response = redirect(here)
    elif action == "cancel":
        services.cancel_phone_confirmation(user)
        messages.info(request, _("Nothing was changed."))
        response = redirect(here)
    pending = services.pending_phone_device(user)
    latest = services.latest_code(services.phone_binding(pending)) if pending else None
    return PhoneSection(
        delivery_failed=latest is not None and latest.delivery == CodeDelivery.FAILED,
        form=form,
        code_form=code_form,
        pending_phone=phones.mask_phone(pending.number) if pending else "",
        resend_wait=services.resend_wait(services.phone_binding(pending)) if pending else 0,
        enabled=device is not None,
        phone=phones.mask_phone(device.number) if device else "",
        response=response,
        handled=action is not None,
    )


def account_section(request: HttpRequest) -> AccountSection:
    """The phone section on the account page (registered with accounts, see apps.py)."""
    section = phone_section(request)
    return AccountSection(
        template="twofactor/includes/account_phone_section.html",
        value=section,
        response=section.response,
        handled=section.handled,
    )


def _save_phone_settings(request, form, device, here: str) -> HttpResponse | None:
    try:
        return _apply_phone_settings(request, form, device, here)
    except ReauthRequired:
        # The services ask for a recent password; the form's data cannot survive the
        # detour, so the person comes back to this page.
        return redirect(reauth_url(request, here))


def _apply_phone_settings(request, form, device, here: str) -> HttpResponse | None:
    user = request.user
    enabled = form.cleaned_data["enabled"]
    number = form.cleaned_data["mobile_phone"]
    if enabled:
        if device is not None and str(device.number) == number:
            messages.info(request, _("Nothing to save: no field was changed."))
            return redirect(here)
        try:
            pending = services.start_phone_confirmation(request, user, number)
        except TwoFactorError as error:
            field = None if error.code in ("not_sent", "sms_limit", "cooldown") else "mobile_phone"
            form.add_error(field, error.message)
            return None
        messages.success(
            request,
            _("We sent a code by SMS to %(phone)s. Enter it below to confirm your number.")
            % {"phone": phones.mask_phone(pending.number)},
        )
        return redirect(here)
    phone_changed = number != str(user.mobile_phone or "")
    if device is None and not phone_changed:
        messages.info(request, _("Nothing to save: no field was changed."))
        return redirect(here)
    try:
        if device is not None:
            services.disable_sms(request, user)
            messages.success(request, _("Two-factor authentication by SMS is off."))
        if phone_changed:
            services.change_mobile_phone(request, user, number)
            messages.success(request, _("Your mobile phone number is saved."))
    except TwoFactorError as error:
        form.add_error(None, error.message)
        return None
    return redirect(here)


# --- Security settings ------------------------------------------------------------


@login_required
@never_cache
@sensitive_post_parameters("twofactor-code")
def security(request: HttpRequest) -> HttpResponse:
    section = phone_section(request)
    if section.response is not None:
        return section.response
    user = request.user
    context = {
        "phone_section": section,
        "totp": services.totp_device(user),
        "passkeys": list(services.passkeys(user)),
        "passkey_form": forms.PasskeyNameForm(),
        "recovery_left": services.recovery_codes_left(user),
        "recovery_exists": services.recovery_device(user) is not None,
        "has_factor": services.has_second_factor(user),
        "required": user.organisation.require_2fa,
        "operator_required": user.is_staff or user.is_superuser,
        "locked": [Factor(f).label for f in Factor.values if services.is_locked(user, f)],
    }
    # Held until a factor exists: the administrators' section would only lead to pages
    # the policy middleware refuses.
    if user.is_org_admin and not services.held_for_second_factor(user):
        context["policy_form"] = forms.PolicyForm(
            initial={"require_2fa": user.organisation.require_2fa}
        )
        context["members"] = [
            services.user_status(member) for member in services.organisation_members(user)
        ]
    return render(request, "twofactor/security.html", context)


@login_required
@reauth_required
@never_cache
@sensitive_post_parameters("code")
def totp_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    device = services.start_totp_setup(user)
    form = forms.CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.confirm_totp(request, user, form.cleaned_data["code"])
        except TwoFactorError as error:
            form.add_error("code", error.message)
        else:
            messages.success(
                request,
                _("Your authenticator app is set up. Logging in can now ask for its code."),
            )
            return redirect("twofactor:security")
    context = {
        "form": form,
        "qr": services.totp_qr_data_uri(device),
        "secret": services.totp_secret_text(device),
        "replacing": services.totp_device(user) is not None,
    }
    return render(request, "twofactor/totp_setup.html", context)


@require_POST
@login_required
@reauth_required
def totp_remove(request: HttpRequest) -> HttpResponse:
    try:
        services.remove_totp(request, request.user)
    except TwoFactorError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The authenticator app was removed."))
    return redirect("twofactor:security")


@require_POST
@login_required
@reauth_required
@never_cache
def passkey_register_begin(request: HttpRequest) -> JsonResponse:
    return JsonResponse(services.passkey_register_begin(request, request.user))


@require_POST
@login_required
@reauth_required
@never_cache
def passkey_register_complete(request: HttpRequest) -> JsonResponse:
    data = _json_body(request)
    name = str(data.pop("name", "") or "")
    try:
        device = services.passkey_register_complete(
            request, request.user, data.get("credential") or data, name
        )
    except TwoFactorError as error:
        return _json_error(error.message)
    messages.success(request, _("The passkey “%(name)s” was added.") % {"name": device.name})
    return JsonResponse({"id": device.pk, "redirect_url": reverse("twofactor:security")})


@require_POST
@login_required
@reauth_required
def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(services.passkeys(request.user), pk=pk)
    form = forms.PasskeyNameForm(request.POST)
    if form.is_valid():
        services.rename_passkey(request, request.user, pk, form.cleaned_data["name"])
        messages.success(request, _("The passkey was renamed."))
    else:
        messages.error(request, _("Give the passkey a name of at most 64 characters."))
    return redirect("twofactor:security")


@require_POST
@login_required
@reauth_required
def passkey_remove(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(services.passkeys(request.user), pk=pk)
    try:
        services.remove_passkey(request, request.user, pk)
    except TwoFactorError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The passkey was removed."))
    return redirect("twofactor:security")


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
@reauth_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    try:
        codes = services.generate_recovery_codes(request, request.user)
    except TwoFactorError as error:
        messages.error(request, error.message)
        return redirect("twofactor:security")
    # Shown on this response only: the server keeps nothing but their hashes.
    return _no_store(render(request, "twofactor/recovery_codes.html", {"codes": codes}))


@require_POST
@login_required
def recovery_codes_download(request: HttpRequest) -> HttpResponse:
    codes = services.unused_recovery_codes_among(request.user, request.POST.getlist("code"))
    if not codes:
        messages.error(request, _("These recovery codes can no longer be downloaded."))
        return redirect("twofactor:security")
    text = (
        _("Sealbox recovery codes for %(email)s") % {"email": request.user.email}
        + "\n"
        + _("Each code works once. Keep them somewhere safe.")
        + "\n\n"
        + "\n".join(codes)
        + "\n"
    )
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sealbox-recovery-codes.txt"'
    return _no_store(response)


# --- Administrators -----------------------------------------------------------------


def _require_org_admin(request: HttpRequest) -> None:
    if not request.user.is_org_admin:
        raise PermissionDenied


@require_POST
@login_required
def policy(request: HttpRequest) -> HttpResponse:
    _require_org_admin(request)
    form = forms.PolicyForm(request.POST)
    if form.is_valid():
        required = form.cleaned_data["require_2fa"]
        organisation = request.user.organisation
        if services.set_require_2fa(request, request.user, organisation, required):
            messages.success(
                request,
                _("Two-factor authentication is now required for all users.")
                if required
                else _("Two-factor authentication is no longer required."),
            )
        else:
            messages.info(request, _("Nothing to save: no field was changed."))
    return redirect("twofactor:security")


@login_required
@never_cache
def user_reset(request: HttpRequest, pk: int) -> HttpResponse:
    _require_org_admin(request)
    # Users of another organisation do not exist for this administrator.
    target = get_object_or_404(User, pk=pk, organisation=request.user.organisation)
    if request.method == "POST":
        try:
            services.reset_factors(request, request.user, target)
        except TwoFactorError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _("The second factors of %(name)s were reset. They were told by email.")
                % {"name": target.display_name},
            )
        return redirect("twofactor:security")
    return render(
        request,
        "twofactor/user_reset.html",
        {"target": target, "status": services.user_status(target)},
    )
