// Seal for an owner: what the envelope submitter's page and the reply form share.
// This device makes a fresh content key, encrypts the manifest and the files with it, and
// creates one grant for the owner (the envelope's owner, or the original sender). The
// owner's link goes to the server only so it can email it; the owner opens it logged in.
import { encrypt, encryptStream, encryptedSize } from "./ece.js";
import { createGrant, newContentKey } from "./grants.js";
import { buildLink, newGrantToken } from "./links.js";
import { toBase64url } from "./b64.js";
import { apiFetch, ApiError, randomId } from "./transfer.js";

const CHUNK_BYTES = 8 * 1024 * 1024;

/** The extension of a file name, lowercased, without the dot ("" when there is none). */
export function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/**
 * Check files against a page's rules before anything is uploaded.
 * rules: {mode: "none"|"optional"|"mandatory", extensions: ["pdf", ...] ([] = any),
 * maxTotal: bytes or null}. Returns [kind, detail] problems; the server checks again.
 */
export function fileProblems(files, rules) {
  const problems = [];
  if (rules.mode === "none" && files.length) problems.push(["noFiles"]);
  if (rules.mode === "mandatory" && !files.length) problems.push(["needFiles"]);
  for (const entry of files) {
    if (rules.extensions.length && !rules.extensions.includes(extensionOf(entry.file.name))) {
      problems.push(["badType", entry.file.name]);
    }
  }
  const total = files.reduce((sum, entry) => sum + entry.file.size, 0);
  if (rules.maxTotal !== null && total > rules.maxTotal) problems.push(["tooLarge"]);
  return problems;
}

export function fileEntry(file, row) {
  return { file, ref: randomId(), row, progress: row?.querySelector("progress") };
}

async function putChunk(id, blobId, offset, chunk, uploadToken, csrf) {
  const url = `/api/v1/uploads/${id}/blobs/${blobId}?offset=${offset}`;
  const headers = { "Content-Type": "application/octet-stream", "X-Upload-Token": uploadToken };
  for (let attempt = 1; ; attempt++) {
    try {
      return await apiFetch(url, { method: "PUT", body: chunk, csrf, headers });
    } catch (error) {
      // Stored while its answer was lost? Resume from the server's count.
      if (error instanceof ApiError && error.code === "offset") {
        const state = await apiFetch(`/api/v1/uploads/${id}`, { headers: { "X-Upload-Token": uploadToken } });
        const stored = state.blobs.find((b) => b.id === blobId).stored;
        if (stored === offset + chunk.length) return { stored };
      }
      if (attempt >= 3 || (error instanceof ApiError && error.status < 500 && error.code !== "short_body")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

async function uploadStream(id, blob, stream, total, uploadToken, csrf, progress) {
  // Encrypted while read, uploaded 8 MiB at a time: memory stays flat for any size.
  const reader = stream.getReader();
  const buffer = new Uint8Array(CHUNK_BYTES);
  let filled = 0;
  let offset = 0;
  const flush = async () => {
    if (!filled) return;
    await putChunk(id, blob.id, offset, buffer.subarray(0, filled), uploadToken, csrf);
    offset += filled;
    filled = 0;
    if (progress) progress.value = Math.round((offset / total) * 100);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let position = 0;
    while (position < value.length) {
      const take = Math.min(value.length - position, CHUNK_BYTES - filled);
      buffer.set(value.subarray(position, position + take), filled);
      filled += take;
      position += take;
      if (filled === CHUNK_BYTES) await flush();
    }
  }
  await flush();
  if (progress) progress.value = 100;
}

/**
 * Encrypt `body` and `files` for the owner and upload them.
 * create(payload) posts {grant, blobs} (plus the page's own fields) and resolves to the
 * created draft {id, blobs, upload_token}; finaliseUrl(id) is where to finalise.
 */
export async function sealForOwner({ body, files, baseUrl, create, finaliseUrl, csrf }) {
  const contentKey = newContentKey();
  const manifest = {
    v: 1,
    body,
    files: files.map((f) => ({ id: f.ref, name: f.file.name, type: f.file.type || "application/octet-stream", size: f.file.size })),
  };
  const manifestBytes = await encrypt(new TextEncoder().encode(JSON.stringify(manifest)), contentKey);
  const token = newGrantToken();
  const grant = await createGrant(contentKey, token);
  const created = await create({
    grant: {
      grant_token: token,
      server_secret: toBase64url(grant.serverSecret),
      wrapped_key: toBase64url(grant.wrappedKey),
    },
    blobs: [
      { kind: "manifest", size: manifestBytes.length },
      ...files.map((f) => ({ kind: "file", size: encryptedSize(f.file.size), file_ref: f.ref, extension: extensionOf(f.file.name) })),
    ],
  });
  const uploadToken = created.upload_token;
  const manifestBlob = created.blobs.find((b) => b.kind === "manifest");
  const manifestStream = new Blob([manifestBytes]).stream();
  await uploadStream(created.id, manifestBlob, manifestStream, manifestBytes.length, uploadToken, csrf, null);
  for (const entry of files) {
    const blob = created.blobs.find((b) => b.file_ref === entry.ref);
    const stream = entry.file.stream().pipeThrough(encryptStream(contentKey));
    await uploadStream(created.id, blob, stream, encryptedSize(entry.file.size), uploadToken, csrf, entry.progress);
  }
  await apiFetch(finaliseUrl(created.id), {
    method: "POST",
    csrf,
    headers: { "X-Upload-Token": uploadToken },
    json: { links: [{ grant_token: token, link: buildLink(baseUrl, token, grant.linkSecret) }] },
  });
  return created;
}
