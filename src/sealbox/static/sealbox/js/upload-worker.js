// The upload worker (a module worker that upload.js starts): runs the upload engine away
// from the page's thread, so the page stays responsive whatever the file's size.
//
// Messages in:  {type: "start", key, csrf, headers, blobs} (see uploadBlobs);
//               {type: "cancel"}.
// Messages out: {type: "progress", index, sent}, {type: "waiting", delay} (a retry is due
//               in `delay` ms), {type: "done"}, {type: "failed", error: {message, status,
//               code}}, {type: "cancelled"}.
import { uploadBlobs } from "./upload-engine.js";

const aborter = new AbortController();

self.addEventListener("message", (event) => {
  const message = event.data;
  if (message.type === "cancel") {
    aborter.abort(new DOMException("Cancelled", "AbortError"));
    return;
  }
  if (message.type !== "start") return;
  uploadBlobs({
    ...message,
    signal: aborter.signal,
    onProgress: (index, sent) => postMessage({ type: "progress", index, sent }),
    onWaiting: (delay) => postMessage({ type: "waiting", delay }),
  }).then(
    () => postMessage({ type: "done" }),
    (error) => {
      if (aborter.signal.aborted) postMessage({ type: "cancelled" });
      else postMessage({ type: "failed", error: { message: error?.message || String(error), status: error?.status, code: error?.code || "" } });
    },
  );
});
