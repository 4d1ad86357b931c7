// The one way the pages send encrypted content (the send page, the envelope submitter's
// page, the reply form): the manifest is encrypted here, the draft is created, then a
// module worker (upload-worker.js) encrypts and uploads the files while this page only
// shows progress, and the draft is finalised. Cancel stops every request and deletes the
// draft, so no half message is left.
import { encrypt, encryptedSize } from "./ece.js";
import { newContentKey } from "./grants.js";
import { ApiError, manifestPlaintext } from "./transfer.js";
import { extensionOf } from "./upload-plan.js";

/** The upload was cancelled (by the person, with Cancel). */
export class UploadCancelled extends Error {
  constructor() {
    super("cancelled");
    this.name = "UploadCancelled";
  }
}

/** An error the worker reported: the server's (or the store's) answer as an ApiError,
 * or the network's. */
function failure({ message, status, code }) {
  if (status) return new ApiError(status, { message, error: code });
  const error = new Error(message);
  error.name = "NetworkError";
  return error;
}

/**
 * Send `body` and `files` (pickFiles entries) as one draft. Callbacks:
 *   create({contentKey, blobs})   posts the draft (blobs: the specs to announce) and
 *                                 resolves to it ({id, blobs, upload_token?})
 *   paths(created)                {blobUrl(blobId), stateUrl, headers} for its uploads
 *   finalise(created)             sends it; its result is what `finished` resolves to
 *   discard(created)              deletes it (after Cancel)
 *   onWaiting(ms)                 a request failed; the next try is in `ms`
 *   onProgress()                  after each file's progress bar moved
 *   onFinalising()                every byte is uploaded: Cancel no longer applies
 * Options: extensions (announce each file's extension, as envelopes check them), csrf.
 * Returns {finished: Promise, cancel()}; after cancel(), `finished` rejects with
 * UploadCancelled once the draft is deleted.
 */
export function uploadDraft({ body, files, create, paths, finalise, discard, csrf, extensions = false, onWaiting, onProgress, onFinalising }) {
  let cancelled = false;
  let finalising = false;
  let worker = null;
  let created = null;
  let stopWorker = () => {};

  const run = async () => {
    const contentKey = newContentKey();
    const manifest = await encrypt(manifestPlaintext(body, files), contentKey);
    created = await create({
      contentKey,
      blobs: [
        { kind: "manifest", size: manifest.length },
        ...files.map((f) => ({
          kind: "file",
          size: encryptedSize(f.file.size),
          file_ref: f.ref,
          ...(extensions ? { extension: extensionOf(f.file.name) } : {}),
        })),
      ],
    });
    if (cancelled) throw new UploadCancelled();
    const { blobUrl, stateUrl, headers = {} } = paths(created);
    const blob = (ref) => created.blobs.find((b) => (ref ? b.file_ref === ref : b.kind === "manifest"));
    const describe = (b, source, size) => ({
      source, size, blobId: b.id, blobUrl: blobUrl(b.id), stateUrl, plan: b.upload, stored: b.stored || 0,
    });
    const blobs = [
      describe(blob(null), { bytes: manifest }, manifest.length),
      ...files.map((f) => describe(blob(f.ref), { file: f.file }, encryptedSize(f.file.size))),
    ];
    await new Promise((resolve, reject) => {
      worker = new Worker(new URL("./upload-worker.js", import.meta.url), { type: "module" });
      stopWorker = () => {
        worker.postMessage({ type: "cancel" });
        // The worker aborts its requests; terminating it also ends any it still has.
        setTimeout(() => worker.terminate(), 1000);
        reject(new UploadCancelled());
      };
      worker.addEventListener("message", ({ data }) => {
        if (data.type === "progress" && data.index > 0) {
          const entry = files[data.index - 1];
          if (entry.progress) entry.progress.value = Math.round((data.sent / blobs[data.index].size) * 100);
          onProgress?.();
        } else if (data.type === "waiting") {
          onWaiting?.(data.delay);
        } else if (data.type === "done") {
          worker.terminate();
          resolve();
        } else if (data.type === "failed") {
          worker.terminate();
          reject(failure(data.error));
        }
      });
      worker.addEventListener("error", (event) => {
        worker.terminate();
        reject(failure({ message: event.message || "The upload could not start." }));
      });
      const language = document.documentElement.lang;
      worker.postMessage({
        type: "start",
        key: contentKey,
        csrf,
        headers: { ...(language ? { "Accept-Language": language } : {}), ...headers },
        blobs,
      });
    });
    if (cancelled) throw new UploadCancelled();
    finalising = true;
    onFinalising?.();
    return finalise(created);
  };

  const finished = run().catch(async (error) => {
    if (!cancelled) throw error;
    if (created) await discard(created);
    throw new UploadCancelled();
  });
  return {
    finished,
    /** Stop, unless the draft is being sent already (then false). */
    cancel() {
      if (finalising) return false;
      if (cancelled) return true;
      cancelled = true;
      stopWorker();
      return true;
    },
  };
}
