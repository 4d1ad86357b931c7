"""Pages of user administration (administrators of the organisation only)."""

from __future__ import annotations

import re
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from sealbox.accounts import services as accounts
from sealbox.accounts.models import Organisation
from sealbox.accounts.services import AccountError
from sealbox.lib import phones
from sealbox.twofactor import services as twofactor
from sealbox.users import forms, services


def admin_required(view):
    """Logged in and administrator of their organisation; 403 otherwise."""

    @login_required
    @never_cache
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        services.require_admin(request.user)
        return view(request, *args, **kwargs)

    return wrapped


@admin_required
def user_list(request):
    search = forms.SearchForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    users = list(services.list_users(request.user, query))
    with_factor = {
        u.pk: bool(twofactor.primary_factors(u)) for u in users
    }  # a handful of queries per user: the list is one organisation's staff
    rows = [{"user": u, "two_factor": with_factor[u.pk]} for u in users]
    context = {
        "search": search,
        "query": query,
        "rows": rows,
        "licence": accounts.licence_summary(request.user.organisation),
    }
    return render(request, "users/list.html", context)


@admin_required
def user_add(request):
    organisation = request.user.organisation
    form = forms.AddUserForm(request.POST or None, country=organisation.default_sms_country)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invite_user(
                request, request.user, services.NewUser(**form.cleaned_data)
            )
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                _("%(email)s was added and invited by email to set a password.")
                % {"email": user.email},
            )
            return redirect("users:list")
    licence = accounts.licence_summary(organisation)
    return render(request, "users/add.html", {"form": form, "licence": licence})


@admin_required
def user_import(request):
    form = forms.ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = upload.read(services.CSV_MAX_BYTES + 1)
        report = services.import_users(request, request.user, data)
        if not report.errors:
            messages.success(
                request,
                ngettext(
                    "%(n)d user was added and invited by email.",
                    "%(n)d users were added and invited by email.",
                    len(report.rows),
                )
                % {"n": len(report.rows)},
            )
            return redirect("users:list")
    return render(
        request,
        "users/import.html",
        {"form": form, "report": report, "columns": services.CSV_COLUMNS},
    )


@admin_required
def user_import_template(request):
    response = HttpResponse(services.csv_template(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sealbox-users.csv"'
    return response


@admin_required
def user_edit(request, pk: int):
    target = services.user_for_admin(request.user, pk)
    sms = twofactor.sms_device(target)
    initial = {
        "first_name": target.first_name,
        "last_name": target.last_name,
        "mobile_phone": phones.display_phone(target.mobile_phone),
        "sms_country": target.sms_country,
        "time_zone": target.time_zone,
        "language": target.language,
        "role": target.role,
        "enable_2fa": sms is not None,
    }
    form = forms.EditUserForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        try:
            changed = services.update_user(
                request,
                request.user,
                services.user_for_admin(request.user, pk),
                mobile_phone=values.pop("mobile_phone"),
                enable_2fa=values.pop("enable_2fa"),
                **values,
            )
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            if changed:
                messages.success(request, _("%(email)s is saved.") % {"email": target.email})
            else:
                messages.info(request, _("Nothing to save: no field was changed."))
            return redirect("users:edit", pk=target.pk)
    context = {
        "form": form,
        "target": target,
        "status": twofactor.user_status(target),
        "invited": not target.has_usable_password(),
        "is_self": target.pk == request.user.pk,
    }
    return render(request, "users/edit.html", context)


@require_POST
@admin_required
def user_set_active(request, pk: int, active: bool):
    target = services.user_for_admin(request.user, pk)
    try:
        services.set_active(request, request.user, target, active)
    except AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            (
                _("%(email)s is enabled.")
                if active
                else _("%(email)s is disabled: their sessions and API tokens stopped.")
            )
            % {"email": target.email},
        )
    return redirect("users:edit", pk=target.pk)


@require_POST
@admin_required
def user_resend_invitation(request, pk: int):
    target = services.user_for_admin(request.user, pk)
    try:
        services.resend_invitation(request, request.user, target)
    except AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, _("A new invitation was sent to %(email)s.") % {"email": target.email}
        )
    return redirect("users:edit", pk=target.pk)


@admin_required
def user_delete(request, pk: int):
    target = services.user_for_admin(request.user, pk)
    if request.method == "POST":
        email = target.email
        try:
            services.delete_user(request, request.user, target)
        except AccountError as error:
            messages.error(request, str(error))
            return redirect("users:edit", pk=target.pk)
        messages.success(request, _("%(email)s is deleted.") % {"email": email})
        return redirect("users:list")
    live = services.live_messages_of(target)
    return render(request, "users/delete.html", {"target": target, "live_messages": live})


@admin_required
def organisation_settings(request):
    organisation = Organisation.objects.get(pk=request.user.organisation_id)
    form = forms.OrganisationForm(
        request.POST or None, request.FILES or None, instance=organisation
    )
    if request.method == "POST" and form.is_valid():
        values = {
            name: form.cleaned_data[name]
            for name in services.ORGANISATION_FIELDS
            if name in form.cleaned_data
        }
        try:
            changed = services.update_organisation(
                request,
                request.user,
                logo=form.cleaned_data.get("logo"),
                remove_logo=form.cleaned_data.get("remove_logo", False),
                require_2fa=form.cleaned_data["require_2fa"],
                **values,
            )
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            if changed:
                messages.success(request, _("The organisation settings are saved."))
            else:
                messages.info(request, _("Nothing to save: no field was changed."))
            return redirect("users:organisation")
    organisation.refresh_from_db()
    return render(request, "users/organisation.html", {"form": form, "organisation": organisation})


ACCENT = re.compile(r"^#[0-9a-fA-F]{6}$")


def organisation_theme(request, pk: int):
    """The organisation's accent colour as a stylesheet (the CSP allows no inline style)."""
    organisation = Organisation.objects.filter(pk=pk).only("accent_colour").first()
    if organisation is None or not ACCENT.match(organisation.accent_colour or ""):
        raise Http404
    css = f":root {{ --accent: {organisation.accent_colour}; }}\n"
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


def organisation_logo(request, pk: int):
    """The organisation's logo (public: shown on recipient pages and in emails)."""
    organisation = Organisation.objects.filter(pk=pk).only("logo", "logo_type").first()
    if organisation is None or not organisation.logo:
        raise Http404
    response = HttpResponse(bytes(organisation.logo), content_type=organisation.logo_type)
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@never_cache
@sensitive_post_parameters("new_password1", "new_password2")
def invitation(request, token: str):
    """The link of the invitation email: the new user sets a password."""
    found = services.pending_invitation(token)
    if found is None:
        return render(request, "users/invitation_invalid.html", status=404)
    form = forms.SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.accept_invitation(request, token, form.cleaned_data["new_password1"])
        except AccountError as error:
            form.add_error("new_password1", str(error))
        else:
            messages.success(request, _("Your password is set. You can log in now."))
            return redirect("accounts:login")
    return render(request, "users/invitation.html", {"form": form, "invited": found.user})
