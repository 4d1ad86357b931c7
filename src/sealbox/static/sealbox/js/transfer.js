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
 * headers, csrf (the page's CSRF token), signal (to abort). Resolves to the parsed JSON (or null);
 * rejects with ApiError carrying the server's message.
 */
export async function apiFetch(url, { method = "GET", json, body, headers = {}, csrf, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
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

/** The object store refused a part: its status and S3 error code, in one line. */
export class StoreError extends Error {
  constructor(status, body) {
    const code = /<Code>([^<]*)<\/Code>/.exec(body || "")?.[1];
    super(`The file store answered HTTP ${status}${code ? ` (${code})` : ""}.`);
    this.name = "StoreError";
    this.status = status;
    this.store = true;
  }
}
