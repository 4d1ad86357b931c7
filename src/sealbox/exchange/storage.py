"""Ciphertext chunks in blob storage (local folder or S3), written and read as streams.

Every call to the store goes through `storage_calls`: a store that does not answer (S3
unreachable, timing out or throttling, the local folder unmounted or full) comes out as
`StorageUnavailable`, which the API answers with 503 and its message, and pages with
the 503 page. Reading the request body is kept outside it: a client that goes away is
an interrupted upload (`ShortBody`), not a storage outage.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from sealbox.lib.errors import StorageUnavailable, storage_calls

__all__ = ["ShortBody", "StorageUnavailable"]

READ_SIZE = 1024 * 1024
logger = logging.getLogger(__name__)


class ShortBody(Exception):
    """The request body ended before the announced length."""


class LimitedStream(io.RawIOBase):
    """Exactly `length` bytes of a request body, read piece by piece (never held whole)."""

    def __init__(self, source, length: int):
        self.source = source
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.remaining <= 0:
            return 0
        data = _read_body(self.source, min(len(buffer), self.remaining, READ_SIZE))
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)


def _read_body(source, size: int) -> bytes:
    """Up to `size` bytes of the request body; ShortBody if it ended or broke early."""
    try:
        data = source.read(size)
    except OSError:  # the client's connection reset: its upload is interrupted
        raise ShortBody() from None
    if not data:
        raise ShortBody()
    return data


def message_folder(message_id) -> str:
    return f"messages/{message_id}"


def blob_folder(message_id, blob_id) -> str:
    return f"{message_folder(message_id)}/{blob_id}"


def new_chunk_name(message_id, blob_id, index: int) -> str:
    """A name for one upload attempt of chunk `index`, used by no other attempt.

    Two attempts at the same chunk (a retry whose first try is still running, two tabs)
    each write their own object, so neither can overwrite or delete the one that is
    recorded; the loser deletes only what it wrote itself."""
    return f"{blob_folder(message_id, blob_id)}/{index:06d}.{secrets.token_hex(8)}"


def write_chunk(name: str, source, length: int) -> str:
    """Stream `length` bytes from `source` into a new object `name`; return the name used.

    `name` comes from new_chunk_name: it belongs to this attempt alone, so on any failure
    what was written under it is deleted."""
    if isinstance(default_storage, FileSystemStorage):
        return _write_local(name, source, length)
    stream = io.BufferedReader(LimitedStream(source, length), buffer_size=READ_SIZE)
    content = File(stream, name=name.rsplit("/", 1)[-1])
    content.DEFAULT_CHUNK_SIZE = READ_SIZE  # 64 KiB pieces cost 16 times more calls
    try:
        with storage_calls():
            return default_storage.save(name, content)
    except BaseException:
        discard(name)
        raise


def _write_local(name: str, source, length: int) -> str:
    """The local folder: straight from the request into the file, one copy per piece
    (the generic storage path wraps the body in three file objects)."""
    path = Path(default_storage.path(name))
    remaining = length
    with storage_calls():
        path.parent.mkdir(parents=True, exist_ok=True)
        # "xb": never open a file that exists, even if a name were ever to repeat.
        target = open(path, "xb")  # noqa: SIM115 - closed below, whatever happens
    try:
        while remaining:
            data = _read_body(source, min(READ_SIZE, remaining))
            with storage_calls():
                target.write(data)
            remaining -= len(data)
        with storage_calls():
            target.close()
    except BaseException:
        # Without hiding the error that led here (a full disk fails the close too).
        with contextlib.suppress(OSError):
            target.close()
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        raise
    return name


def discard(name: str) -> None:
    """Delete this attempt's own object, if any, without hiding the error that led here."""
    try:
        with storage_calls():
            default_storage.delete(name)
    except StorageUnavailable:  # already logged, and no object was likely written
        logger.warning("could not delete the unrecorded chunk %s: storage unavailable", name)
    except Exception:  # logged: the caller re-raises the error that brought it here
        logger.warning("could not delete the unrecorded chunk %s", name, exc_info=True)


def stored_size(name: str) -> int | None:
    """The size of the object in storage, or None if there is none."""
    try:
        with storage_calls():
            return default_storage.size(name)
    except FileNotFoundError:
        return None


def names_under(folder: str) -> list[str]:
    """Every object under `folder`, recursively (local folder and S3 alike)."""
    try:
        with storage_calls():
            folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    found = [f"{folder}/{name}" for name in files]
    for sub in folders:
        found += names_under(f"{folder}/{sub}")
    return found


def read_chunks(names: list[str]) -> Iterator[bytes]:
    """The objects' bytes, in order. The first piece is read before this returns, so a
    store that does not answer is a 503 before the response starts (after it, a failure
    can only cut the download short, which the client notices by its length)."""
    pieces = _pieces(names)
    first = next(pieces, b"")
    return itertools.chain([first] if first else [], pieces)


def _pieces(names: list[str]) -> Iterator[bytes]:
    for name in names:
        try:
            with storage_calls():
                handle = default_storage.open(name, "rb")
        except FileNotFoundError:
            # A recorded chunk the store does not show: an unmounted folder, a wrong
            # bucket or prefix. Not the recipient's doing, and not theirs to fix.
            logger.error("the stored chunk %s is missing from storage", name)
            raise StorageUnavailable() from None
        with handle:
            while True:
                with storage_calls():
                    piece = handle.read(READ_SIZE)
                if not piece:
                    break
                yield piece


def delete(name: str) -> None:
    with storage_calls():
        default_storage.delete(name)
