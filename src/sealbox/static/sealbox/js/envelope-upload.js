// Seal for an owner: what the envelope submitter's page and the reply form share.
// This device makes a fresh content key, encrypts the manifest and the files with it, and
// creates one grant for the owner (the envelope's owner, or the original sender). The
// owner's link goes to the server only so it can email it; the owner opens it logged in.
import { encrypt, encryptStream, encryptedSize } from "./ece.js";
import { createGrant, newContentKey } from "./grants.js";
import { buildLink, newGrantToken } from "./links.js";
import { toBase64url } from "./b64.js";
import { apiFetch, bytesStream, manifestPlaintext, uploadStream } from "./transfer.js";

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

function blobUpload(id, blob, uploadToken, csrf, progress, total) {
  return {
    blobUrl: `/api/v1/uploads/${id}/blobs/${blob.id}`,
    stateUrl: `/api/v1/uploads/${id}`,
    blobId: blob.id,
    headers: { "X-Upload-Token": uploadToken },
    csrf,
    onProgress: progress ? (stored) => { progress.value = Math.round((stored / total) * 100); } : null,
    plan: blob.upload,
  };
}

/**
 * Encrypt `body` and `files` for the owner and upload them.
 * create(payload) posts {grant, blobs} (plus the page's own fields) and resolves to the
 * created draft {id, blobs, upload_token}; finaliseUrl(id) is where to finalise.
 */
export async function sealForOwner({ body, files, baseUrl, create, finaliseUrl, csrf }) {
  const contentKey = newContentKey();
  const manifestBytes = await encrypt(manifestPlaintext(body, files), contentKey);
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
    // Straight to the object store when the server allows it (S3); else through it.
    upload_mode: "direct",
  });
  const uploadToken = created.upload_token;
  const manifestBlob = created.blobs.find((b) => b.kind === "manifest");
  await uploadStream(bytesStream(manifestBytes), blobUpload(created.id, manifestBlob, uploadToken, csrf));
  for (const entry of files) {
    const blob = created.blobs.find((b) => b.file_ref === entry.ref);
    const stream = entry.file.stream().pipeThrough(encryptStream(contentKey));
    await uploadStream(stream, blobUpload(created.id, blob, uploadToken, csrf, entry.progress,
      encryptedSize(entry.file.size)));
    if (entry.progress) entry.progress.value = 100;
  }
  await apiFetch(finaliseUrl(created.id), {
    method: "POST",
    csrf,
    headers: { "X-Upload-Token": uploadToken },
    json: { links: [{ grant_token: token, link: buildLink(baseUrl, token, grant.linkSecret) }] },
  });
  return created;
}
