"""The one `next` check and the one language cookie, as every page uses them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory

from sealbox.lib.language import set_language_cookie
from sealbox.lib.urls import requested_next, safe_next


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "http://testserver.evil/", "", None],
)
def test_a_next_off_the_site_gives_the_fallback(target):
    request = RequestFactory().get("/")
    assert safe_next(request, target, "/account/") == "/account/"


def test_a_next_on_the_site_is_kept():
    request = RequestFactory().get("/")
    assert safe_next(request, "/history/?q=1", "/account/") == "/history/?q=1"


def test_the_requested_next_reads_the_form_then_the_query_string():
    factory = RequestFactory()
    posted = factory.post("/?next=/from-query/", {"next": "/from-form/"})
    assert requested_next(posted, "/f/") == "/from-form/"
    assert requested_next(factory.get("/?next=/from-query/"), "/f/") == "/from-query/"
    assert requested_next(factory.get("/?next=https://evil.example/"), "/f/") == "/f/"


def test_the_language_cookie_follows_the_settings():
    cookie = set_language_cookie(HttpResponse(), "fr").cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "fr"
    assert cookie["samesite"] == "Lax" and cookie["httponly"] is True
    assert cookie["max-age"] == ""  # the browser session, unless told
    remembered = set_language_cookie(HttpResponse(), "en", max_age=3600)
    assert remembered.cookies[settings.LANGUAGE_COOKIE_NAME]["max-age"] == 3600
