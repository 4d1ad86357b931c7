// The chunked, resumable upload shared by the send page, envelopes and replies, against
// an in-memory server that behaves like the API (offsets, lost answers, server errors).
import { test } from "node:test";
import assert from "node:assert/strict";

import { CHUNK_BYTES, setRetryDelay, uploadStream } from "../../src/sealbox/static/sealbox/js/transfer.js";

setRetryDelay(1);

function fakeServer({ loseAnswerAt = -1, failOnceAt = -1 } = {}) {
  const server = { stored: 0, chunks: [], puts: 0 };
  globalThis.fetch = async (url, init = {}) => {
    const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
    if ((init.method || "GET") === "GET") return json(200, { blobs: [{ id: "b1", stored: server.stored }] });
    server.puts += 1;
    const offset = Number(new URL(url, "http://x").searchParams.get("offset"));
    assert.equal(init.headers["X-Upload-Token"], "tok");
    if (server.puts === failOnceAt) return json(502, { error: "error", message: "bad gateway" });
    if (offset !== server.stored) return json(409, { error: "offset", message: "out of order" });
    const bytes = new Uint8Array(init.body);
    server.chunks.push(bytes.length);
    server.stored += bytes.length;
    if (server.puts === loseAnswerAt) throw new TypeError("network error");
    return json(200, { stored: server.stored });
  };
  return server;
}

const options = (progress = []) => ({
  blobUrl: "/api/v1/uploads/m/blobs/b1", stateUrl: "/api/v1/uploads/m", blobId: "b1",
  headers: { "X-Upload-Token": "tok" }, csrf: "c", onProgress: (n) => progress.push(n),
});

function streamOf(total, piece) {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(piece, total - sent);
      controller.enqueue(new Uint8Array(size).fill(sent % 251));
      sent += size;
    },
  });
}

test("uploads in CHUNK_BYTES pieces in order, whatever the input pieces", async () => {
  const server = fakeServer();
  const progress = [];
  const total = 2 * CHUNK_BYTES + 12345;
  const sent = await uploadStream(streamOf(total, 1000003), options(progress));
  assert.equal(sent, total);
  assert.deepEqual(server.chunks, [CHUNK_BYTES, CHUNK_BYTES, 12345]);
  assert.deepEqual(progress, [CHUNK_BYTES, 2 * CHUNK_BYTES, total]);
});

test("a chunk stored while its answer was lost is not sent twice", async () => {
  const server = fakeServer({ loseAnswerAt: 1 });
  const total = CHUNK_BYTES + 10;
  await uploadStream(streamOf(total, 65536), options());
  assert.equal(server.stored, total);
  assert.deepEqual(server.chunks, [CHUNK_BYTES, 10]);
});

test("a server error is retried", async () => {
  const server = fakeServer({ failOnceAt: 1 });
  await uploadStream(streamOf(100, 100), options());
  assert.equal(server.stored, 100);
  assert.equal(server.puts, 2);
});

test("an empty stream sends nothing", async () => {
  const server = fakeServer();
  assert.equal(await uploadStream(streamOf(0, 1), options()), 0);
  assert.equal(server.puts, 0);
});
