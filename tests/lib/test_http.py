"""Request helpers: one spelling per client address."""

import pytest

from sealbox.lib.http import client_ip, normalise_ip


@pytest.mark.parametrize(
    "given, expected",
    [
        ("192.0.2.10", "192.0.2.10"),
        ("::ffff:192.0.2.10", "192.0.2.10"),  # a dual-stack socket's IPv4 client
        ("::ffff:c000:20a", "192.0.2.10"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        (" 192.0.2.10 ", "192.0.2.10"),
        ("", None),
        (None, None),
        ("unknown", None),
        ("192.0.2.10:443", None),
    ],
)
def test_normalise_ip(given, expected):
    assert normalise_ip(given) == expected


def test_client_ip_is_normalised_behind_proxies_too(rf, settings):
    assert client_ip(rf.get("/", REMOTE_ADDR="::ffff:127.0.0.1")) == "127.0.0.1"
    settings.SEALBOX_TRUSTED_PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="::ffff:198.51.100.7")
    assert client_ip(request) == "198.51.100.7"
