// Small helpers shared by the pages that talk to the API.
import { encryptedSize } from "./ece.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error || "";
    this.field = body?.field || "";
    this.retryAfter = body?.retry_after || 0;
  }
}

/**
 * fetch() for the JSON API. Options: method, json (a body to send as JSON), body,
 * headers, csrf (the page's CSRF token). Resolves to the parsed JSON (or null);
 * rejects with ApiError carrying the server's message.
 */
export async function apiFetch(url, { method = "GET", json, body, headers = {}, csrf } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  // The server's messages in the page's language (a recipient has no account to say it).
  const language = globalThis.document?.documentElement?.lang;
  if (language) init.headers["Accept-Language"] = language;
  if (csrf) init.headers["X-CSRFToken"] = csrf;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(url, init);
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function formatSize(bytes) {
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export const CHUNK_BYTES = 16 * 1024 * 1024; // the most the server takes in one request

/** The manifest's plaintext (JSON, UTF-8): the body and each picked file's id, name, type
 * and size. `files` are pickFiles entries ({ref, file}). */
export function manifestPlaintext(body, files) {
  return new TextEncoder().encode(JSON.stringify({
    v: 1,
    body,
    files: files.map((f) => ({ id: f.ref, name: f.file.name, type: f.file.type || "application/octet-stream", size: f.file.size })),
  }));
}

/** Whether this manifest, once encrypted, is larger than the server takes (`limit` bytes,
 * from the page): checked before anything is uploaded. */
export function manifestTooLong(plaintext, limit) {
  return Number.isFinite(limit) && limit > 0 && encryptedSize(plaintext.length) > limit;
}

/**
 * Upload one blob in order, CHUNK_BYTES at a time, from a ReadableStream of bytes (the
 * ciphertext, encrypted while it is read): memory stays flat for any size.
 *   blobUrl   the blob's upload URL (…/blobs/{id}); chunks go to `${blobUrl}?offset=N`
 *   stateUrl  where the draft's state says how much of each blob is stored
 *   blobId    this blob's id in that state
 *   headers   extra headers (an upload token), csrf the page's CSRF token
 *   onProgress(stored) after each chunk
 *   plan      the blob's `upload` from the created draft: when its mode is "direct", the
 *             parts go straight to the object store by their presigned URLs instead
 */
export async function uploadStream(stream, { blobUrl, stateUrl, blobId, headers = {}, csrf, onProgress, plan }) {
  const direct = plan?.mode === "direct";
  const parts = direct ? new PartUrls(`${blobUrl}/parts`, headers, plan) : null;
  let partNumber = 0;
  const put = direct
    ? (offset, chunk) => putPart(parts, ++partNumber, chunk)
    : (offset, chunk) => putChunk(blobUrl, offset, chunk,
      { headers, csrf, stored: () => storedBytes(stateUrl, blobId, headers) });
  const reader = stream.getReader();
  const buffer = new Uint8Array(direct ? plan.part_size : CHUNK_BYTES);
  let filled = 0;
  let offset = 0;
  const flush = async () => {
    if (!filled) return;
    await put(offset, buffer.subarray(0, filled));
    offset += filled;
    filled = 0;
    onProgress?.(offset);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let position = 0;
    while (position < value.length) {
      const take = Math.min(value.length - position, buffer.length - filled);
      buffer.set(value.subarray(position, position + take), filled);
      filled += take;
      position += take;
      if (filled === buffer.length) await flush();
    }
  }
  await flush();
  return offset;
}

async function storedBytes(stateUrl, blobId, headers) {
  const state = await apiFetch(stateUrl, { headers });
  return state.blobs.find((b) => b.id === blobId).stored;
}

/** PUT one chunk, retrying network and server errors; a chunk stored while its answer
 * was lost is recognised from the server's count instead of being sent twice. */
async function putChunk(blobUrl, offset, chunk, { headers, csrf, stored }) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await apiFetch(`${blobUrl}?offset=${offset}`, { method: "PUT", body: chunk, csrf,
        headers: { "Content-Type": "application/octet-stream", ...headers } });
    } catch (error) {
      if (error instanceof ApiError && error.code === "offset" && await stored() === offset + chunk.length) {
        return null;
      }
      const permanent = error instanceof ApiError && error.status < 500 && error.code !== "short_body";
      if (attempt >= 3 || permanent) throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt));
    }
  }
}

/** Fresh part URLs are asked for once those in hand are this old (they last 30 minutes,
 * and each ask tells the server the upload is alive). */
export let PART_URLS_REFRESH_MS = 10 * 60 * 1000;
export function setPartUrlsRefresh(ms) { PART_URLS_REFRESH_MS = ms; }

/** A direct blob's parts as the server last described them: the store's state (which
 * parts it holds, from ListParts) and a presigned URL for each of the others. */
class PartUrls {
  constructor(url, headers, plan) {
    this.url = url;
    this.headers = headers;
    this.take(plan);
  }

  take(plan) {
    this.parts = new Map(plan.parts.map((p) => [p.number, p]));
    this.fetched = Date.now();
  }

  async refresh() {
    this.take(await apiFetch(this.url, { headers: this.headers }));
  }

  async part(number) {
    if (Date.now() - this.fetched > PART_URLS_REFRESH_MS) await this.refresh();
    return this.parts.get(number);
  }
}

/** PUT one part to the store, retrying as putChunk does. After a failure the server is
 * asked for the store's state: a part that arrived while its answer was lost is not sent
 * again, and URLs that expired are replaced. Nothing of the session goes to the store. */
async function putPart(parts, number, chunk) {
  for (let attempt = 1; ; attempt++) {
    const part = await parts.part(number);
    if (!part || part.uploaded) return null;
    let error;
    try {
      const response = await fetch(part.url, { method: "PUT", body: chunk, credentials: "omit" });
      if (response.ok) return null;
      error = new StoreError(response.status, await response.text().catch(() => ""));
    } catch (failure) {
      error = failure;
    }
    // 403: the URL expired (or the clock is off); 5xx, throttling and the network: again.
    const permanent = error instanceof StoreError && error.status < 500 && ![403, 408, 429].includes(error.status);
    if (attempt >= 3 || permanent) throw error;
    await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt));
    try { await parts.refresh(); } catch { /* the server is away too: try the URL in hand */ }
  }
}

/** The object store refused a part: its status and S3 error code, in one line. */
export class StoreError extends Error {
  constructor(status, body) {
    const code = /<Code>([^<]*)<\/Code>/.exec(body || "")?.[1];
    super(`The file store answered HTTP ${status}${code ? ` (${code})` : ""}.`);
    this.name = "StoreError";
    this.status = status;
  }
}

/** Milliseconds before retrying a failed chunk (times the attempt number). */
export let RETRY_DELAY_MS = 1000;
export function setRetryDelay(ms) { RETRY_DELAY_MS = ms; }

/** A ReadableStream over bytes already in memory (the small manifest). */
export function bytesStream(bytes) {
  return new Blob([bytes]).stream();
}
