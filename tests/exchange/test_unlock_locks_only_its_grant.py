"""An unlock locks its grant's row, not the message, the sender or the organisation
(PostgreSQL: SQLite locks the whole database for every write anyway).

Locking the organisation made every open of an organisation wait for the others, and
deadlocked under load with the audit chain: an email delivery holding the chain head
checks its event's foreign key to the organisation at commit, while an unlock holding
the organisation waits for the chain head.
"""

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test import Client

from sealbox.accounts.models import Organisation, User
from sealbox.crypto import links
from sealbox.exchange.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_unlock_holds_no_lock_on_the_message_sender_or_organisation(plans, send):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    sent = send(max_opens=1)
    link, code = sent.links["client@example.org"], sent.opening_codes["client@example.org"]
    token = links.parse_link(link).grant_token
    message = Message.objects.get(public_id=sent.id)
    locked, release = threading.Event(), threading.Event()
    statuses: list[int] = []

    def pause_after_the_grant_lock(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "FOR UPDATE" in sql and '"exchange_grant"' in sql:
            locked.set()
            release.wait(30)
        return result

    def unlock() -> None:
        try:
            with connection.execute_wrapper(pause_after_the_grant_lock):
                response = Client().post(
                    f"/api/v1/open/{token}/unlock",
                    data={"code": code},
                    content_type="application/json",
                )
            statuses.append(response.status_code)
        finally:
            release.set()
            locked.set()
            connections.close_all()

    thread = threading.Thread(target=unlock)
    thread.start()
    try:
        assert locked.wait(30)
        for model, pk in (
            (Organisation, message.organisation_id),
            (User, message.sender_id),
            (Message, message.pk),
        ):
            try:
                with transaction.atomic():
                    model.objects.select_for_update(nowait=True).get(pk=pk)
            except OperationalError as error:
                pytest.fail(f"the unlock holds a lock on the {model.__name__}: {error}")
    finally:
        release.set()
        thread.join()
    assert statuses == [200]
