import copy

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.generic.edit import FormView

from sealbox.accounts import forms, reauth, registry, services
from sealbox.accounts.decorators import reauth_required
from sealbox.lib import throttle
from sealbox.lib.language import set_language_cookie
from sealbox.lib.urls import requested_next


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request, default_next: str = ""):
    """The one login of Sealbox: the portal's and the operator area's (default_next is
    where to go when the request names no page)."""
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = forms.LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = services.check_password(
            request, form.cleaned_data["email"], form.cleaned_data["password"]
        )
        if result.throttled:
            form.add_error(None, throttle.wait_message(result.throttled.retry_after))
        elif result.user is None:
            # One message for every failure: it never says whether the account exists.
            form.add_error(None, _("The email or password is not correct."))
        elif (
            second_step := registry.second_step(
                request, result.user, requested_next(request, default_next)
            )
        ) is not None:
            # Password accepted, second factor pending (twofactor's step took over): no
            # session is opened yet.
            return second_step
        else:
            services.complete_login(request, result.user)
            response = redirect(
                requested_next(request, default_next or reverse_lazy("accounts:account"))
            )
            return set_language_cookie(response, result.user.language)
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": requested_next(request, default_next)},
    )


@login_required
@never_cache
@sensitive_post_parameters("password")
def reauth_view(request):
    """ "Confirm your password": opens a new re-authentication window for this session."""
    form = forms.ReauthForm(request.POST or None)
    # Without a page to go back to, the security settings (where most changes that ask
    # for the password are made): a URL name, not an import of twofactor.
    next_url = requested_next(request, reverse("twofactor:security"))
    if request.method == "POST" and form.is_valid():
        try:
            reauth.reauthenticate(request, form.cleaned_data["password"])
        except services.AccountError as error:
            form.add_error("password", str(error))
        else:
            return redirect(next_url)
    return render(request, "accounts/reauth.html", {"form": form, "next": next_url})


@require_POST
def logout_view(request):
    services.log_out(request)
    messages.success(request, _("You are logged out."))
    return redirect("accounts:login")


@login_required
def account_view(request):
    user = request.user
    # The sections of the apps above (twofactor's "Enable 2FA authentication" and
    # "Mobile phone") handle their own POSTs; the profile form only sees the others.
    sections = registry.account_sections(request)
    for section in sections:
        if section.response is not None:
            return section.response
    handled = any(section.handled for section in sections)
    data = None if handled else (request.POST or None)
    # The form validates a copy: the user object changes only through the service.
    form = forms.ProfileForm(data, instance=copy.copy(user), prefix="profile")
    if data is not None and form.is_valid():
        changed = services.update_profile(user, request, **form.cleaned_data)
        if changed:
            messages.success(request, _("Your profile is saved."))
        else:
            messages.info(request, _("Nothing to save: no field was changed."))
        return set_language_cookie(redirect("accounts:account"), user.language)
    return _render_account(request, form=form, sections=sections)


def _render_account(request, *, status: int = 200, **forms_in):
    """The account page, with any bound form given (to show its errors and keep input)."""
    user = request.user
    if "form" not in forms_in:
        forms_in["form"] = forms.ProfileForm(instance=copy.copy(user), prefix="profile")
    if "sections" not in forms_in:
        forms_in["sections"] = registry.account_sections(request)
    context = {
        "licence": services.licence_summary(user.organisation),
        "last_sent": registry.last_sent_by(user),
        "email_form": forms.EmailChangeForm(prefix="email"),
        "token_form": forms.ApiTokenForm(prefix="token"),
        "preferences_form": forms.PreferencesForm(
            instance=services.message_preferences(user), prefix="prefs"
        ),
        "sessions": [
            {
                "record": record,
                "device": services.describe_device(record.user_agent),
                "current": record.session_key == request.session.session_key,
            }
            for record in services.active_sessions(user)
        ],
        "tokens": services.live_tokens(user),
        "pending_email": services.pending_email_for(user),
        **forms_in,
    }
    return render(request, "accounts/account.html", context, status=status)


@require_POST
@login_required
@reauth_required
@sensitive_post_parameters("email-password")
def email_change_view(request):
    form = forms.EmailChangeForm(request.POST, prefix="email")
    if form.is_valid():
        try:
            services.request_email_change(
                request,
                request.user,
                form.cleaned_data["new_email"],
                form.cleaned_data["password"],
            )
        except services.AccountError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                _(
                    "We sent a confirmation link to %(email)s. Your address changes when you "
                    "open it (within 24 hours)."
                )
                % {"email": form.cleaned_data["new_email"]},
            )
            return redirect("accounts:account")
    return _render_account(request, email_form=form, status=400)


@never_cache
def email_confirm_view(request, token: str):
    """The link sent to the new address. A GET only shows a button: mail scanners that
    follow links must not use it up."""
    change = services.pending_email_change(token)
    if change is None:
        return render(request, "accounts/email_confirm.html", {"change": None}, status=404)
    if request.method == "POST":
        try:
            services.confirm_email_change(request, token)
        except services.AccountError as error:
            messages.error(request, str(error))
            return render(request, "accounts/email_confirm.html", {"change": None}, status=409)
        messages.success(
            request, _("Your email address is now %(email)s.") % {"email": change.new_email}
        )
        return redirect("accounts:account" if request.user.is_authenticated else "accounts:login")
    return render(request, "accounts/email_confirm.html", {"change": change})


@require_POST
@login_required
def sessions_logout_others_view(request):
    count = services.log_out_other_sessions(request, request.user)
    messages.success(
        request,
        ngettext(
            "%(n)d other session was logged out.",
            "%(n)d other sessions were logged out.",
            count,
        )
        % {"n": count},
    )
    return redirect("accounts:account")


@require_POST
@login_required
@reauth_required
@never_cache
def token_create_view(request):
    form = forms.ApiTokenForm(request.POST, prefix="token")
    if form.is_valid():
        try:
            token, secret = services.create_api_token(
                request, request.user, form.cleaned_data["name"], form.cleaned_data["days"]
            )
        except services.AccountError as error:
            form.add_error(None, str(error))
        else:
            # Shown in this response only; it is never stored in clear.
            response = render(
                request, "accounts/token_created.html", {"token": token, "secret": secret}
            )
            response["Cache-Control"] = "no-store"
            return response
    return _render_account(request, token_form=form, status=400)


@require_POST
@login_required
@reauth_required
def token_revoke_view(request, pk: int):
    try:
        services.revoke_api_token(request, request.user, pk)
    except services.NotTheirs:
        raise Http404 from None
    except services.AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("The token is revoked: it no longer works."))
    return redirect("accounts:account")


@require_POST
@login_required
def preferences_view(request):
    user = request.user
    form = forms.PreferencesForm(
        request.POST, instance=copy.copy(services.message_preferences(user)), prefix="prefs"
    )
    if form.is_valid():
        values = {name: form.cleaned_data[name] for name in services.PREFERENCE_FIELDS}
        if services.update_preferences(user, request, **values):
            messages.success(request, _("Your preferences are saved."))
        else:
            messages.info(request, _("Nothing to save: no field was changed."))
        return redirect("accounts:account")
    return _render_account(request, preferences_form=form, status=400)


@sensitive_post_parameters("current_password", "new_password")
@login_required
@reauth_required
def password_change_view(request):
    form = forms.PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.change_password(request, request.user, form.cleaned_data["new_password"])
        messages.success(request, _("Your password is changed."))
        return redirect("accounts:account")
    return render(request, "accounts/password_change.html", {"form": form})


class PasswordResetView(auth_views.PasswordResetView):
    token_generator = services.password_reset_tokens
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    form_class = forms.SealboxPasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        if not services.request_password_reset(self.request, form.cleaned_data["email"]):
            # Same answer as a successful request: it reveals nothing about the account.
            return redirect(self.success_url)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    form_class = forms.SealboxSetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")
    token_generator = services.password_reset_tokens

    @method_decorator(sensitive_post_parameters())
    @method_decorator(never_cache)
    def dispatch(self, *args, **kwargs):
        # Django's view, except for what it keeps in the session between the link and
        # the form: the token's hash, not the token. Sessions are rows of the database,
        # and a copy of it must not hold a live reset link.
        self.validlink = False
        self.user = self.get_user(kwargs["uidb64"])
        token = kwargs["token"]
        if self.user is not None:
            if token == self.reset_url_token:
                held = self.request.session.get(INTERNAL_RESET_SESSION_TOKEN)
                if self.token_generator.check_hash(self.user, held):
                    self.validlink = True
                    return FormView.dispatch(self, *args, **kwargs)
            elif self.token_generator.check_token(self.user, token):
                self.request.session[INTERNAL_RESET_SESSION_TOKEN] = services.token_hash(token)
                return redirect(self.request.path.replace(token, self.reset_url_token))
        return self.render_to_response(self.get_context_data())

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_reset(self.request, form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
