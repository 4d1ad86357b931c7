"""One phrasing for "too many attempts", raised as each app's own error class."""

from __future__ import annotations

import pytest
from django.utils import translation

from sealbox.exchange.errors import ExchangeError
from sealbox.lib import throttle
from sealbox.lib.errors import SealboxError
from sealbox.twofactor.services import TwoFactorError


@pytest.mark.parametrize(
    ("retry_after", "message"),
    [
        (1, "Too many attempts. Wait 1 second and try again."),
        (59, "Too many attempts. Wait 59 seconds and try again."),
        (60, "Too many attempts. Try again in 1 minute."),
        (61, "Too many attempts. Try again in 2 minutes."),  # never too early
        (300, "Too many attempts. Try again in 5 minutes."),
    ],
)
def test_the_one_phrasing(retry_after, message):
    assert throttle.wait_message(retry_after) == message


def test_it_is_said_in_french():
    with translation.override("fr"):
        assert throttle.wait_message(300) == "Trop de tentatives. Réessayez dans 5 minutes."


@pytest.mark.parametrize("kind", [SealboxError, ExchangeError, TwoFactorError])
def test_the_error_is_a_429_of_the_callers_class_with_retry_after(kind):
    error = throttle.too_many_attempts(120, kind=kind)
    assert type(error) is kind
    assert (error.status, error.code, error.retry_after) == (429, "throttled", 120)
    assert error.message == "Too many attempts. Try again in 2 minutes."
