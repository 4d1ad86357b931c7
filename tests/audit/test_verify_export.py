"""The JSON Lines export carries the chain hashes; verify_jsonl checks it offline."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime, timedelta

import pytest

from sealbox.audit import exports, retention, sealing
from sealbox.audit import services as audit
from sealbox.audit.models import GENESIS_HASH, Event
from sealbox.cli import main
from tests.audit.test_exports import append_events

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture
def events(clock, organisation):
    """organisation.created at T0, then 20 events an hour apart from T0 + 1 h."""
    append_events(organisation, 20, start=clock.current + HOUR, step=HOUR)
    return organisation


def export(organisation, start, end) -> list[bytes]:
    data = b"".join(exports.stream_events_jsonl(organisation, start, end))
    assert data.endswith(b"\n")
    return data.splitlines(keepends=True)


def lines_of(clock, organisation, first_hour=5, last_hour=10) -> list[bytes]:
    """The export of the events created from hour `first_hour` to hour `last_hour` (excl.)."""
    t0 = clock.current
    return export(organisation, t0 + first_hour * HOUR, t0 + last_hour * HOUR)


def edit(line: bytes, **changes) -> bytes:
    item = json.loads(line)
    item.update(changes)
    return (json.dumps(item, ensure_ascii=False) + "\n").encode()


# --- the export -------------------------------------------------------------------------


def test_the_export_has_a_header_the_events_and_an_end_line(clock, events):
    lines = lines_of(clock, events)
    header, *body, end = (json.loads(line) for line in lines)
    chain = audit.chain_name(events.pk)
    # Events at hours 5..9 are seq 6..10 (seq 1 is organisation.created).
    assert header["sealbox_export"] == 1
    assert header["chain"] == chain
    assert header["organisation"] == "Tremblay Avocats"
    assert header["seq_before"] == 5
    assert header["hash_before"] == Event.objects.get(chain=chain, seq=5).hash
    assert [item["seq"] for item in body] == [6, 7, 8, 9, 10]
    assert end["sealbox_export_end"] is True
    assert end["count"] == 5
    assert end["last_hash"] == Event.objects.get(chain=chain, seq=10).hash


def test_each_line_is_the_canonical_event_and_its_hashes(clock, events):
    lines = lines_of(clock, events)
    item = json.loads(lines[1])
    event = Event.objects.get(chain=item["chain"], seq=item["seq"])
    canonical = json.loads(audit.canonical(event))
    assert item == {**canonical, "prev_hash": event.prev_hash, "hash": event.hash}
    assert item["details"] == {"n": 4, "note": "réunion"}
    assert "réunion" in lines[1].decode()  # UTF-8, not escaped


def test_events_recorded_by_the_application_export_and_verify(clock, organisation, rf, user):
    """The real path: record() then the database round trip (IPv6, nested Unicode details)."""
    request = rf.get("/", REMOTE_ADDR="2001:db8::7", HTTP_USER_AGENT="Safari/18 «beta»")
    audit.record("message.opened", actor=user, request=request, target=user)
    audit.record(
        "test.details",
        organisation=organisation,
        ip="192.0.2.1",
        details={"z": [1, {"é": None}], "a": True, "n": -1.5, "text": '日本 "quoted"'},
    )
    lines = export(organisation, clock.current - HOUR, clock.current + HOUR)
    result = exports.verify_jsonl(lines)
    assert result.ok, result.message
    assert audit.verify_chain(audit.chain_name(organisation.pk)).intact


def test_the_range_includes_its_start_and_excludes_its_end(clock, events):
    t0 = clock.current
    body = export(events, t0 + 3 * HOUR, t0 + 4 * HOUR)[1:-1]
    assert [json.loads(line)["created_at"] for line in body] == [
        (t0 + 3 * HOUR).isoformat(timespec="microseconds")
    ]


def test_the_chain_from_its_first_event_is_anchored_on_genesis(clock, events):
    lines = export(events, clock.current - HOUR, clock.current + 100 * HOUR)
    header = json.loads(lines[0])
    assert (header["seq_before"], header["hash_before"]) == (0, GENESIS_HASH)
    # organisation.created, audit.sealing_key_created (this first export made the key), 20
    assert exports.verify_jsonl(lines).count == 22


def test_an_empty_range_verifies_with_no_events(clock, events):
    lines = export(events, clock.current + 200 * HOUR, clock.current + 300 * HOUR)
    assert len(lines) == 2
    result = exports.verify_jsonl(lines)
    assert result.ok and result.count == 0
    assert json.loads(lines[0])["hash_before"] == json.loads(lines[1])["last_hash"]


def test_other_organisations_events_are_not_exported(clock, events, other_organisation):
    append_events(other_organisation, 3, start=clock.current + 5 * HOUR, step=HOUR)
    body = lines_of(clock, events)[1:-1]
    assert {json.loads(line)["organisation_id"] for line in body} == {events.pk}


def test_after_retention_the_export_is_anchored_on_the_checkpoint(clock, events):
    events.audit_retention_days = 1
    events.save()
    clock.advance(days=1, hours=6)  # the first 6 events (hours 0 to 5) have expired
    retention.purge_expired_events()
    t0 = clock.current - timedelta(days=1, hours=6)
    lines = export(events, t0, t0 + 100 * HOUR)
    header = json.loads(lines[0])
    checkpoint = retention.latest_checkpoint(audit.chain_name(events.pk))
    assert (header["seq_before"], header["hash_before"]) == (checkpoint.seq, checkpoint.hash)
    assert exports.verify_jsonl(lines).ok


# --- verification ---------------------------------------------------------------------


def test_an_intact_export_verifies(clock, events):
    result = exports.verify_jsonl(lines_of(clock, events))
    assert result.ok
    assert result.count == 5
    assert (result.first_seq, result.last_seq) == (6, 10)
    chain = audit.chain_name(events.pk)
    assert result.message == f"Export intact: 5 events, chain {chain}, from seq 6 to 10."


def test_text_lines_verify_too(clock, events):
    assert exports.verify_jsonl(line.decode() for line in lines_of(clock, events)).ok


@pytest.mark.parametrize(
    "field, value",
    [
        ("actor_label", "mallory@example.com"),
        ("ip", "198.51.100.66"),
        ("created_at", "2026-11-02T12:00:00.000001+00:00"),
        ("details", {"n": 99, "note": "réunion"}),
    ],
)
def test_a_modified_line_fails_at_that_line(clock, events, field, value):
    lines = lines_of(clock, events)
    lines[3] = edit(lines[3], **{field: value})
    result = exports.verify_jsonl(lines)
    assert not result.ok
    assert result.line == 4
    assert result.message.startswith("line 4: ")
    assert "was modified" in result.message


def test_a_modified_and_rehashed_line_fails_at_the_next_line(clock, events):
    lines = lines_of(clock, events)
    item = json.loads(lines[2])
    item["actor_label"] = "mallory@example.com"
    fake = Event(**{key: item[key] for key in exports.EVENT_FIELDS if key != "created_at"})
    fake.created_at = datetime.fromisoformat(item["created_at"])
    lines[2] = edit(
        lines[2], actor_label=item["actor_label"], hash=audit.compute_hash(item["prev_hash"], fake)
    )
    result = exports.verify_jsonl(lines)
    assert result.line == 4
    assert "does not link" in result.message


def test_a_removed_line_fails_at_the_line_after_it(clock, events):
    lines = lines_of(clock, events)
    del lines[2]
    result = exports.verify_jsonl(lines)
    assert result.line == 3
    assert "expected the event with seq 7, found seq 8" in result.message


def test_the_first_event_removed_fails_at_line_2(clock, events):
    lines = lines_of(clock, events)
    del lines[1]
    assert exports.verify_jsonl(lines).line == 2


def test_reordered_lines_fail_at_the_first_moved_line(clock, events):
    lines = lines_of(clock, events)
    lines[3], lines[4] = lines[4], lines[3]
    result = exports.verify_jsonl(lines)
    assert result.line == 4
    assert "out of order" in result.message


def test_an_added_line_fails(clock, events):
    lines = lines_of(clock, events)
    lines.insert(3, lines[2])
    result = exports.verify_jsonl(lines)
    assert result.line == 4


def test_a_file_without_its_end_line_is_truncated(clock, events):
    lines = lines_of(clock, events)[:-2]
    result = exports.verify_jsonl(lines)
    assert not result.ok
    assert result.line == len(lines)
    assert "truncated" in result.message


def test_a_file_cut_in_the_middle_of_a_line_fails_at_that_line(clock, events):
    data = b"".join(lines_of(clock, events))
    cut = data[: data.index(b"\n", 2000) - 30]
    lines = cut.splitlines(keepends=True)
    result = exports.verify_jsonl(lines)
    assert result.line == len(lines)
    assert "not valid JSON" in result.message


def test_an_end_line_with_the_wrong_count_or_hash_fails(clock, events):
    lines = lines_of(clock, events)
    wrong_count = [*lines[:-1], edit(lines[-1], count=4)]
    assert exports.verify_jsonl(wrong_count).line == len(lines)
    wrong_hash = [*lines[:-1], edit(lines[-1], last_hash="0" * 64)]
    assert "last hash" in exports.verify_jsonl(wrong_hash).message


def test_lines_after_the_end_fail(clock, events):
    lines = lines_of(clock, events)
    assert exports.verify_jsonl([*lines, lines[1]]).line == len(lines) + 1
    assert exports.verify_jsonl([*lines, b"\n"]).ok  # a trailing blank line is harmless


def test_a_changed_anchor_fails_at_the_first_event(clock, events):
    lines = lines_of(clock, events)
    lines[0] = edit(lines[0], hash_before="f" * 64)
    result = exports.verify_jsonl(lines)
    assert result.line == 2
    assert "does not link" in result.message


def test_a_field_added_to_a_line_fails(clock, events):
    lines = lines_of(clock, events)
    lines[2] = edit(lines[2], comment="looks fine")
    result = exports.verify_jsonl(lines)
    assert result.line == 3
    assert "comment" in result.message


def test_a_repeated_key_fails(clock, events):
    lines = lines_of(clock, events)
    lines[2] = lines[2].replace(b'"action":', b'"action":"login.failed","action":', 1)
    assert exports.verify_jsonl(lines).line == 3


def test_something_else_is_not_an_export():
    assert exports.verify_jsonl([b'{"hello": 1}\n']).message.startswith("line 1: not a Sealbox")
    assert not exports.verify_jsonl([]).ok


# --- the end line's signature -----------------------------------------------------------


def test_the_end_line_is_signed_with_the_organisations_seal(clock, events):
    lines = lines_of(clock, events)
    result = exports.verify_jsonl(lines, certificate=sealing.certificate_pem(events))
    assert result.ok and result.signature_checked
    assert json.loads(lines[-1])["certificate_sha256"] == sealing.certificate_fingerprint(events)


def test_a_cut_tail_with_a_rewritten_end_line_fails_only_the_signature_check(clock, events):
    lines = lines_of(clock, events)
    kept = lines[:4]  # header and 3 of the 5 events
    last_hash = json.loads(kept[-1])["hash"]
    forged = [*kept, edit(lines[-1], count=3, last_hash=last_hash)]
    assert exports.verify_jsonl(forged).ok  # the hashes alone cannot tell
    result = exports.verify_jsonl(forged, certificate=sealing.certificate_pem(events))
    assert not result.ok
    assert result.line == 5
    assert "signature" in result.message


# --- the command --------------------------------------------------------------------


def test_the_command_says_intact_and_exits_0(clock, events, tmp_path, capsys):
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(lines_of(clock, events)))
    assert main(["audit", "verify-export", str(path)]) == 0
    chain = audit.chain_name(events.pk)
    assert capsys.readouterr().out == f"Export intact: 5 events, chain {chain}, from seq 6 to 10.\n"
    certificate = tmp_path / "seal.pem"
    certificate.write_bytes(sealing.certificate_pem(events))
    assert main(["audit", "verify-export", str(path), "--certificate", str(certificate)]) == 0


def test_the_command_names_the_bad_line_and_exits_1(clock, events, tmp_path, capsys):
    lines = lines_of(clock, events)
    del lines[3]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(lines))
    assert main(["audit", "verify-export", str(path)]) == 1
    output = capsys.readouterr().out
    assert output.startswith("line 4: expected the event with seq 8")
    assert output.count("\n") == 1


def test_the_command_reports_a_missing_file_in_one_line(tmp_path, capsys, db):
    assert main(["audit", "verify-export", str(tmp_path / "nowhere.jsonl")]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert "cannot read" in captured.err and "nowhere.jsonl" in captured.err


# --- memory ---------------------------------------------------------------------------


def test_exporting_20000_events_streams_with_small_memory(clock, organisation):
    append_events(organisation, 20_000, start=clock.current + HOUR, step=timedelta(seconds=1))
    start, end = clock.current, clock.current + timedelta(days=2)
    sealing.sealing_key(organisation)
    total = 0
    tracemalloc.start()
    try:
        for chunk in exports.stream_events_jsonl(organisation, start, end):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 8_000_000  # ~450 bytes an event
    assert peak < min(8_000_000, total / 2), (
        f"peak {peak / 1e6:.1f} MB for {total / 1e6:.1f} MB exported"
    )


def test_a_file_damaged_everywhere_names_the_first_problems_and_counts_the_rest(
    clock, events, monkeypatch
):
    monkeypatch.setattr(audit, "MAX_REPORTED_BREAKS", 2)
    lines = lines_of(clock, events)
    for number in (1, 2, 3, 4):
        lines[number] = edit(lines[number], actor_label="mallory@example.com")
    result = exports.verify_jsonl(lines)
    assert [line for line, _, _ in result.problems] == [2, 3]
    assert "and 2 more problems" in result.message
    assert result.message.endswith("4 problems; 1 event verifies.")
