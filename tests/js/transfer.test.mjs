// The upload engine the worker runs (the send page, envelopes and replies), against
// in-memory servers that behave like the API (offsets, lost answers, server errors) and
// like the object store (presigned parts).
import { test } from "node:test";
import assert from "node:assert/strict";

import { manifestPlaintext, manifestTooLong } from "../../src/sealbox/static/sealbox/js/transfer.js";
import { decrypt, encrypt, encryptedSize, randomBytes } from "../../src/sealbox/static/sealbox/js/ece.js";
import { settings, uploadBlobs } from "../../src/sealbox/static/sealbox/js/upload-engine.js";
import { CHUNK_BYTES } from "../../src/sealbox/static/sealbox/js/upload-plan.js";

settings.backoff = { base: 1, max: 2 };

function fakeServer({ loseAnswerAt = -1, failAt = [], size = Infinity } = {}) {
  const server = { stored: 0, chunks: [], puts: 0, gets: 0, bytes: [], maxInFlight: 0, inFlight: 0 };
  globalThis.fetch = async (url, init = {}) => {
    const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
    if ((init.method || "GET") === "GET") {
      server.gets += 1;
      return json(200, { blobs: [{ id: "b1", stored: server.stored }] });
    }
    server.puts += 1;
    const offset = Number(new URL(url, "http://x").searchParams.get("offset"));
    assert.equal(init.headers["X-Upload-Token"], "tok");
    if (failAt.includes(server.puts)) {
      if (failAt.network) throw new TypeError("network error");
      return json(502, { error: "error", message: "bad gateway" });
    }
    if (offset !== server.stored) return json(409, { error: "offset", message: "out of order" });
    const bytes = new Uint8Array(await init.body.arrayBuffer());
    assert.ok(offset + bytes.length <= size);
    server.chunks.push(bytes.length);
    server.bytes.push(bytes.slice());
    server.stored += bytes.length;
    if (server.puts === loseAnswerAt) throw new TypeError("network error");
    return json(200, { stored: server.stored });
  };
  server.body = () => {
    const out = new Uint8Array(server.stored);
    let at = 0;
    for (const b of server.bytes) { out.set(b, at); at += b.length; }
    return out;
  };
  return server;
}

const blobOf = (source, size, extra = {}) => ({
  source, size, blobUrl: "/api/v1/uploads/m/blobs/b1", stateUrl: "/api/v1/uploads/m", blobId: "b1", ...extra,
});
const run = (blob, progress = [], more = {}) => uploadBlobs({
  key: more.key, blobs: [blob], csrf: "c", headers: { "X-Upload-Token": "tok" },
  onProgress: (index, sent) => progress.push(sent), ...more,
});

function pattern(total) {
  const bytes = new Uint8Array(total);
  for (let i = 0; i < total; i++) bytes[i] = (i * 7 + (i >> 16)) % 251;
  return bytes;
}

test("uploads in CHUNK_BYTES pieces in order", async () => {
  const server = fakeServer();
  const progress = [];
  const total = 2 * CHUNK_BYTES + 12345;
  const bytes = pattern(total);
  await run(blobOf({ bytes }, total), progress);
  assert.deepEqual(server.chunks, [CHUNK_BYTES, CHUNK_BYTES, 12345]);
  assert.deepEqual(progress, [CHUNK_BYTES, 2 * CHUNK_BYTES, total]);
  assert.deepEqual(server.body(), bytes);
});

test("a file is encrypted by ranges into exactly the payload encrypt() makes", async () => {
  const server = fakeServer();
  const key = randomBytes(16);
  const plain = pattern(CHUNK_BYTES + 3 * 65519 + 77); // chunk edges fall inside records
  const total = encryptedSize(plain.length);
  await run(blobOf({ file: new Blob([plain]) }, total), [], { key });
  assert.equal(server.stored, total);
  assert.deepEqual(server.chunks, [CHUNK_BYTES, total - CHUNK_BYTES]);
  assert.deepEqual(await decrypt(server.body(), key), plain);
});

test("an empty file is one final record", async () => {
  const server = fakeServer();
  const key = randomBytes(16);
  await run(blobOf({ file: new Blob([]) }, encryptedSize(0)), [], { key });
  assert.deepEqual(await decrypt(server.body(), key), new Uint8Array(0));
});

test("a chunk stored while its answer was lost is not sent twice", async () => {
  const server = fakeServer({ loseAnswerAt: 1 });
  const total = CHUNK_BYTES + 10;
  await run(blobOf({ bytes: pattern(total) }, total));
  assert.equal(server.stored, total);
  assert.deepEqual(server.chunks, [CHUNK_BYTES, 10]);
});

test("server errors and a dropped network are retried, with a wait announced each time", async () => {
  for (const network of [false, true]) {
    const failAt = Object.assign([2, 3, 4], { network });
    const server = fakeServer({ failAt });
    const waits = [];
    const total = 2 * CHUNK_BYTES;
    const bytes = pattern(total);
    await run(blobOf({ bytes }, total), [], { onWaiting: (ms) => waits.push(ms) });
    assert.deepEqual(server.body(), bytes);
    assert.equal(server.puts, 5);
    assert.equal(waits.length, 3);
  }
});

test("after a failure the upload resumes from what the server holds", async () => {
  // The server holds part of the blob already (another tab, an earlier visit): the next
  // chunk starts there and falls back on the grid.
  const server = fakeServer();
  const total = 2 * CHUNK_BYTES;
  const bytes = pattern(total);
  server.stored = 1000;
  server.bytes.push(bytes.slice(0, 1000));
  await run(blobOf({ bytes }, total, { stored: 0 }));
  assert.deepEqual(server.chunks, [CHUNK_BYTES - 1000, CHUNK_BYTES]);
  assert.deepEqual(server.body(), bytes);
});

test("a refusal that retrying cannot fix fails at once", async () => {
  fakeServer();
  globalThis.fetch = async () => new Response(JSON.stringify({ error: "too_large", message: "too big" }), { status: 413 });
  await assert.rejects(run(blobOf({ bytes: pattern(10) }, 10)), (error) => error.status === 413 && error.message === "too big");
});

test("the upload gives up after the attempts run out", async () => {
  globalThis.fetch = async () => { throw new TypeError("network error"); };
  await assert.rejects(run(blobOf({ bytes: pattern(10) }, 10)), TypeError);
});

test("cancel aborts the request in flight and stops", async () => {
  const aborter = new AbortController();
  let started = 0;
  globalThis.fetch = (url, init) => new Promise((resolve, reject) => {
    started += 1;
    init.signal.addEventListener("abort", () => reject(init.signal.reason));
    setTimeout(() => aborter.abort(new DOMException("Cancelled", "AbortError")), 5);
  });
  await assert.rejects(run(blobOf({ bytes: pattern(10) }, 10), [], { signal: aborter.signal }),
    (error) => error.name === "AbortError");
  assert.equal(started, 1);
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
    store.parts.set(number, init.body.size);
    if (number === loseAnswerOf) { loseAnswerOf = 0; throw new TypeError("network error"); }
    return new Response("", { status: 200 });
  };
  return store;
}

const direct = (store, total, progress = [], more = {}) => {
  store.total = total;
  return run(blobOf({ bytes: pattern(total) }, total, { plan: store.plan(total) }), progress, more);
};

test("direct mode: each part goes to its presigned URL, without the session's cookies", async () => {
  const store = fakeStore();
  const progress = [];
  const total = 2 * PART + 7;
  await direct(store, total, progress);
  assert.deepEqual(store.puts, [1, 2, 3]);
  assert.deepEqual([...store.parts.values()], [PART, PART, 7]);
  assert.deepEqual(store.credentials, ["omit", "omit", "omit"]);
  assert.deepEqual(progress, [PART, 2 * PART, total]);
  assert.equal(store.refreshes, 0);
});

test("direct mode: a part stored while its answer was lost is not sent twice", async () => {
  const store = fakeStore({ loseAnswerOf: 2 });
  const total = 3 * PART;
  await direct(store, total);
  assert.deepEqual(store.puts, [1, 2, 3]);
  assert.equal(store.refreshes, 1); // the store's state, through the API, said part 2 was there
});

test("direct mode: several parts are in flight at once", async () => {
  const store = fakeStore();
  const storeFetch = globalThis.fetch;
  let inFlight = 0;
  let most = 0;
  globalThis.fetch = async (url, init) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    try { return await storeFetch(url, init); } finally { inFlight -= 1; }
  };
  await direct(store, 8 * PART);
  assert.equal(store.parts.size, 8);
  assert.ok(most >= 3, `at most ${most} parts in flight`);
});

test("direct mode: a resumed upload sends only the parts the store lacks (ListParts)", async () => {
  const store = fakeStore();
  store.parts.set(1, PART);
  store.parts.set(3, PART);
  const progress = [];
  await direct(store, 4 * PART, progress);
  assert.deepEqual(store.puts.toSorted(), [2, 4]);
  assert.equal(progress[0], 2 * PART);
  assert.equal(progress.at(-1), 4 * PART);
});

test("direct mode: a throttled or expired part is retried with fresh URLs", async () => {
  for (const status of [503, 403]) {
    const store = fakeStore({ refuseOnceWith: status, refuseOf: 1 });
    await direct(store, PART + 1);
    assert.deepEqual(store.puts.toSorted(), [1, 1, 2]);
    assert.equal(store.refreshes, 1);
  }
});

test("direct mode: a refusal that retrying cannot fix says so in one line", async () => {
  const store = fakeStore({ refuseOnceWith: 400, refuseOf: 1 });
  await assert.rejects(direct(store, 10),
    (error) => error.name === "StoreError" && error.message === "The file store answered HTTP 400 (SlowDown).");
});

test("direct mode: URLs older than the refresh time are replaced before use", async () => {
  settings.partUrlsRefreshMs = -1;
  try {
    const store = fakeStore();
    await direct(store, 2 * PART);
    assert.deepEqual(store.puts, [1, 2]);
    assert.equal(store.refreshes, 2);
  } finally {
    settings.partUrlsRefreshMs = 10 * 60 * 1000;
  }
});
