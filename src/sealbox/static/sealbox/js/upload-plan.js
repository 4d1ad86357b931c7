// The arithmetic of an upload, with no I/O: which ciphertext bytes each chunk or part
// carries, which records of the aes128gcm payload produce them, how long to wait before
// a retry and where to start again. Used by upload-worker.js; tested in Node.

import { DEFAULT_RS, HEADER_LENGTH, RECORD_OVERHEAD, encryptedSize } from "./ece.js";

export const CHUNK_BYTES = 16 * 1024 * 1024; // the most the server takes in one request

/**
 * The ciphertext ranges [start, end) to send for a blob of `size` bytes cut every
 * `chunkBytes` bytes, from `from` on (what the server already holds): the first range
 * runs from `from` to the next multiple of `chunkBytes`, so a resumed upload falls back
 * on the same grid as a fresh one.
 */
export function chunkRanges(size, chunkBytes, from = 0) {
  if (!(chunkBytes > 0)) throw new RangeError("chunkBytes must be positive");
  const ranges = [];
  let start = Math.max(0, from);
  while (start < size) {
    const end = Math.min(size, (Math.floor(start / chunkBytes) + 1) * chunkBytes);
    ranges.push({ start, end });
    start = end;
  }
  return ranges;
}

/** Direct mode: the store's parts still to send, as ranges with their part number (the
 * server's plan says each part's size and whether the store holds it already). */
export function partRanges(plan) {
  const ranges = [];
  let start = 0;
  for (const part of [...plan.parts].sort((a, b) => a.number - b.number)) {
    if (!part.uploaded) ranges.push({ start, end: start + part.size, number: part.number });
    start += part.size;
  }
  return ranges;
}

/**
 * Which records of the payload of a `plainSize`-byte file (record size `rs`, empty key id)
 * hold the ciphertext bytes [start, end), and the plaintext they encrypt. Records can be
 * sealed independently (each has its own nonce), so any range can be produced without
 * the bytes before it: the same bytes whichever range they are asked for in.
 * Returns {header: whether the range touches the header, first, last (record indexes,
 * last < first when no record is touched), records (the payload's count),
 * plainStart, plainEnd}.
 */
export function recordsFor(plainSize, start, end, rs = DEFAULT_RS) {
  const capacity = rs - RECORD_OVERHEAD;
  const records = Math.max(1, Math.ceil(plainSize / capacity));
  const total = encryptedSize(plainSize, rs);
  if (start < 0 || end > total || start >= end) throw new RangeError(`bad range ${start}-${end} of ${total}`);
  const first = start < HEADER_LENGTH ? 0 : Math.floor((start - HEADER_LENGTH) / rs);
  const last = end <= HEADER_LENGTH ? -1 : Math.floor((end - 1 - HEADER_LENGTH) / rs);
  return {
    header: start < HEADER_LENGTH,
    first,
    last,
    records,
    plainStart: first * capacity,
    plainEnd: last < first ? first * capacity : Math.min(plainSize, (last + 1) * capacity),
  };
}

/** Where record `index` starts in the payload. */
export function recordOffset(index, rs = DEFAULT_RS) {
  return HEADER_LENGTH + index * rs;
}

/**
 * Milliseconds to wait before retry number `attempt` (1, 2, …): doubling from `base`,
 * at most `max`, with "full jitter" (`random` in [0, 1)) so that many pages cut off by
 * the same outage do not come back all at once.
 */
export function backoffDelay(attempt, { base = 500, max = 10000, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** How a failed request is to be taken: "retry" (the network, the server or store
 * briefly away, throttling, an interrupted body), "resync" (the server holds a different
 * amount than this chunk assumed: ask it and carry on from there) or "fail". */
export function failureKind(error) {
  if (error?.name === "AbortError") return "fail";
  const status = error?.status;
  if (status === undefined) return "retry"; // fetch rejected: the network
  if (error.code === "offset") return "resync";
  if (error.code === "short_body" || status >= 500 || status === 408 || status === 429) return "retry";
  // A store's 403 is an expired URL (or a clock off): fresh URLs are asked for.
  if (status === 403 && error.store) return "retry";
  return "fail";
}

/** Attempts per chunk before the upload gives up: with backoffDelay's defaults they
 * span about a minute, long enough for a dropped Wi-Fi to come back. */
export const MAX_ATTEMPTS = 10;

/** The extension of a file name, lowercased, without the dot ("" when there is none). */
export function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}
