"""sealbox.crypto.links: {BASE_URL}/o/{grant_token}#{link_secret}, strictly."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.crypto import CryptoError, links
from sealbox.crypto._b64 import b64url_decode, b64url_encode

TOKEN = "Zk3x9QmB7rT2vW1yA5cD8e"
SECRET = bytes(range(16))
SECRET_TEXT = "AAECAwQFBgcICQoLDA0ODw"


def test_build_and_parse():
    link = links.build_link("https://sealbox.example.com", TOKEN, SECRET)
    assert link == f"https://sealbox.example.com/o/{TOKEN}#{SECRET_TEXT}"
    parsed = links.parse_link(link, "https://sealbox.example.com")
    assert parsed == links.Link("https://sealbox.example.com", TOKEN, SECRET)
    assert links.parse_link(link) == parsed  # without an expected base URL


@pytest.mark.parametrize(
    "base, normal",
    [
        ("https://example.com/", "https://example.com"),
        ("https://Example.COM:8443/", "https://example.com:8443"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://example.com/portal/Sealbox/", "https://example.com/portal/Sealbox"),
        ("http://localhost", "http://localhost"),
    ],
)
def test_base_urls(base, normal):
    assert links.normalise_base_url(base) == normal
    link = links.build_link(base, TOKEN, SECRET)
    assert link == f"{normal}/o/{TOKEN}#{SECRET_TEXT}"
    assert links.parse_link(link, base).base_url == normal


def test_host_compares_case_insensitively_and_path_exactly():
    link = f"https://EXAMPLE.com/app/o/{TOKEN}#{SECRET_TEXT}"
    assert links.parse_link(link, "https://example.com/app").grant_token == TOKEN
    with pytest.raises(CryptoError, match="does not belong"):
        links.parse_link(link, "https://example.com/App")
    with pytest.raises(CryptoError, match="does not belong"):
        links.parse_link(link, "https://example.org/app")
    with pytest.raises(CryptoError, match="does not belong"):
        links.parse_link(link, "http://example.com/app")
    with pytest.raises(CryptoError, match="does not belong"):
        links.parse_link(link, "https://example.com")


MALFORMED = [
    "",
    f"ftp://example.com/o/{TOKEN}#{SECRET_TEXT}",
    f"HTTPS://example.com/o/{TOKEN}#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN}",
    f"https://example.com/o/{TOKEN}#",
    f"https://example.com/o/{TOKEN}/#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN}?x=1#{SECRET_TEXT}",
    f"https://example.com/x/{TOKEN}#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN}/extra#{SECRET_TEXT}",
    f"https://example.com//o/{TOKEN}#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN}#{SECRET_TEXT}=",
    f"https://example.com/o/{TOKEN}#{SECRET_TEXT}A",
    f"https://example.com/o/{TOKEN}#{SECRET_TEXT[:-1]}",
    f"https://example.com/o/{TOKEN}#AAECAwQFBgcICQoLDA0ODx",  # non-canonical last char
    f"https://example.com/o/{TOKEN}#AAECAwQFBgcICQoLDA0OD+",
    f"https://example.com/o/{TOKEN}#{SECRET_TEXT}#{SECRET_TEXT}",
    f"https://example.com/o/short#{SECRET_TEXT}",
    f"https://example.com/o/{'a' * 129}#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN[:-1]}.#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN[:-1]}%41#{SECRET_TEXT}",
    f"https://user@example.com/o/{TOKEN}#{SECRET_TEXT}",
    f"https://exa mple.com/o/{TOKEN}#{SECRET_TEXT}",
    f"https://-example.com/o/{TOKEN}#{SECRET_TEXT}",
    f" https://example.com/o/{TOKEN}#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN}#{SECRET_TEXT}\n",
    f"https://example.com:/o/{TOKEN}#{SECRET_TEXT}",
    f"https://example.com/o/{TOKEN}#{SECRET_TEXT[:-1]}é",
    f"//example.com/o/{TOKEN}#{SECRET_TEXT}",
    f"/o/{TOKEN}#{SECRET_TEXT}",
]


@pytest.mark.parametrize("link", MALFORMED)
def test_malformed_links_are_rejected(link):
    with pytest.raises(CryptoError):
        links.parse_link(link)


@pytest.mark.parametrize(
    "base",
    [
        "",
        "example.com",
        "https://",
        "https://example.com?x",
        "https://example.com#f",
        "https://example.com/a b",
        "https://example.com/%2e",
        "javascript:alert(1)",
        "https://example.com//",
    ],
)
def test_bad_base_urls_are_rejected(base):
    with pytest.raises(CryptoError, match="base URL"):
        links.build_link(base, TOKEN, SECRET)


def test_build_rejects_bad_token_and_secret():
    with pytest.raises(CryptoError, match="grant token"):
        links.build_link("https://example.com", "bad token with spaces", SECRET)
    with pytest.raises(CryptoError, match="grant token"):
        links.build_link("https://example.com", "short", SECRET)
    with pytest.raises(CryptoError, match="link secret"):
        links.build_link("https://example.com", TOKEN, os.urandom(15))


def test_link_secret_from_fragment():
    assert links.decode_link_secret("#" + SECRET_TEXT) == SECRET
    assert links.decode_link_secret(SECRET_TEXT) == SECRET
    assert links.encode_link_secret(SECRET) == SECRET_TEXT
    for bad in ["", "#", SECRET_TEXT + "==", SECRET_TEXT[:-2], "AAECAwQFBgcICQoLDA0ODx"]:
        with pytest.raises(CryptoError, match="link secret"):
            links.decode_link_secret(bad)


def test_new_grant_token():
    token = links.new_grant_token()
    assert links.GRANT_TOKEN_RE.fullmatch(token)
    assert len(token) == 22
    assert token != links.new_grant_token()


def test_secret_not_in_repr():
    parsed = links.parse_link(f"https://example.com/o/{TOKEN}#{SECRET_TEXT}")
    assert SECRET_TEXT not in repr(parsed)
    assert repr(SECRET) not in repr(parsed)


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=16),
    token=st.from_regex(r"[A-Za-z0-9_-]{16,40}", fullmatch=True),
)
def test_round_trip_any_secret_and_token(secret, token):
    link = links.build_link("https://example.com/sb", token, secret)
    assert links.parse_link(link, "https://example.com/sb/") == links.Link(
        "https://example.com/sb", token, secret
    )


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=40))
def test_b64url_round_trip_and_strictness(data):
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text) == data
    with pytest.raises(CryptoError):
        b64url_decode(text + "=")
