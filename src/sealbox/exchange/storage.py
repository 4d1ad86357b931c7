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


def direct_object_name(message_id, blob_id) -> str:
    """The object a direct upload assembles its parts into (one per blob)."""
    return f"{blob_folder(message_id, blob_id)}/blob.{secrets.token_hex(8)}"


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


# --- Direct mode: S3 multipart uploads and presigned URLs ---------------------------------
#
# With S3 storage (unless `?direct=false`), clients PUT each blob's ciphertext as the parts
# of one multipart upload, with URLs presigned here (each signs its part's Content-Length,
# so the store refuses a body of another size), and GET it back with a presigned URL: the
# app servers sign and check, and never carry the bytes.


def direct_mode() -> bool:
    """Whether uploads and downloads may go straight to the store."""
    from django.conf import settings

    return getattr(settings, "SEALBOX_DIRECT_STORAGE", None) is not None and hasattr(
        default_storage, "bucket_name"
    )


def _key(name: str) -> str:
    from storages.utils import clean_name

    return default_storage._normalize_name(clean_name(name))


def _name_of(key: str) -> str:
    location = (getattr(default_storage, "location", "") or "").strip("/")
    return key[len(location) + 1 :] if location and key.startswith(location + "/") else key


def _client():
    return default_storage.connection.meta.client


_presigners: dict[tuple, object] = {}


def _presigner():
    """The client that signs the URLs clients use: the store's own, or one naming the
    public endpoint (SEALBOX_STORAGE_PUBLIC_URL) when clients reach it by another address
    (the host is part of what is signed)."""
    from django.conf import settings

    public = settings.SEALBOX_DIRECT_STORAGE.public_endpoint
    if not public:
        return _client()
    store = default_storage
    cache_key = (id(store), public)
    if cache_key not in _presigners:
        import boto3

        _presigners[cache_key] = boto3.session.Session().client(
            "s3",
            endpoint_url=public,
            region_name=store.region_name,
            aws_access_key_id=store.access_key,
            aws_secret_access_key=store.secret_key,
            aws_session_token=store.security_token,
            config=store.client_config,
        )
    return _presigners[cache_key]


def _no_such_upload(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchUpload", "404")


def start_upload(name: str) -> str:
    """Start the multipart upload of a new object `name`; its upload id."""
    with storage_calls():
        answer = _client().create_multipart_upload(
            Bucket=default_storage.bucket_name,
            Key=_key(name),
            ContentType="application/octet-stream",
        )
    return answer["UploadId"]


def part_urls(name: str, upload_id: str, parts: list[tuple[int, int]], lifetime: int) -> list[str]:
    """A presigned PUT URL for each (part number, size), valid `lifetime` seconds. The
    size is signed (Content-Length), so the store refuses a larger or smaller part."""
    signer = _presigner()
    key = _key(name)
    with storage_calls():
        return [
            signer.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": default_storage.bucket_name,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": number,
                    "ContentLength": size,
                },
                ExpiresIn=lifetime,
            )
            for number, size in parts
        ]


def uploaded_parts(name: str, upload_id: str) -> dict[int, tuple[int, str]] | None:
    """The parts the store holds so far (number → (size, ETag)); None if the upload is no
    longer in progress (completed or aborted)."""
    found: dict[int, tuple[int, str]] = {}
    marker = 0
    while True:
        try:
            with storage_calls():
                answer = _client().list_parts(
                    Bucket=default_storage.bucket_name,
                    Key=_key(name),
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
        except Exception as error:
            if _no_such_upload(error):
                return None
            raise
        for part in answer.get("Parts", []):
            found[part["PartNumber"]] = (part["Size"], part["ETag"])
        if not answer.get("IsTruncated"):
            return found
        marker = answer["NextPartNumberMarker"]


def complete_upload(name: str, upload_id: str, parts: dict[int, tuple[int, str]]) -> None:
    """Assemble the parts (as listed) into the object `name`."""
    with storage_calls():
        _client().complete_multipart_upload(
            Bucket=default_storage.bucket_name,
            Key=_key(name),
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": parts[n][1]} for n in sorted(parts)]
            },
        )


def abort_upload(name: str, upload_id: str) -> bool:
    """Abort a multipart upload (its parts are deleted); False if it was no longer open."""
    try:
        with storage_calls():
            _client().abort_multipart_upload(
                Bucket=default_storage.bucket_name, Key=_key(name), UploadId=upload_id
            )
    except Exception as error:
        if _no_such_upload(error):
            return False
        raise
    return True


def uploads_started_before(cutoff) -> list[tuple[str, str]]:
    """(name, upload id) of every multipart upload under messages/ started before
    `cutoff` (a datetime)."""
    found: list[tuple[str, str]] = []
    prefix = _key("messages") + "/"
    markers: dict[str, str] = {}
    while True:
        with storage_calls():
            answer = _client().list_multipart_uploads(
                Bucket=default_storage.bucket_name, Prefix=prefix, **markers
            )
        for upload in answer.get("Uploads", []):
            if upload["Initiated"] < cutoff:
                found.append((_name_of(upload["Key"]), upload["UploadId"]))
        if not answer.get("IsTruncated"):
            return found
        markers = {
            "KeyMarker": answer["NextKeyMarker"],
            "UploadIdMarker": answer["NextUploadIdMarker"],
        }


def download_url(name: str, lifetime: int) -> str:
    """A presigned GET of the object, valid `lifetime` seconds. The store is told to
    answer as a plain attachment that nothing caches, named nothing (the object name is
    random, and the file name never reaches the server)."""
    with storage_calls():
        return _presigner().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": default_storage.bucket_name,
                "Key": _key(name),
                "ResponseContentDisposition": "attachment",
                "ResponseContentType": "application/octet-stream",
                "ResponseCacheControl": "no-store",
            },
            ExpiresIn=lifetime,
        )
