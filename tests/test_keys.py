"""sealbox.keys: the one place keys are derived from the secret key and its fallbacks."""

import hashlib
import hmac

from sealbox import keys


def test_the_current_key_comes_first_then_the_fallbacks(settings):
    settings.SECRET_KEY = "n" * 40
    settings.SECRET_KEY_FALLBACKS = ["o" * 40, "p" * 40]
    assert keys.secret_keys() == ["n" * 40, "o" * 40, "p" * 40]
    assert keys.derive_all(b"x") == [keys.derive(b"x", k) for k in ("n" * 40, "o" * 40, "p" * 40)]
    assert keys.derive(b"x") == keys.derive(b"x", "n" * 40)


def test_derive_is_what_stored_hashes_were_made_with(settings):
    """HMAC-SHA256(secret key, info): the opening codes, password verifiers and SMS codes
    hashed before sealbox.keys existed still match, no migration needed."""
    for info in (b"sealbox grant proof v1", b"sealbox sms code v1"):
        expected = hmac.new(settings.SECRET_KEY.encode(), info, hashlib.sha256).digest()
        assert keys.derive(info) == expected
    assert keys.derive(b"a") != keys.derive(b"b")  # one key per purpose


def test_matching_says_which_key_made_a_value(settings):
    def digest(key: bytes) -> str:
        return hmac.new(key, b"value", hashlib.sha256).hexdigest()

    old = settings.SECRET_KEY
    made_before = digest(keys.derive(b"purpose"))
    settings.SECRET_KEY = "r" * 40
    settings.SECRET_KEY_FALLBACKS = [old]
    assert keys.matching(made_before, digest, b"purpose") == 1
    assert keys.matching(digest(keys.derive(b"purpose")), digest, b"purpose") == keys.CURRENT
    assert keys.matching("0" * 64, digest, b"purpose") is None
    assert keys.matching("", digest, b"purpose") is None
    settings.SECRET_KEY_FALLBACKS = []
    assert keys.matching(made_before, digest, b"purpose") is None
