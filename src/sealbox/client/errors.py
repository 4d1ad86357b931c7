"""The client's one error: a refusal or failure from the server, in one line.

Apart from the transport and the message functions so that both can raise it without
importing each other.
"""

from __future__ import annotations

CHUNK_BYTES = 16 * 1024 * 1024  # the most the server takes in one request


class ClientError(Exception):
    """A refusal or failure from the server, told in one line a person can act on."""

    def __init__(self, status: int, data: dict | None):
        self.status = status
        self.data = data or {}
        super().__init__(self.data.get("message") or describe_status(status))


def describe_status(status: int) -> str:
    """For answers without Sealbox's JSON message: usually a proxy in front of it."""
    if status == 413:
        mib = CHUNK_BYTES // (1024 * 1024)
        return (
            f"the server or a proxy in front of it refused a {mib} MiB upload chunk "
            f"(HTTP 413): raise the proxy's body size limit above {mib} MiB "
            f"(nginx: client_max_body_size {mib + 1}m)"
        )
    if status in (502, 503, 504):
        return f"the server is unavailable (HTTP {status}); try again in a moment"
    return f"the server answered HTTP {status}"
