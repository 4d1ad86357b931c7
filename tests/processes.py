"""Helpers for tests that start Sealbox's own processes (serve, worker, migrate)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_URL = os.environ.get("SEALBOX_TEST_DATABASE_URL", "")
SHARED_SECRET_KEY = "same-key-on-every-node-" + "x" * 20


def clean_env(tmp_path, **extra: str) -> dict[str, str]:
    """The environment of a fresh install: no SEALBOX_ or DJANGO_ variable of the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env["SEALBOX_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


@contextmanager
def empty_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("needs PostgreSQL: set SEALBOX_TEST_DATABASE_URL")
    import psycopg

    name = f"sealbox_proc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """A loopback TCP forwarder whose peer can be made to 'go down' and come back.

    Stands in for a database restart without touching the shared server: during an
    outage every open connection is cut and new ones are closed as soon as they arrive."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import socket
        import threading

        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.down = threading.Event()
        self.closed = threading.Event()
        self.sockets: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.close()

    def go_down(self) -> None:
        """Cut every connection and refuse new ones until `come_back`."""
        import socket

        self.down.set()
        with self.lock:
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def come_back(self) -> None:
        self.down.clear()

    def outage(self, seconds: float) -> None:
        """Cut every connection and refuse new ones for `seconds`."""
        import time

        self.go_down()
        time.sleep(seconds)
        self.come_back()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        self.outage(0)
