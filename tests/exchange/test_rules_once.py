"""Rules written once: the pages, the API schema, the preference and the services all
read the maximum opens and the maximum recipients from their one definition."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from sealbox.accounts.models import MAX_OPENS, MessagePreferences
from sealbox.exchange import services
from sealbox.exchange.services import MAX_RECIPIENTS, ExchangeError
from tests.accounts.test_users_admin import login

pytestmark = pytest.mark.django_db


def max_of(page: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert tag, f"no input {name}"
    return re.search(r'max="(\d+)"', tag.group(0)).group(1)


def test_every_page_offers_the_one_maximum_of_opens(sender):
    client = login(sender)
    assert max_of(client.get("/send/").content.decode(), "max_opens") == str(MAX_OPENS)
    preferences = client.get("/account/").content.decode()
    assert max_of(preferences, r"[\w-]*max_opens") == str(MAX_OPENS)
    envelope = client.get("/envelopes/new/").content.decode()
    assert max_of(envelope, "reply_max_opens") == str(MAX_OPENS)


def test_the_api_schema_states_the_one_maximum_of_opens(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert (
        schema["components"]["schemas"]["MessageIn"]["properties"]["max_opens"]["maximum"]
        == MAX_OPENS
    )


@pytest.mark.parametrize(("value", "refused"), [(1, False), (MAX_OPENS, False), (0, True)])
def test_the_service_check_and_its_message_follow_the_constant(value, refused):
    if not refused:
        services.check_max_opens(value, "max_opens")
        return
    with pytest.raises(ExchangeError) as error:
        services.check_max_opens(value, "max_opens")
    assert error.value.field == "max_opens" and str(MAX_OPENS) in error.value.message
    with pytest.raises(ExchangeError):
        services.check_max_opens(MAX_OPENS + 1, "reply_max_opens")


def test_the_preference_refuses_one_open_more_than_the_maximum(sender):
    preferences = MessagePreferences(user=sender, max_opens=MAX_OPENS)
    preferences.clean()
    preferences.max_opens = MAX_OPENS + 1
    with pytest.raises(ValidationError, match=f"between 1 and {MAX_OPENS} opens"):
        preferences.clean()


def test_the_recipient_count_check_is_shared():
    services.check_recipient_count([object()] * MAX_RECIPIENTS)
    with pytest.raises(ExchangeError) as error:
        services.check_recipient_count([object()] * (MAX_RECIPIENTS + 1))
    assert error.value.field == "recipients" and str(MAX_RECIPIENTS) in error.value.message
