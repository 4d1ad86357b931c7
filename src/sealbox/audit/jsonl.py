"""The JSON Lines export of the audit log: every event's canonical fields and chain hashes,
anchored on the hash before the run and closed by a signed end line, so that
`verify_jsonl` (and `sealbox audit verify-export`) can check it offline."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db.models import Max, Min

from sealbox.audit import sealing
from sealbox.audit import services as audit
from sealbox.audit.models import GENESIS_HASH, ChainHead, Checkpoint, Event
from sealbox.lib import clock

EXPORT_VERSION = 1
JSONL_CHUNK_EVENTS = 2000
JSONL_BATCH_BYTES = 64 * 1024
EVENT_FIELDS = (
    "chain",
    "seq",
    "organisation_id",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "details",
)
LINE_FIELDS = frozenset((*EVENT_FIELDS, "prev_hash", "hash"))
# `canonical` reads attributes only: a light record of the same fields gives the same bytes
# as an Event instance, without building a model object per line (a million of them).
EventRecord = namedtuple("EventRecord", (*EVENT_FIELDS, "prev_hash", "hash"))


def _json_text(value: str) -> str:
    # Hashes are hex: quoting them is enough. Anything else (a damaged row) is escaped.
    return f'"{value}"' if value.isalnum() else json.dumps(value)


def _dumps(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _hash_at(chain: str, seq: int) -> str | None:
    """The hash a chain had after `seq`: genesis, a stored event, or a checkpoint."""
    if seq == 0:
        return GENESIS_HASH
    found = Event.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()
    if found is None:
        found = (
            Checkpoint.objects.filter(chain=chain, seq=seq).values_list("hash", flat=True).first()
        )
    return found


def _range_bounds(chain: str, organisation: Any, start: datetime, end: datetime):
    """(seq_before, first_seq, last_seq) of the run of the chain created in [start, end)."""
    in_range = Event.objects.filter(
        organisation=organisation, chain=chain, created_at__gte=start, created_at__lt=end
    ).aggregate(first=Min("seq"), last=Max("seq"))
    if in_range["first"] is not None:
        return in_range["first"] - 1, in_range["first"], in_range["last"]
    # Nothing in range: anchor on where the chain stood at `start`.
    before = (
        Event.objects.filter(chain=chain, created_at__lt=start)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if before is None:
        oldest = Event.objects.filter(chain=chain).order_by("seq").values_list("seq", flat=True)
        first = oldest.first()
        if first is not None:
            before = first - 1
        else:
            head = ChainHead.objects.filter(chain=chain).values_list("seq", flat=True).first()
            before = head or 0
    return before, None, None


def end_line_payload(header: dict, count: int, last_hash: str) -> bytes:
    """The bytes the end line's signature covers: the header's claims and the result."""
    payload = {
        key: header[key]
        for key in ("chain", "organisation", "start", "end", "seq_before", "hash_before")
    }
    payload.update(count=count, last_hash=last_hash)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def stream_events_jsonl(organisation: Any, start: datetime, end: datetime) -> Iterator[bytes]:
    """The organisation's events created in [start, end), in chain order, one per line.

    The first line anchors the run on the hash before it; the last line counts the
    events, repeats the last hash and is signed with the organisation's sealing key, so
    a removed, added, edited or reordered line, or a cut file, shows in verification.
    The run is contiguous in the chain (from the first to the last event in the range).
    """
    chain = audit.chain_name(organisation.pk)
    signing_key = sealing.sealing_key(organisation)  # first use creates it, before the range
    seq_before, first_seq, last_seq = _range_bounds(chain, organisation, start, end)
    hash_before = _hash_at(chain, seq_before)
    events = Event.objects.none()
    if first_seq is not None:
        events = Event.objects.filter(chain=chain, seq__gte=first_seq, seq__lte=last_seq)
        if hash_before is None:  # the event before was removed without a checkpoint
            hash_before = events.order_by("seq").values_list("prev_hash", flat=True).first()
    records = events.order_by("seq").values_list(*EventRecord._fields)
    header = {
        "sealbox_export": EXPORT_VERSION,
        "chain": chain,
        "organisation": organisation.name,
        "start": _iso(start),
        "end": _iso(end),
        "seq_before": seq_before,
        "hash_before": hash_before or GENESIS_HASH,
        "generated_at": _iso(clock.now()),
    }
    yield (_dumps(header) + "\n").encode()

    count = 0
    last_hash = header["hash_before"]
    batch: list[str] = []
    size = 0
    for values in records.iterator(chunk_size=JSONL_CHUNK_EVENTS):
        event = EventRecord._make(values)
        # The canonical JSON is exactly what was hashed; add the two hashes to it. An event
        # of an older release may have hashed another spelling of its address: export that.
        text = audit.canonical(event)
        if audit.legacy_ip_spellings(event.ip):
            text = audit.matching_canonical(event.prev_hash, event, event.hash) or text
        hashes = f'"prev_hash":{_json_text(event.prev_hash)},"hash":{_json_text(event.hash)}'
        line = f"{text[:-1]},{hashes}}}\n"
        batch.append(line)
        size += len(line)
        count += 1
        last_hash = event.hash
        if size >= JSONL_BATCH_BYTES:
            yield "".join(batch).encode()
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode()

    signature = sealing.sign(organisation, end_line_payload(header, count, last_hash))
    end_line = {
        "sealbox_export_end": True,
        "count": count,
        "last_hash": last_hash,
        "certificate_sha256": sealing.fingerprint(sealing.load_certificate(signing_key)),
        "signature": signature,
    }
    yield (_dumps(end_line) + "\n").encode()
