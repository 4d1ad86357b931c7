"""exchange's share of the licence figures, handed to accounts at ready() (accounts sits
below exchange and cannot ask it)."""

from __future__ import annotations

from datetime import datetime

from sealbox.accounts.models import User
from sealbox.accounts.registry import UsageCounter
from sealbox.exchange.models import Message
from sealbox.exchange.services import count_sent_since


def last_sent_by(user: User) -> datetime | None:
    """When the user last sent anything (a message or a reply) from their organisation."""
    return (
        Message.objects.filter(organisation=user.organisation, sender=user, sent_at__isnull=False)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )


# Envelope submissions are Messages of another kind, which count_sent_since leaves out
# (a plan counts what the organisation sends): envelopes has nothing more to register.
COUNTER = UsageCounter(sent_since=count_sent_since, last_sent_by=last_sent_by)
