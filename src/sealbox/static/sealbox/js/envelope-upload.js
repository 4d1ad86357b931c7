// Seal for an owner: what the envelope submitter's page and the reply form share.
// This device makes a fresh content key, encrypts the manifest and the files with it, and
// creates one grant for the owner (the envelope's owner, or the original sender). The
// owner's link goes to the server only so it can email it; the owner opens it logged in.
import { createGrant } from "./grants.js";
import { buildLink, newGrantToken } from "./links.js";
import { toBase64url } from "./b64.js";
import { apiFetch } from "./transfer.js";
import { uploadDraft } from "./upload.js";
import { extensionOf } from "./upload-plan.js";

export { extensionOf };

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

/**
 * Encrypt `body` and `files` for the owner and upload them (see uploadDraft).
 * create(payload) posts {grant, blobs} (plus the page's own fields) and resolves to the
 * created draft {id, blobs, upload_token}; finaliseUrl(id) is where to finalise.
 * Returns uploadDraft's {finished, cancel}; Cancel deletes the draft by its upload token.
 */
export function sealForOwner({ body, files, baseUrl, create, finaliseUrl, csrf, onWaiting, onFinalising }) {
  const token = newGrantToken();
  let grant;
  const withToken = (created) => ({ "X-Upload-Token": created.upload_token });
  return uploadDraft({
    body,
    files,
    csrf,
    extensions: true,
    onWaiting,
    onFinalising,
    create: async ({ contentKey, blobs }) => {
      grant = await createGrant(contentKey, token);
      return create({
        grant: {
          grant_token: token,
          server_secret: toBase64url(grant.serverSecret),
          wrapped_key: toBase64url(grant.wrappedKey),
        },
        blobs,
        // Straight to the object store when the server allows it (S3); else through it.
        upload_mode: "direct",
      });
    },
    paths: (created) => ({
      blobUrl: (blobId) => `/api/v1/uploads/${created.id}/blobs/${blobId}`,
      stateUrl: `/api/v1/uploads/${created.id}`,
      headers: withToken(created),
    }),
    finalise: async (created) => {
      await apiFetch(finaliseUrl(created.id), {
        method: "POST",
        csrf,
        headers: withToken(created),
        json: { links: [{ grant_token: token, link: buildLink(baseUrl, token, grant.linkSecret) }] },
      });
      return created;
    },
    discard: (created) => apiFetch(`/api/v1/uploads/${created.id}`, { method: "DELETE", csrf, headers: withToken(created) }),
  });
}
