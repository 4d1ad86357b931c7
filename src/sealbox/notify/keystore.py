"""Payload keys of queued messages, kept in the blob storage — not in the database.

One object per queued message, `outbox/<id>`, holding its 32-byte payload key (see
`sealbox.notify.sealing` for why it lives here). Destroying the object is what makes a
delivered message's lingering ciphertext unreadable. On local storage the file is
overwritten with zeros before it is unlinked, so the key does not survive in the freed
blocks of a simple filesystem (a copy-on-write or wear-levelled disk may still keep old
blocks: the operator's disk encryption is the answer there).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage

from sealbox.lib.errors import storage_calls

logger = logging.getLogger(__name__)
FOLDER = "outbox"


def key_name(outbox_id: uuid.UUID | str) -> str:
    return f"{FOLDER}/{uuid.UUID(str(outbox_id))}"


def _local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


@storage_calls()
def store(outbox_id: uuid.UUID, payload_key: bytes) -> None:
    name = key_name(outbox_id)
    if _local():
        path = Path(default_storage.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Readable by the server's user only; O_EXCL: an id is never reused.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, payload_key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    saved = default_storage.save(name, ContentFile(payload_key, name=str(outbox_id)))
    if saved != name:  # a storage that renames on collision: never expected for a uuid
        default_storage.delete(saved)
        raise RuntimeError("the storage did not keep the payload key under its name")


def load(outbox_id: uuid.UUID) -> bytes | None:
    """The payload key, or None when it was destroyed (or never stored).

    A store that does not answer raises StorageUnavailable instead: the key may well be
    there, so the message must not be taken for undeliverable."""
    name = key_name(outbox_id)
    try:
        with storage_calls(), default_storage.open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def destroy(outbox_id: uuid.UUID | str) -> None:
    """Delete the payload key (overwritten first on local storage). Never raises: a key
    left behind by a storage error is destroyed by the next purge."""
    name = key_name(outbox_id)
    try:
        if _local():
            path = Path(default_storage.path(name))
            try:
                with open(path, "r+b") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    handle.write(b"\0" * size)
                    handle.flush()
                    os.fsync(handle.fileno())
            except FileNotFoundError:
                return
            path.unlink(missing_ok=True)
        else:
            default_storage.delete(name)
    except Exception:
        logger.exception("could not destroy the payload key of outbox message %s", outbox_id)


def stored_ids() -> Iterator[uuid.UUID]:
    """The ids that have a payload key in storage (for the purge)."""
    try:
        with storage_calls():
            _dirs, files = default_storage.listdir(FOLDER)
    except FileNotFoundError:
        return
    for name in files:
        try:
            yield uuid.UUID(name)
        except ValueError:
            continue


def stored_at(outbox_id: uuid.UUID) -> datetime | None:
    try:
        with storage_calls():
            return default_storage.get_modified_time(key_name(outbox_id))
    except FileNotFoundError:
        return None
