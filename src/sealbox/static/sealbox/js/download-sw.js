// A service worker that turns a download of ciphertext into a plaintext file streamed to
// disk, decrypting record by record: a 2.5 GB attachment never sits in memory.
//
// The page hands over {id, url, key, name, size} through a MessageChannel, then opens
// `download/<id>` in a hidden frame; this worker answers that request with the
// decrypting stream. The key stays in the browser (structured clone between the page
// and its worker).
import { decryptStream } from "./ece.js";

const jobs = new Map();
const PROGRESS_EVERY = 1024 * 1024;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("message", (event) => {
  const job = event.data;
  const port = event.ports[0];
  if (!job || !port || typeof job.id !== "string") return;
  jobs.set(job.id, { ...job, port });
  // Forget a job that is never fetched.
  setTimeout(() => jobs.delete(job.id), 60000);
  port.postMessage({ ready: true });
});

self.addEventListener("fetch", (event) => {
  const match = new URL(event.request.url).pathname.match(/\/download\/([A-Za-z0-9_-]+)$/);
  if (!match || !jobs.has(match[1])) return;
  const job = jobs.get(match[1]);
  jobs.delete(match[1]);
  event.respondWith(respond(job));
});

async function respond(job) {
  const response = await fetch(job.url, { credentials: "same-origin" });
  if (!response.ok) {
    let message = "";
    try { message = (await response.json()).message; } catch { /* not JSON */ }
    job.port.postMessage({ error: message || `HTTP ${response.status}` });
    return new Response(null, { status: 204 });
  }
  const reader = response.body.pipeThrough(decryptStream(job.key)).getReader();
  let received = 0;
  let reported = 0;
  const body = new ReadableStream({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          job.port.postMessage({ done: true, received });
          controller.close();
          return;
        }
        received += value.length;
        if (received - reported >= PROGRESS_EVERY) {
          reported = received;
          job.port.postMessage({ progress: received });
        }
        controller.enqueue(value);
      } catch (error) {
        // A tampered or truncated file: the download fails instead of completing.
        job.port.postMessage({ error: error.message || String(error) });
        controller.error(error);
      }
    },
    cancel(reason) {
      reader.cancel(reason);
    },
  });
  const name = encodeURIComponent(job.name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  return new Response(body, {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": `attachment; filename*=UTF-8''${name}`,
      "Content-Length": String(job.size),
      "Cache-Control": "no-store",
    },
  });
}
