// The chunked, resumable upload shared by the send page, envelopes and replies, against
// an in-memory server that behaves like the API (offsets, lost answers, server errors).
import { test } from "node:test";
import assert from "node:assert/strict";

import { CHUNK_BYTES, manifestPlaintext, manifestTooLong, setRetryDelay, uploadStream } from "../../src/sealbox/static/sealbox/js/transfer.js";
import { encrypt, encryptedSize } from "../../src/sealbox/static/sealbox/js/ece.js";

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

// --- The manifest's cap (lib.limits.MAX_MANIFEST_BYTES, given to the pages) ----------

const LIMIT = 256000;

test("the manifest holds the body and each file's id, name, type and size", () => {
  const files = [{ ref: "r1", file: { name: "café.pdf", type: "", size: 12 } }];
  const manifest = JSON.parse(new TextDecoder().decode(manifestPlaintext("Bonjour", files)));
  assert.deepEqual(manifest, {
    v: 1, body: "Bonjour", files: [{ id: "r1", name: "café.pdf", type: "application/octet-stream", size: 12 }],
  });
});

test("a manifest is too long exactly when its ciphertext passes the limit", async () => {
  let fits = LIMIT;
  while (encryptedSize(fits) > LIMIT) fits--;
  assert.equal(manifestTooLong(new Uint8Array(fits), LIMIT), false);
  assert.equal(manifestTooLong(new Uint8Array(fits + 1), LIMIT), true);
  // The size the page predicts is the size it will upload.
  const body = "é".repeat(40000);
  const plaintext = manifestPlaintext(body, []);
  const ciphertext = await encrypt(plaintext, crypto.getRandomValues(new Uint8Array(32)));
  assert.equal(ciphertext.length, encryptedSize(plaintext.length));
  assert.equal(manifestTooLong(manifestPlaintext("x".repeat(LIMIT), []), LIMIT), true);
});

test("no limit on the page means no check (the server still checks)", () => {
  assert.equal(manifestTooLong(new Uint8Array(10 ** 6), Number("")), false);
  assert.equal(manifestTooLong(new Uint8Array(10 ** 6), Number(undefined)), false);
});

// --- Direct mode: parts PUT to the object store's presigned URLs ---------------------------

const PART = 1024;

function fakeStore({ loseAnswerOf = 0, refuseOnceWith = 0, refuseOf = 0 } = {}) {
  const store = { parts: new Map(), puts: [], refreshes: 0, credentials: [] };
  const urls = (numbers) => numbers.map(([number, size]) => ({
    number, size, url: `https://store.example/b/k?partNumber=${number}&X-Amz-Signature=s`,
    uploaded: store.parts.get(number) === size,
  })).map((p) => (p.uploaded ? { ...p, url: "" } : p));
  const planned = (total) => {
    const list = [];
    for (let n = 1; (n - 1) * PART < total; n++) list.push([n, Math.min(PART, total - (n - 1) * PART)]);
    return list;
  };
  store.plan = (total) => ({ mode: "direct", part_size: PART, expires_in: 1800, parts: urls(planned(total)) });
  globalThis.fetch = async (url, init = {}) => {
    if (url.endsWith("/parts")) {
      store.refreshes += 1;
      assert.equal(init.headers["X-Upload-Token"], "tok");
      return new Response(JSON.stringify(store.plan(store.total)), { status: 200, headers: { "Content-Type": "application/json" } });
    }
    assert.ok(url.startsWith("https://store.example/"), url);
    assert.equal(init.method, "PUT");
    store.credentials.push(init.credentials);
    const number = Number(new URL(url).searchParams.get("partNumber"));
    store.puts.push(number);
    if (number === refuseOf && refuseOnceWith) {
      const status = refuseOnceWith;
      refuseOnceWith = 0;
      return new Response("<Error><Code>SlowDown</Code></Error>", { status });
    }
    store.parts.set(number, new Uint8Array(init.body).length);
    if (number === loseAnswerOf) { loseAnswerOf = 0; throw new TypeError("network error"); }
    return new Response("", { status: 200 });
  };
  return store;
}

const directOptions = (store, total, progress = []) => {
  store.total = total;
  return { ...options(progress), plan: store.plan(total) };
};

test("direct mode: each part goes to its presigned URL, without the session's cookies", async () => {
  const store = fakeStore();
  const progress = [];
  const total = 2 * PART + 7;
  assert.equal(await uploadStream(streamOf(total, 300), directOptions(store, total, progress)), total);
  assert.deepEqual(store.puts, [1, 2, 3]);
  assert.deepEqual([...store.parts.values()], [PART, PART, 7]);
  assert.deepEqual(store.credentials, ["omit", "omit", "omit"]);
  assert.deepEqual(progress, [PART, 2 * PART, total]);
  assert.equal(store.refreshes, 0);
});

test("direct mode: a part stored while its answer was lost is not sent twice", async () => {
  const store = fakeStore({ loseAnswerOf: 2 });
  const total = 3 * PART;
  await uploadStream(streamOf(total, 500), directOptions(store, total));
  assert.deepEqual(store.puts, [1, 2, 3]);
  assert.equal(store.refreshes, 1); // the store's state, through the API, said part 2 was there
});

test("direct mode: a throttled or expired part is retried with fresh URLs", async () => {
  for (const status of [503, 403]) {
    const store = fakeStore({ refuseOnceWith: status, refuseOf: 1 });
    await uploadStream(streamOf(PART + 1, PART + 1), directOptions(store, PART + 1));
    assert.deepEqual(store.puts, [1, 1, 2]);
    assert.equal(store.refreshes, 1);
  }
});

test("direct mode: a refusal that retrying cannot fix says so in one line", async () => {
  const store = fakeStore({ refuseOnceWith: 400, refuseOf: 1 });
  await assert.rejects(uploadStream(streamOf(10, 10), directOptions(store, 10)),
    (error) => error.name === "StoreError" && error.message === "The file store answered HTTP 400 (SlowDown).");
});

test("direct mode: URLs older than the refresh time are replaced before use", async () => {
  const { setPartUrlsRefresh } = await import("../../src/sealbox/static/sealbox/js/transfer.js");
  setPartUrlsRefresh(-1);
  try {
    const store = fakeStore();
    await uploadStream(streamOf(2 * PART, PART), directOptions(store, 2 * PART));
    assert.deepEqual(store.puts, [1, 2]);
    assert.equal(store.refreshes, 2);
  } finally {
    setPartUrlsRefresh(10 * 60 * 1000);
  }
});
