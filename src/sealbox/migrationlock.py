"""One migration at a time, whatever starts at once.

App servers, workers and `createuser` may all start together on an empty database;
two concurrent `migrate` runs then collide (PostgreSQL: duplicate type names; SQLite:
a table created twice). Every migration run takes this lock first, so the others wait
and then find nothing left to do.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from django.db import connections

# An arbitrary, fixed 64-bit key: every Sealbox node asks PostgreSQL for the same lock.
ADVISORY_LOCK_KEY = 0x5EA1B0C5_0001


@contextlib.contextmanager
def migration_lock(using: str = "default") -> Iterator[None]:
    connection = connections[using]
    if connection.vendor == "postgresql":
        with _advisory_lock(connection):
            yield
    elif connection.vendor == "sqlite" and not connection.is_in_memory_db():
        with _file_lock(Path(connection.settings_dict["NAME"]).with_suffix(".migrate-lock")):
            yield
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(connection) -> Iterator[None]:
    # A session-level lock on the connection `migrate` itself uses: held across the
    # migrations' own transactions, released even if a migration fails.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
