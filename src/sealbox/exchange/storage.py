"""Ciphertext chunks in blob storage (local folder or S3), written and read as streams."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

READ_SIZE = 1024 * 1024


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
        data = self.source.read(min(len(buffer), self.remaining, READ_SIZE))
        if not data:
            raise ShortBody()
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)


def chunk_name(message_id, blob_id, index: int) -> str:
    return f"messages/{message_id}/{blob_id}/{index:06d}"


def write_chunk(name: str, source, length: int) -> str:
    """Stream `length` bytes from `source` into storage under `name`; return the name used."""
    if isinstance(default_storage, FileSystemStorage):
        return _write_local(name, source, length)
    if default_storage.exists(name):
        default_storage.delete(name)  # a partial write from an interrupted attempt
    stream = io.BufferedReader(LimitedStream(source, length), buffer_size=READ_SIZE)
    content = File(stream, name=name.rsplit("/", 1)[-1])
    content.DEFAULT_CHUNK_SIZE = READ_SIZE  # 64 KiB pieces cost 16 times more calls
    try:
        return default_storage.save(name, content)
    except ShortBody:
        if default_storage.exists(name):
            default_storage.delete(name)
        raise


def _write_local(name: str, source, length: int) -> str:
    """The local folder: straight from the request into the file, one copy per piece
    (the generic storage path wraps the body in three file objects)."""
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    remaining = length
    try:
        # "wb": a partial file from an interrupted attempt is simply overwritten.
        with open(path, "wb") as target:
            while remaining:
                data = source.read(min(READ_SIZE, remaining))
                if not data:
                    raise ShortBody()
                target.write(data)
                remaining -= len(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return name


def read_chunks(names: list[str]) -> Iterator[bytes]:
    for name in names:
        with default_storage.open(name, "rb") as handle:
            while piece := handle.read(READ_SIZE):
                yield piece


def delete(name: str) -> None:
    default_storage.delete(name)
