"""Concurrent unlocks can never exceed the maximum number of opens (SQLite and PostgreSQL)."""

import threading

import pytest
from django.db import connections
from django.test import Client

from sealbox.crypto import links
from sealbox.exchange.models import Grant

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_parallel_unlocks_of_a_single_open_grant(plans, send):
    sent = send(max_opens=1)
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    token = links.parse_link(link).grant_token
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def unlock(n: int) -> None:
        try:
            browser = Client(REMOTE_ADDR=f"198.51.100.{n}")
            barrier.wait()
            response = browser.post(
                f"/api/v1/open/{token}/unlock", data={"code": code}, content_type="application/json"
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=unlock, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [410] * 19
    grant = Grant.objects.get(token=token)
    assert grant.opens == 1
    assert grant.server_secret is None
