"""Offline verification of a JSON Lines export (`sealbox audit verify-export`): every
hash, every link, the sequence, the end line and, given the certificate, its signature."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from sealbox.audit import sealing
from sealbox.audit import services as audit
from sealbox.audit.jsonl import EXPORT_VERSION, LINE_FIELDS, EventRecord, end_line_payload


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int  # events that verify
    message: str
    line: int | None = None  # the first bad line, when there is one
    chain: str = ""
    first_seq: int | None = None
    last_seq: int | None = None
    signature_checked: bool = False
    # Every bad line: (line number, what is wrong, events that verify after it).
    problems: tuple[tuple[int, str, int], ...] = field(default=())


class _Problem(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def verify_jsonl(lines: Iterable[bytes | str], *, certificate: bytes | None = None) -> VerifyResult:
    """Check an export line by line: every hash, every link, the sequence and the end line.

    A bad line does not stop the check: it goes on from the next line, so one damaged or
    differently spelled line cannot hide a later one, and each problem says how many
    events after it verify. With `certificate` (the organisation's PEM), the end line's
    signature is checked too; without it, a file whose tail was cut and whose end line was
    rewritten to match cannot be told from an intact one.
    """
    checker = _ExportChecker(certificate)
    try:
        for number, raw in enumerate(lines, 1):
            checker.feed(number, raw)
        checker.finish()
    except _Problem as problem:  # nothing to check after it (no header, or no end line)
        checker._note(problem, final=True)
    if checker.problems:
        text = []
        for line, problem, after in checker.problems:
            where = _("line %(line)s: %(problem)s") % {"line": line, "problem": problem}
            if after is not None:
                verified = ngettext(
                    "%(n)s later event verifies from the next one",
                    "%(n)s later events verify from the next one",
                    after,
                ) % {"n": after}
                where += f" ({verified})"
            text.append(where)
        total = len(checker.problems) + checker.more_problems
        if checker.more_problems:
            text.append(_("and %(n)s more problems") % {"n": checker.more_problems})
        if total > 1:
            text.append(
                ngettext(
                    "%(problems)s problems; %(verified)s event verifies.",
                    "%(problems)s problems; %(verified)s events verify.",
                    checker.count,
                )
                % {"problems": total, "verified": checker.count}
            )
        return VerifyResult(
            False,
            checker.count,
            "\n".join(text),
            line=checker.problems[0][0],
            chain=checker.chain,
            problems=tuple(tuple(item) for item in checker.problems),
        )
    message = _(
        "Export intact: %(count)s events, chain %(chain)s, from seq %(first)s to %(last)s."
    ) % {
        "count": checker.count,
        "chain": checker.chain,
        "first": checker.seq_before + 1,
        "last": checker.seq_before + checker.count,
    }
    if certificate is not None:
        message += " " + _("The signature matches the certificate.")
    return VerifyResult(
        True,
        checker.count,
        message,
        chain=checker.chain,
        first_seq=checker.seq_before + 1,
        last_seq=checker.seq_before + checker.count,
        signature_checked=certificate is not None,
    )


class _ExportChecker:
    """Feeds on the lines in order and notes every one that does not fit.

    After a bad event line, the walk goes on from that line: its seq and hash become what
    the next line must follow (a line that cannot be read leaves the next one as the new
    start), so one problem is reported once, not at every line after it.
    """

    def __init__(self, certificate: bytes | None):
        self.certificate = certificate
        self.header: dict | None = None
        self.ended_at: int | None = None
        self.last_number = 0
        self.chain = ""
        self.seq_before = 0
        self.running_hash = ""
        self.next_seq = 1
        self.count = 0
        self.lost_track = False  # the line before could not be read: follow the next one
        self.noted_after_end = False
        self.more_problems = 0  # beyond MAX_REPORTED_BREAKS: counted, not named
        # [line, message, events verified after it (None: nothing is checked after it)]
        self.problems: list[list] = []

    def _note(self, problem: _Problem, *, final: bool = False) -> None:
        if final or len(self.problems) < audit.MAX_REPORTED_BREAKS:  # the end always shows
            self.problems.append([problem.line, problem.message, None if final else 0])
        else:
            self.more_problems += 1

    def feed(self, number: int, raw: bytes | str) -> None:
        self.last_number = number
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        if self.ended_at is not None:
            if text.strip() and not self.noted_after_end:
                self._note(_Problem(number, _("there are lines after the end line")), final=True)
                self.noted_after_end = True
            return
        try:
            if not text.strip():
                raise _Problem(number, _("empty line"))
            try:
                item = json.loads(text, object_pairs_hook=_no_duplicate_keys)
            except ValueError:
                raise _Problem(number, _("not valid JSON (the line is damaged or cut)")) from None
            if not isinstance(item, dict):
                raise _Problem(number, _("not a JSON object"))
        except _Problem as problem:
            if self.header is None:
                raise
            self._note(problem)
            self.lost_track = True
            return
        if self.header is None:
            self._header(number, item)
        elif "sealbox_export_end" in item:
            self._end(number, item)
        else:
            self._event(number, item)

    def finish(self) -> None:
        if self.header is None:
            raise _Problem(1, _("the file is empty"))
        if self.ended_at is None:
            raise _Problem(
                self.last_number,
                _("the file stops here without its end line: it is truncated"),
            )

    def _header(self, number: int, item: dict) -> None:
        if item.get("sealbox_export") != EXPORT_VERSION:
            raise _Problem(number, _("not a Sealbox export (no header line)"))
        chain, seq_before, hash_before = (
            item.get("chain"),
            item.get("seq_before"),
            item.get("hash_before"),
        )
        if not (
            isinstance(chain, str)
            and _is_count(seq_before)
            and isinstance(hash_before, str)
            and isinstance(item.get("organisation"), str)
            and isinstance(item.get("start"), str)
            and isinstance(item.get("end"), str)
        ):
            raise _Problem(number, _("the header line is incomplete"))
        self.header = item
        self.chain = chain
        self.seq_before = seq_before
        self.next_seq = seq_before + 1
        self.running_hash = hash_before

    def _event(self, number: int, item: dict) -> None:
        fields = set(item)
        if fields != LINE_FIELDS:
            wrong = sorted(fields ^ LINE_FIELDS)
            self._note(
                _Problem(
                    number,
                    _("unexpected or missing fields: %(fields)s") % {"fields": ", ".join(wrong)},
                )
            )
            self.lost_track = True
            return
        seq = item["seq"]
        problem = None
        if not _is_count(seq) or (seq != self.next_seq and not self.lost_track):
            problem = _(
                "expected the event with seq %(expected)s, found seq %(found)s: a line is "
                "missing, added or out of order"
            ) % {"expected": self.next_seq, "found": seq}
        elif item["chain"] != self.chain or audit.chain_name(item["organisation_id"]) != self.chain:
            problem = _("the event belongs to another chain")
        elif item["prev_hash"] != self.running_hash and not self.lost_track:
            problem = _("the event with seq %(seq)s does not link to the line before it") % {
                "seq": seq
            }
        else:
            try:
                event = _event_from_line(number, item)
            except _Problem as bad_date:
                problem = bad_date.message
            else:
                if not isinstance(item["prev_hash"], str) or not audit.hash_matches(
                    item["prev_hash"], event, item["hash"]
                ):
                    problem = _(
                        "the event with seq %(seq)s was modified: its content does not match "
                        "its hash"
                    ) % {"seq": seq}
        self.lost_track = False
        if problem:
            self._note(_Problem(number, problem))
        else:
            self.count += 1
            if self.problems and self.problems[-1][2] is not None and not self.more_problems:
                self.problems[-1][2] += 1
        # The next line follows this one, whatever was wrong with it.
        if _is_count(seq):
            self.next_seq = seq + 1
        self.running_hash = item["hash"] if isinstance(item["hash"], str) else ""

    def _end(self, number: int, item: dict) -> None:
        # Lines lost in the middle are already reported; the end line's claims are about
        # the run from the header's seq to the last event's.
        span = self.next_seq - 1 - self.seq_before
        if item.get("count") != span:
            self._note(
                _Problem(
                    number,
                    _("the end line counts %(claimed)s events but the file has %(count)s")
                    % {"claimed": item.get("count"), "count": span},
                ),
                final=True,
            )
        elif item.get("last_hash") != self.running_hash:
            self._note(
                _Problem(number, _("the end line's last hash is not the last event's hash")),
                final=True,
            )
        elif self.certificate is not None:
            try:
                self._check_signature(number, item, span)
            except _Problem as problem:
                self._note(problem, final=True)
        self.ended_at = number

    def _check_signature(self, number: int, item: dict, count: int) -> None:
        from cryptography import x509

        try:
            certificate = x509.load_pem_x509_certificate(self.certificate)
        except ValueError:
            raise _Problem(number, _("the certificate file is not a PEM certificate")) from None
        payload = end_line_payload(self.header, count, self.running_hash)
        signature = item.get("signature")
        if not isinstance(signature, str) or not sealing.verify_with_certificate(
            certificate, payload, signature
        ):
            raise _Problem(number, _("the end line's signature does not match the certificate"))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # A repeated key would let a reader show a value other than the one that was hashed.
    item = dict(pairs)
    if len(item) != len(pairs):
        raise ValueError("duplicate key")
    return item


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _event_from_line(number: int, item: dict) -> EventRecord:
    """The line's fields as a record, so `canonical` rebuilds the bytes that were hashed."""
    try:
        created_at = datetime.fromisoformat(item["created_at"])
    except (TypeError, ValueError):
        raise _Problem(number, _("the event's date is not valid")) from None
    if created_at.tzinfo is None:
        raise _Problem(number, _("the event's date is not valid"))
    return EventRecord(**{**item, "created_at": created_at})
