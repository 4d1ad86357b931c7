"""Project-level pages: home, language switch."""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from sealbox.accounts import services as accounts


def home(request):
    if request.user.is_authenticated:
        return redirect("accounts:account")
    return redirect("accounts:login")


@require_POST
def set_language(request):
    """Switch the page language; for a logged-in user it becomes their saved language."""
    language = request.POST.get("language", "")
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = HttpResponseRedirect(target)
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        accounts.update_profile(request.user, request, language=language)
    translation.activate(language)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        samesite="Lax",
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=True,
        max_age=365 * 24 * 3600,
    )
    return response
