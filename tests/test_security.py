"""Security headers, cookies and the health check."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_security_headers_on_every_page(client):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "script-src 'self'" in csp
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_inline_script_in_pages(logged_in_client):
    for url in ("/account/", "/account/password/"):
        page = logged_in_client.get(url).content.decode()
        for tag in page.split("<script")[1:]:
            assert 'src="' in tag.split(">")[0], f"inline script on {url}"
        assert " onclick=" not in page and " onchange=" not in page


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/login/")
    secure = client.get("/login/", secure=True)
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


def test_cookies_are_secure_under_https_base_url(tmp_path):
    from sealbox import config

    cfg = config.load(
        {"SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_BASE_URL": "https://sealbox.example.com"}
    )
    assert cfg.base_url.startswith("https://")
    # settings.py derives every cookie's Secure flag from the base URL's scheme.
    import importlib
    import os

    from sealbox import settings as product_settings

    old = dict(os.environ)
    try:
        os.environ["SEALBOX_DATA_DIR"] = str(tmp_path)
        os.environ["SEALBOX_BASE_URL"] = "https://sealbox.example.com"
        reloaded = importlib.reload(product_settings)
        assert reloaded.SESSION_COOKIE_SECURE is True
        assert reloaded.CSRF_COOKIE_SECURE is True
        assert reloaded.LANGUAGE_COOKIE_SECURE is True
        assert reloaded.SESSION_COOKIE_HTTPONLY is True
        assert reloaded.SESSION_COOKIE_SAMESITE == "Lax"
    finally:
        os.environ.clear()
        os.environ.update(old)
        importlib.reload(product_settings)


def test_session_cookie_flags_in_a_response(client, user):
    from tests.conftest import PASSWORD

    with override_settings(SESSION_COOKIE_SECURE=True):
        response = client.post("/login/", {"email": user.email, "password": PASSWORD}, secure=True)
    cookie = response.cookies["sealbox_session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


def test_readyz_fails_when_storage_fails(client, tmp_path, settings):
    from sealbox.ops import services

    services.beat("node:1", services.clock.now())
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x")  # a file where the blob folder should be
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocked / "blobs")},
        },
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["storage"] == "failed"
    assert response.json()["database"] == "ok"


def test_admin_is_for_operators_only(logged_in_client):
    response = logged_in_client.get("/operator/")
    assert response.status_code == 302
    assert "/operator/login/" in response["Location"]


def csrf_post(client, path, token, **headers):
    return client.post(
        path,
        {"csrfmiddlewaretoken": token, "email": "x@example.com", "password": "whatever it is"},
        **headers,
    )


@pytest.fixture
def strict_client():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    return client, client.cookies["csrftoken"].value


@pytest.mark.parametrize("secure", [False, True])
def test_null_origin_from_the_same_site_is_accepted(strict_client, secure):
    """no-referrer makes browsers send Origin: null; Sec-Fetch-Site vouches for it."""
    client, token = strict_client
    response = csrf_post(
        client,
        "/login/",
        token,
        secure=secure,
        HTTP_ORIGIN="null",
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    assert response.status_code == 200  # the form answered (wrong password), not 403


@pytest.mark.parametrize("fetch_site", [None, "cross-site", "same-site", "none"])
def test_null_origin_without_same_origin_metadata_is_refused(strict_client, fetch_site):
    client, token = strict_client
    headers = {"HTTP_ORIGIN": "null"}
    if fetch_site:
        headers["HTTP_SEC_FETCH_SITE"] = fetch_site
    assert csrf_post(client, "/login/", token, **headers).status_code == 403


def test_foreign_origin_is_refused(strict_client):
    client, token = strict_client
    response = csrf_post(
        client,
        "/login/",
        token,
        HTTP_ORIGIN="https://evil.example",
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    assert response.status_code == 403


def test_token_still_required_with_same_origin_metadata(strict_client):
    client, _ = strict_client
    response = csrf_post(
        client, "/login/", "wrong-token" * 3, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin"
    )
    assert response.status_code == 403
