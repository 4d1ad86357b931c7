// Benchmark: the browser crypto module (static/sealbox/js/ece.js) in Node.js or a browser.
//
//   node bench/crypto_js.mjs [--size 1G] [--rs 65536] [--repeat 5]
//   python bench/crypto_browser.py        (the same code in headless Chromium)
//
// Measures, in the same run:
//   sealbox encrypt  a ReadableStream of --size bytes (one 1 MiB block repeated, so the
//                    source costs nothing) piped through encryptStream() into a counting
//                    sink;
//   raw encrypt      WebCrypto AES-128-GCM sealing the same records (rs - 16 bytes of
//                    plaintext each), one awaited subtle.encrypt() per record, no framing;
//   sealbox decrypt  the payload (encrypted beforehand, held in memory as the records
//                    encryptStream produced) streamed through decryptStream();
//   raw decrypt      subtle.decrypt() of exactly those records under the same key and
//                    nonces, no framing.
// Prints MB/s and the ratio sealbox / raw (aim: >= 0.7). Best of --repeat runs, with
// sealbox and raw runs interleaved so that both see the same machine conditions.

import * as ece from "../src/sealbox/static/sealbox/js/ece.js";

const MiB = 1 << 20;

/** Deterministic pseudo-random 1 MiB block. */
function makeBlock() {
  const block = new Uint8Array(MiB);
  let x = 0x9e3779b9;
  for (let i = 0; i < block.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = x & 0xff;
  }
  return block;
}

function source(size, block) {
  let sent = 0;
  return new ReadableStream(
    {
      pull(controller) {
        if (sent >= size) {
          controller.close();
          return;
        }
        const n = Math.min(block.length, size - sent);
        controller.enqueue(n === block.length ? block : block.subarray(0, n));
        sent += n;
      },
    },
    { highWaterMark: 0 },
  );
}

function replay(chunks) {
  let i = 0;
  return new ReadableStream(
    {
      pull(controller) {
        if (i < chunks.length) controller.enqueue(chunks[i++]);
        else controller.close();
      },
    },
    { highWaterMark: 0 },
  );
}

function counter() {
  const sink = { bytes: 0 };
  sink.stream = new WritableStream({
    write(chunk) {
      sink.bytes += chunk.length;
    },
  });
  return sink;
}

function nonceFor(base, i) {
  const iv = base.slice();
  const view = new DataView(iv.buffer);
  view.setUint32(8, view.getUint32(8) ^ i % 0x100000000);
  view.setUint32(4, view.getUint32(4) ^ Math.floor(i / 0x100000000));
  return iv;
}

/** The record key and nonce of a payload, derived as RFC 8188 says (for the baseline). */
async function recordKey(ikm, salt) {
  const s = crypto.subtle;
  const base = await s.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const info = (text) => new TextEncoder().encode(text);
  const cek = await s.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: info("Content-Encoding: aes128gcm\0") },
    base,
    128,
  );
  const nonce = await s.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: info("Content-Encoding: nonce\0") },
    base,
    96,
  );
  const key = await s.importKey("raw", cek, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { key, nonce: new Uint8Array(nonce) };
}

export async function runBench({ size = 1 << 30, rs = 65536, repeat = 5, log = () => {} } = {}) {
  const block = makeBlock();
  const ikm = block.slice(0, 32);
  const now = () => performance.now() / 1000;
  const recordPlain = rs - 16; // data + delimiter
  const records = Math.max(1, Math.ceil(size / (rs - 17)));

  log("preparing the ciphertext for the decryption runs...");
  const chunks = [];
  await source(size, block)
    .pipeThrough(ece.encryptStream(ikm, { rs }))
    .pipeTo(new WritableStream({ write: (chunk) => void chunks.push(chunk) }));
  const header = ece.parseHeader(chunks[0]);
  const { key, nonce } = await recordKey(ikm, header.salt);

  async function sealboxEncrypt() {
    const sink = counter();
    const start = now();
    await source(size, block).pipeThrough(ece.encryptStream(ikm, { rs })).pipeTo(sink.stream);
    const seconds = now() - start;
    if (sink.bytes !== ece.encryptedSize(size, rs)) throw new Error("wrong ciphertext size");
    return seconds;
  }

  async function rawEncrypt() {
    // The same records, cut from the same source block, one subtle.encrypt each.
    let offset = 0;
    const start = now();
    for (let i = 0; i < records; i++) {
      if (offset + recordPlain > block.length) offset = 0;
      const plain = block.subarray(offset, offset + recordPlain);
      offset += recordPlain;
      await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonceFor(nonce, i) }, key, plain);
    }
    return now() - start;
  }

  async function sealboxDecrypt() {
    const sink = counter();
    const start = now();
    await replay(chunks).pipeThrough(ece.decryptStream(ikm)).pipeTo(sink.stream);
    const seconds = now() - start;
    if (sink.bytes !== size) throw new Error("wrong plaintext size");
    return seconds;
  }

  async function rawDecrypt() {
    const start = now();
    for (let i = 1; i < chunks.length; i++) {
      const iv = nonceFor(nonce, i - 1);
      await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, chunks[i]);
    }
    return now() - start;
  }

  const best = { encrypt: [Infinity, Infinity], decrypt: [Infinity, Infinity] };
  for (let r = 0; r < repeat; r++) {
    best.encrypt[1] = Math.min(best.encrypt[1], await rawEncrypt());
    best.encrypt[0] = Math.min(best.encrypt[0], await sealboxEncrypt());
    best.decrypt[1] = Math.min(best.decrypt[1], await rawDecrypt());
    best.decrypt[0] = Math.min(best.decrypt[0], await sealboxDecrypt());
    log(`run ${r + 1}/${repeat} done`);
  }
  const mbps = (seconds) => size / seconds / 1e6;
  const result = { size, rs, repeat, rows: {} };
  for (const [name, [ours, raw]] of Object.entries(best)) {
    result.rows[name] = { sealbox: mbps(ours), raw: mbps(raw), ratio: raw / ours };
  }
  return result;
}

export function formatResult(result, title) {
  const lines = [
    `${title} - stream of ${(result.size / MiB).toFixed(0)} MiB, rs ${result.rs}, best of ${result.repeat}`,
    `${"".padEnd(8)} ${"sealbox MB/s".padStart(13)} ${"raw AES-GCM MB/s".padStart(17)} ${"ratio".padStart(6)}`,
  ];
  for (const [name, row] of Object.entries(result.rows)) {
    lines.push(
      `${name.padEnd(8)} ${row.sealbox.toFixed(0).padStart(13)} ${row.raw.toFixed(0).padStart(17)} ` +
        `${row.ratio.toFixed(2).padStart(6)}`,
    );
  }
  return lines.join("\n");
}

function parseSize(text) {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(String(text).trim());
  if (!match) throw new Error(`bad size: ${text} (examples: 1G, 64M, 1000)`);
  const factor = { "": 1, k: 1024, m: MiB, g: 1 << 30 }[match[2].toLowerCase()];
  return Math.round(Number(match[1]) * factor);
}

const isNode = typeof process !== "undefined" && process.versions && process.versions.node;
if (isNode) {
  const { pathToFileURL } = await import("node:url");
  if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
    const args = { size: 1 << 30, rs: 65536, repeat: 5 };
    const argv = process.argv.slice(2);
    for (let i = 0; i < argv.length; i += 2) {
      const name = argv[i].replace(/^--/, "");
      if (!(name in args)) throw new Error(`unknown option ${argv[i]} (--size, --rs, --repeat)`);
      args[name] = name === "size" ? parseSize(argv[i + 1]) : Number(argv[i + 1]);
    }
    const result = await runBench({ ...args, log: (line) => process.stderr.write(`${line}\n`) });
    console.log(formatResult(result, `static/sealbox/js/ece.js in Node.js ${process.version}`));
  }
}
