"""Project-level pages: home, language switch."""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.utils import translation
from django.views.decorators.http import require_POST

from sealbox.accounts import services as accounts
from sealbox.lib.language import set_language_cookie
from sealbox.lib.urls import safe_next


def home(request):
    if request.user.is_authenticated:
        return redirect("accounts:account")
    return redirect("accounts:login")


@require_POST
def set_language(request):
    """Switch the page language; for a logged-in user it becomes their saved language."""
    language = request.POST.get("language", "")
    response = HttpResponseRedirect(safe_next(request, request.POST.get("next"), "/"))
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        accounts.update_profile(request.user, request, language=language)
    translation.activate(language)
    # The switch is remembered for a year; the login and the account page set it for the
    # browser session from the saved language.
    return set_language_cookie(response, language, max_age=365 * 24 * 3600)
