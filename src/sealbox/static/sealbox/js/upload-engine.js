// The upload engine: reads each file by slices, encrypts it record by record and PUTs
// the ciphertext. Several chunks are in flight: through the app server, which takes a
// blob's chunks in order, the next chunks are encrypted while one is sent; straight to
// the store (direct mode), several parts are sent at once. A failed request is retried
// with backoff, then the upload carries on from what the server (or the store, by
// ListParts) says it holds. Runs in upload-worker.js, away from the page's thread;
// tested in Node against fake servers.

import { recordSealer, RECORD_OVERHEAD, DEFAULT_RS, HEADER_LENGTH } from "./ece.js";
import { apiFetch, StoreError } from "./transfer.js";
import {
  CHUNK_BYTES, MAX_ATTEMPTS, backoffDelay, chunkRanges, failureKind, partRanges, recordOffset,
  recordsFor,
} from "./upload-plan.js";

/** Chunks encrypted ahead of the one being sent (through the app server): one is enough
 * to keep the connection busy (the same MB/s as two, measured) and costs 32 MiB less. */
const AHEAD = 1;
/** Parts sent at once (straight to the store). */
const PARTS_IN_FLIGHT = 4;
/** Records handed to WebCrypto at once while a chunk is encrypted. */
const RECORDS_IN_FLIGHT = 64;

/** Tunables (tests shorten them). */
export const settings = {
  backoff: { base: 500, max: 10000 },
  // URLs last 30 minutes; asking for fresh ones also tells the server the upload lives.
  partUrlsRefreshMs: 10 * 60 * 1000,
};

/** Wait before retry number `attempt`, unless the upload is cancelled meanwhile. */
function wait(attempt, { signal, onWaiting }) {
  const delay = backoffDelay(attempt, settings.backoff);
  onWaiting?.(delay);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(resolve, delay);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

// --- Ciphertext ranges -----------------------------------------------------------------

/**
 * A function producing any range [start, end) of a blob's ciphertext, as a Blob: a
 * Blob body streams to the network from the browser's blob store, where an ArrayBuffer
 * body crawls (about 5 MB/s against 30+ in Chromium, measured), and the renderer lets
 * the records go as soon as the Blob is made.
 */
export async function producer(source) {
  if (source.bytes) return async ({ start, end }) => new Blob([source.bytes.subarray(start, end)]);
  const { file, key } = source;
  const sealer = await recordSealer(key);
  const capacity = DEFAULT_RS - RECORD_OVERHEAD;
  return async ({ start, end }) => {
    const plan = recordsFor(file.size, start, end);
    const parts = [];
    if (plan.header) parts.push(sealer.header.subarray(start, Math.min(HEADER_LENGTH, end)));
    if (plan.last < plan.first) return new Blob(parts);
    const plain = new Uint8Array(await file.slice(plan.plainStart, plan.plainEnd).arrayBuffer());
    const records = new Array(plan.last - plan.first + 1);
    const running = new Set();
    for (let index = plan.first; index <= plan.last; index++) {
      const begin = (index - plan.first) * capacity;
      const data = plain.subarray(begin, Math.min(plain.length, begin + capacity));
      const job = sealer.seal(index, data, index === plan.records - 1).then((sealed) => {
        // Only the part of the record inside the range (the edges may cut a record).
        const at = recordOffset(index);
        const from = Math.max(at, start);
        const to = Math.min(at + sealed.byteLength, end);
        records[index - plan.first] = from === at && to === at + sealed.byteLength
          ? sealed : new Uint8Array(sealed, from - at, to - from);
        running.delete(job);
      });
      running.add(job);
      if (running.size >= RECORDS_IN_FLIGHT) await Promise.race(running);
    }
    await Promise.all(running);
    parts.push(...records);
    return new Blob(parts);
  };
}

// --- Through the app server --------------------------------------------------------------

async function storedOf(blob, { headers, signal }) {
  const state = await apiFetch(blob.stateUrl, { headers, signal });
  return state.blobs.find((b) => b.id === blob.blobId).stored;
}

/** Send a blob's chunks in order, the next AHEAD encrypted meanwhile. */
async function throughServer(blob, produce, context, report) {
  let ranges = chunkRanges(blob.size, CHUNK_BYTES, blob.stored || 0);
  let queue = [];
  const refill = () => {
    while (queue.length < AHEAD + 1 && ranges.length) {
      const range = ranges.shift();
      const bytes = produce(range);
      bytes.catch(() => {}); // reported when awaited
      queue.push({ range, bytes });
    }
  };
  const resumeFrom = (stored) => {
    ranges = chunkRanges(blob.size, CHUNK_BYTES, stored);
    queue = [];
    report(stored);
  };
  refill();
  let attempt = 0;
  while (queue.length) {
    const { range, bytes } = queue[0];
    const body = await bytes; // a file that cannot be read fails here, not retried
    try {
      await apiFetch(`${blob.blobUrl}?offset=${range.start}`, {
        method: "PUT",
        body,
        csrf: context.csrf,
        signal: context.signal,
        headers: { "Content-Type": "application/octet-stream", ...context.headers },
      });
      attempt = 0;
      queue.shift();
      report(range.end);
      refill();
      continue;
    } catch (error) {
      const kind = failureKind(error);
      if (kind === "fail" || ++attempt >= MAX_ATTEMPTS) throw error;
      if (kind === "retry") await wait(attempt, context);
    }
    // What does the server hold? (A chunk stored while its answer was lost is not sent
    // again.) If the server is away too, the next turn of the loop retries.
    let stored;
    try {
      stored = await storedOf(blob, context);
    } catch (error) {
      if (failureKind(error) === "fail") throw error;
      continue;
    }
    if (stored !== range.start) {
      resumeFrom(stored);
      refill();
    }
  }
}

// --- Straight to the store ---------------------------------------------------------------

/** The blob's parts as the server last described them (ListParts and fresh URLs). */
class Parts {
  constructor(url, { headers, signal }, plan) {
    this.url = url;
    this.headers = headers;
    this.signal = signal;
    this.take(plan);
  }

  take(plan) {
    this.byNumber = new Map(plan.parts.map((p) => [p.number, p]));
    this.fetched = Date.now();
  }

  async refresh() {
    this.take(await apiFetch(this.url, { headers: this.headers, signal: this.signal }));
  }

  async part(number) {
    if (Date.now() - this.fetched > settings.partUrlsRefreshMs) await this.refresh();
    return this.byNumber.get(number);
  }
}

async function putPart(parts, range, bytes, context) {
  const body = await bytes;
  for (let attempt = 1; ; attempt++) {
    const part = await parts.part(range.number);
    if (!part || part.uploaded) return;
    let error;
    try {
      // Nothing of the session goes to the store.
      const response = await fetch(part.url, { method: "PUT", body, credentials: "omit", signal: context.signal });
      if (response.ok) return;
      error = new StoreError(response.status, await response.text().catch(() => ""));
    } catch (failure) {
      error = failure;
    }
    if (failureKind(error) === "fail" || attempt >= MAX_ATTEMPTS) throw error;
    await wait(attempt, context);
    try { await parts.refresh(); } catch (failure) {
      if (failureKind(failure) === "fail") throw failure;
      // The server is away too: the URL in hand is tried again.
    }
  }
}

async function straightToStore(blob, produce, context, report) {
  const parts = new Parts(`${blob.blobUrl}/parts`, context, blob.plan);
  const ranges = partRanges(blob.plan);
  let sent = blob.size - ranges.reduce((sum, r) => sum + r.end - r.start, 0);
  if (sent) report(sent); // resumed: the store holds these parts already
  // Each lane encrypts its next part and sends it; PARTS_IN_FLIGHT lanes run at once.
  const lane = async () => {
    while (ranges.length) {
      const range = ranges.shift();
      const bytes = produce(range);
      bytes.catch(() => {});
      await putPart(parts, range, bytes, context);
      sent += range.end - range.start;
      report(sent);
    }
  };
  await Promise.all(Array.from({ length: PARTS_IN_FLIGHT }, lane));
}

// --- The whole draft ----------------------------------------------------------------------

/**
 * Upload every blob of a draft, one after the other: `blobs` [{source, size, blobUrl,
 * stateUrl, blobId, plan, stored}] (source {file} to encrypt with `key`, or {bytes}
 * already encrypted). `onProgress(index, sent)`, `onWaiting(delay)` before a retry;
 * `signal` cancels (in-flight requests are aborted). Resolves once the server, or the
 * store, holds every byte.
 */
export async function uploadBlobs({ key, blobs, csrf, headers = {}, signal, onProgress, onWaiting }) {
  const context = { csrf, headers, signal, onWaiting };
  for (const [index, blob] of blobs.entries()) {
    const produce = await producer(blob.source.file ? { file: blob.source.file, key } : blob.source);
    const report = (sent) => onProgress?.(index, sent);
    if (blob.plan?.mode === "direct") await straightToStore(blob, produce, context, report);
    else await throughServer(blob, produce, context, report);
  }
}
