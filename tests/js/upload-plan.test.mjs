// The pure parts of the browser upload: chunk and part ranges, which records make a range,
// retry waits and how failures are taken, and the refusals made when a file is picked.
import { test } from "node:test";
import assert from "node:assert/strict";

import { encrypt, encryptedSize, randomBytes, recordSealer } from "../../src/sealbox/static/sealbox/js/ece.js";
import {
  backoffDelay, chunkRanges, extensionOf, failureKind, partRanges, recordOffset, recordsFor,
} from "../../src/sealbox/static/sealbox/js/upload-plan.js";
import { fillIn, sizeRefusal } from "../../src/sealbox/static/sealbox/js/filelist.js";

test("chunks cover the blob on a fixed grid, from where the server stands", () => {
  assert.deepEqual(chunkRanges(25, 10), [{ start: 0, end: 10 }, { start: 10, end: 20 }, { start: 20, end: 25 }]);
  assert.deepEqual(chunkRanges(25, 10, 13), [{ start: 13, end: 20 }, { start: 20, end: 25 }]);
  assert.deepEqual(chunkRanges(20, 10, 20), []);
  assert.deepEqual(chunkRanges(0, 10), []);
  assert.throws(() => chunkRanges(5, 0), RangeError);
});

test("direct mode: the parts still to send, at their offsets in the blob", () => {
  const plan = { parts: [
    { number: 2, size: 10, uploaded: false }, { number: 1, size: 10, uploaded: true }, { number: 3, size: 4, uploaded: false },
  ] };
  assert.deepEqual(partRanges(plan), [{ start: 10, end: 20, number: 2 }, { start: 20, end: 24, number: 3 }]);
});

test("the records behind a ciphertext range", () => {
  const rs = 65536;
  const size = 3 * 65519 + 5; // four records
  assert.deepEqual(recordsFor(size, 0, 21), { header: true, first: 0, last: -1, records: 4, plainStart: 0, plainEnd: 0 });
  const middle = recordsFor(size, recordOffset(1) - 1, recordOffset(2) + 1);
  assert.deepEqual(middle, { header: false, first: 0, last: 2, records: 4, plainStart: 0, plainEnd: 3 * 65519 });
  const end = recordsFor(size, recordOffset(3), encryptedSize(size));
  assert.deepEqual([end.first, end.last, end.plainStart, end.plainEnd], [3, 3, 3 * 65519, size]);
  assert.equal(recordOffset(2, rs), 21 + 2 * rs);
  assert.throws(() => recordsFor(size, 0, encryptedSize(size) + 1), RangeError);
});

test("records sealed one by one, in any order, make the payload encrypt() makes", async () => {
  const key = randomBytes(16);
  const salt = randomBytes(16);
  const plain = randomBytes(2 * 65519 + 300);
  const sealer = await recordSealer(key, { salt });
  const sealed = await Promise.all([2, 0, 1].map(async (i) => [i, new Uint8Array(await sealer.seal(
    i, plain.subarray(i * 65519, Math.min(plain.length, (i + 1) * 65519)), i === 2))]));
  sealed.sort((a, b) => a[0] - b[0]);
  const payload = new Uint8Array(encryptedSize(plain.length));
  payload.set(sealer.header);
  for (const [i, bytes] of sealed) payload.set(bytes, recordOffset(i));
  assert.deepEqual(payload, await encrypt(plain, key, { salt }));
  assert.throws(() => sealer.seal(0, plain.subarray(0, 10), false), /must hold/);
});

test("retry waits double up to a ceiling, with jitter in its upper half", () => {
  const low = (attempt) => backoffDelay(attempt, { base: 500, max: 10000, random: () => 0 });
  const high = (attempt) => backoffDelay(attempt, { base: 500, max: 10000, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(low), [250, 500, 1000, 2000, 4000, 5000, 5000]);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(high), [500, 1000, 2000, 4000, 8000, 10000, 10000]);
});

test("which failures are retried, re-synchronised or final", () => {
  assert.equal(failureKind(new TypeError("Failed to fetch")), "retry");
  assert.equal(failureKind({ status: 502 }), "retry");
  assert.equal(failureKind({ status: 429 }), "retry");
  assert.equal(failureKind({ status: 400, code: "short_body" }), "retry");
  assert.equal(failureKind({ status: 409, code: "offset" }), "resync");
  assert.equal(failureKind({ status: 403, store: true }), "retry"); // an expired URL
  assert.equal(failureKind({ status: 403 }), "fail");
  assert.equal(failureKind({ status: 410, code: "gone" }), "fail");
  assert.equal(failureKind(new DOMException("Cancelled", "AbortError")), "fail");
});

test("a picked file that would pass the limit is refused with the limit named", () => {
  const texts = { none: "No attachments.", tooLarge: "{name} ({size}) was not added: at most {limit}.", limit: "2.5 GB" };
  const picked = [{ file: { size: 2_000_000_000 } }];
  assert.equal(sizeRefusal({ name: "a.bin", size: 500_000_000 }, picked, 2_500_000_000, texts), null);
  assert.equal(sizeRefusal({ name: "b.bin", size: 500_000_001 }, picked, 2_500_000_000, texts),
    "b.bin (500 MB) was not added: at most 2.5 GB.");
  assert.equal(sizeRefusal({ name: "c", size: 1 }, [], 0, texts), "No attachments.");
  assert.equal(sizeRefusal({ name: "c", size: 1e15 }, [], null, texts), null);
  assert.equal(fillIn("{a} and {b} but {c}", { a: 1, b: "x" }), "1 and x but {c}");
  assert.equal(extensionOf("Scan.Final.PDF"), "pdf");
  assert.equal(extensionOf(".bashrc"), "");
});
