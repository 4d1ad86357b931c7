"""An HTTP transport for the client: a logged-in portal session over http.client."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from sealbox.client.errors import ClientError

READ_BYTES = 1024 * 1024
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class HttpTransport:
    """Keeps one keep-alive connection, the session cookie and the CSRF token."""

    def __init__(self, base_url: str, *, token: str = "", timeout: float = 300):
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.secure = parts.scheme == "https"
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        # A personal API token (Authorization: Bearer): no cookie, so no CSRF either.
        self.token = token
        self._connection: http.client.HTTPConnection | None = None

    def _conn(self) -> http.client.HTTPConnection:
        if self._connection is None:
            cls = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
            self._connection = cls(self.host, self.port, timeout=self.timeout)
        return self._connection

    def _headers(self, extra: dict | None = None) -> dict:
        headers = {
            "Accept": "application/json",
            "Origin": self.base_url,
            "Referer": self.base_url + "/",
        }
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.csrf:
            headers["X-CSRFToken"] = self.csrf
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers | (extra or {})

    def _send(self, method: str, path: str, body=None, headers: dict | None = None):
        connection = self._conn()
        try:
            connection.request(method, path, body=body, headers=self._headers(headers))
            response = connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.close()
            connection = self._conn()
            connection.request(method, path, body=body, headers=self._headers(headers))
            response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        return response

    def login(self, email: str, password: str) -> None:
        page = self._send("GET", "/login/").read().decode()
        self.csrf = CSRF_INPUT.search(page).group(1)
        body = urlencode({"email": email, "password": password, "csrfmiddlewaretoken": self.csrf})
        response = self._send(
            "POST",
            "/login/",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response.read()
        if response.status != 302 or "/login/" in response.headers.get("Location", "/login/"):
            raise PermissionError("login refused")
        page = self._send("GET", "/send/").read().decode()
        match = CSRF_INPUT.search(page)
        if match:
            self.csrf = match.group(1)

    def recipient_page(self, grant_token: str) -> None:
        """Load the recipient's page (no secret in it) for its CSRF token: the recipient's
        calls are checked like the browser's."""
        response = self._send("GET", f"/o/{grant_token}")
        page = response.read().decode(errors="replace")
        if response.status in (404, 410):
            message = (
                "This message is no longer available. Ask the sender to send it again."
                if response.status == 410
                else "This link is not valid. Check that you copied all of it."
            )
            raise ClientError(response.status, {"message": message})
        match = CSRF_INPUT.search(page)
        if match:
            self.csrf = match.group(1)

    def envelope_page(self, token: str) -> None:
        """Load an envelope's submitter page for its CSRF token (the API checks it as it
        does the browser's). A closed or used envelope's page has no form: its CSRF
        cookie is the token, and the API says why the envelope is gone."""
        response = self._send("GET", f"/e/{token}")
        page = response.read().decode(errors="replace")
        if response.status == 404:
            raise ClientError(
                404, {"message": "This link is not valid. Check that you copied all of it."}
            )
        match = CSRF_INPUT.search(page)
        self.csrf = match.group(1) if match else self.cookies.get("csrftoken", "")

    def request(self, method: str, path: str, *, json_body=None, body=None, headers=None):
        extra = headers or {}
        if json_body is not None or (body is None and method == "POST"):
            payload = json.dumps(json_body or {}).encode()
            response = self._send(
                method, path, payload, {"Content-Type": "application/json"} | extra
            )
        else:
            response = self._send(
                method, path, body or b"", {"Content-Type": "application/octet-stream"} | extra
            )
        raw = response.read()
        data = (
            json.loads(raw)
            if raw and response.headers.get_content_type() == "application/json"
            else None
        )
        return response.status, data

    def stream(self, path: str) -> Iterator[bytes]:
        response = self._send("GET", path)
        if response.status in (302, 303, 307) and response.headers.get("Location"):
            # Direct mode: the ciphertext comes from the store, by a presigned URL.
            response.read()
            yield from stream_from_store(response.headers["Location"], timeout=self.timeout)
            return
        if response.status != 200:
            raw = response.read()
            try:
                data = json.loads(raw)
            except ValueError:
                data = None  # a proxy's page: ClientError says what the status means
            raise ClientError(response.status, data)
        while piece := response.read(READ_BYTES):
            yield piece

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# --- The object store, in direct mode -------------------------------------------------------
#
# Presigned URLs carry their own authorisation: nothing of the Sealbox session (cookie,
# token, CSRF) is ever sent to the store.

STORE_ERROR = re.compile(r"<Code>([^<]*)</Code>(?:.*?<Message>([^<]*)</Message>)?", re.S)


class StoreError(Exception):
    """The object store refused or failed a request, told in one line."""

    def __init__(self, status: int, text: str):
        self.status = status
        super().__init__(text)


def _store_connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return cls(parts.hostname, parts.port, timeout=timeout), path


def _store_refusal(url: str, status: int, raw: bytes) -> StoreError:
    found = STORE_ERROR.search(raw.decode(errors="replace"))
    detail = ""
    if found:
        detail = f" {found.group(1)}" + (f": {found.group(2)}" if found.group(2) else "")
    host = urlsplit(url).netloc
    return StoreError(status, f"the file store at {host} answered HTTP {status}{detail}")


def put_to_store(url: str, body: bytes, *, timeout: float = 300) -> None:
    """PUT `body` to a presigned URL; StoreError if the store refuses it, OSError (or
    http.client's errors) if it cannot be reached."""
    connection, path = _store_connection(url, timeout)
    try:
        connection.request("PUT", path, body=body, headers={"Content-Length": str(len(body))})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise _store_refusal(url, response.status, raw)


def stream_from_store(url: str, *, timeout: float = 300) -> Iterator[bytes]:
    """GET a presigned URL, piece by piece."""
    connection, path = _store_connection(url, timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            raise _store_refusal(url, response.status, response.read())
        while piece := response.read(READ_BYTES):
            yield piece
    except (OSError, http.client.HTTPException) as error:
        # Named as the store, not as the Sealbox server the command was given.
        host = urlsplit(url).netloc
        raise StoreError(0, f"cannot reach the file store at {host}: {error}") from None
    finally:
        connection.close()
