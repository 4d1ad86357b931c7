"""Drafts made the way the client makes them, with the finalise request kept back, so a
test can send it itself (in parallel, several times…)."""

from __future__ import annotations

from django.test import Client


class HoldFinalise:
    """The client's transport, except that it keeps the finalise request for the test."""

    def __init__(self, inner):
        self.inner = inner
        self.held: tuple[str, dict] | None = None

    def request(self, method, path, *, json_body=None, body=None):
        if path.endswith("/finalise"):
            self.held = (path, json_body)
            return 200, {}
        return self.inner.request(method, path, json_body=json_body, body=body)


def browser_with_cookies(cookies: dict | None) -> Client:
    """A new test client carrying another one's cookies (its session), for a thread."""
    browser = Client()
    for name, value in (cookies or {}).items():
        browser.cookies[name] = value
    return browser


def cookies_of(browser: Client) -> dict:
    return {name: morsel.value for name, morsel in browser.cookies.items()}
