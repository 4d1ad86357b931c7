"""What the apps above accounts hand to it, filled at their `ready()`.

accounts sits below twofactor, exchange and the rest, so it may not import them; yet the
login, the account page and the licence summary need something of theirs. Each such
app registers a callable here (as twofactor answers notify's delivery signals), and
accounts calls whatever is registered: with nothing registered, accounts still works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:  # annotations only: models are not loaded when this module is
    from sealbox.accounts.models import Organisation, User

# (request, user, next_url) -> the response that takes over the login, or None when this
# step does not apply to the user (the password alone then opens the session).
SecondStep = Callable[[HttpRequest, "User", str], HttpResponse | None]


@dataclass
class AccountSection:
    """A part of the account page an app above accounts draws and handles itself.

    `template` is included with `section` in its context. A section that answered a
    POST of its own sets `handled` (the profile form then ignores the POST), and
    `response` when the page must answer with it (a redirect after a change).
    """

    template: str
    value: Any = None
    response: HttpResponse | None = None
    handled: bool = False


@dataclass(frozen=True)
class UsageCounter:
    """An app's share of the licence figures (messages sent count against the plan)."""

    # (organisation, since) -> messages the organisation sent since then
    sent_since: Callable[[Organisation, datetime], int]
    # (user) -> when the user last sent one, or None
    last_sent_by: Callable[[User], datetime | None]


@dataclass
class _Registry:
    second_steps: list[SecondStep] = field(default_factory=list)
    account_sections: list[Callable[[HttpRequest], AccountSection]] = field(default_factory=list)
    usage_counters: list[UsageCounter] = field(default_factory=list)


_registry = _Registry()


def _add(items: list, item) -> None:
    # ready() can run twice (tests, management commands): register once.
    if item not in items:
        items.append(item)


def register_second_step(step: SecondStep) -> None:
    _add(_registry.second_steps, step)


def register_account_section(build: Callable[[HttpRequest], AccountSection]) -> None:
    _add(_registry.account_sections, build)


def register_usage_counter(counter: UsageCounter) -> None:
    _add(_registry.usage_counters, counter)


def second_step(request: HttpRequest, user: User, next_url: str) -> HttpResponse | None:
    """The password was right: the first registered step that applies takes over."""
    for step in _registry.second_steps:
        response = step(request, user, next_url)
        if response is not None:
            return response
    return None


def account_sections(request: HttpRequest) -> list[AccountSection]:
    return [build(request) for build in _registry.account_sections]


def messages_sent_since(organisation: Organisation, since: datetime) -> int:
    return sum(counter.sent_since(organisation, since) for counter in _registry.usage_counters)


def last_sent_by(user: User) -> datetime | None:
    times = [counter.last_sent_by(user) for counter in _registry.usage_counters]
    return max((when for when in times if when is not None), default=None)
