// ece.js in Node: RFC 8188 vectors, round trips, streams, tampering.
// Run: node --test tests/js/

import assert from "node:assert/strict";
import { createCipheriv, hkdfSync } from "node:crypto";
import { describe, test } from "node:test";

import { fromBase64url as d, toBase64url as e } from "../../src/sealbox/static/sealbox/js/b64.js";
import * as ece from "../../src/sealbox/static/sealbox/js/ece.js";

const WALRUS = new TextEncoder().encode("I am the walrus");
const VECTORS = [
  {
    name: "rfc8188-3.1",
    ikm: d("yqdlZ-tYemfogSmv7Ws5PQ"),
    body: d("I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg"),
    rs: 4096,
    keyid: "",
    pad: 0,
  },
  {
    name: "rfc8188-3.2",
    ikm: d("BO3ZVPxUlnLORbVGMpbT1Q"),
    body: d(
      "uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLWIqS_uA",
    ),
    rs: 25,
    keyid: "a1",
    pad: 1,
  },
];

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
function bytes(length, seed = 1) {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function split(data, size) {
  const parts = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.slice(i, i + size));
  return parts;
}

async function collect(readable) {
  const parts = [];
  for await (const part of readable) parts.push(part);
  return ece.concatBytes(parts);
}

function streamOf(parts) {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

const encryptChunked = (data, ikm, options, size) =>
  collect(streamOf(split(data, size)).pipeThrough(ece.encryptStream(ikm, options)));
const decryptChunked = (body, ikm, size) =>
  collect(streamOf(split(body, size)).pipeThrough(ece.decryptStream(ikm)));

/** Independent encoder (node:crypto) for arbitrary layouts: [data, padding, delimiter]. */
function referenceEncrypt(records, ikm, { salt = bytes(16, 99), rs = 4096 } = {}) {
  const cek = Buffer.from(hkdfSync("sha256", ikm, salt, "Content-Encoding: aes128gcm\0", 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, "Content-Encoding: nonce\0", 12));
  const out = [salt, new Uint8Array([rs >>> 24, (rs >>> 16) & 255, (rs >>> 8) & 255, rs & 255, 0])];
  records.forEach(([data, padding, delimiter], index) => {
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ index) >>> 0, 8);
    const cipher = createCipheriv("aes-128-gcm", cek, iv);
    const plain = Buffer.concat([data, Buffer.from([delimiter]), Buffer.alloc(padding)]);
    out.push(cipher.update(plain), cipher.final(), cipher.getAuthTag());
  });
  return ece.concatBytes(out.map((p) => new Uint8Array(p)));
}

async function assertRejects(promise, pattern) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.name, "CryptoError");
    assert.ok(error instanceof ece.CryptoError);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe("RFC 8188 examples", () => {
  for (const v of VECTORS) {
    test(`${v.name} decrypts`, async () => {
      assert.deepEqual(await ece.decrypt(v.body, v.ikm), WALRUS);
      assert.deepEqual(await decryptChunked(v.body, v.ikm, 1), WALRUS);
    });
    test(`${v.name} re-encrypts to the same bytes`, async () => {
      const options = { rs: v.rs, salt: v.body.slice(0, 16), keyid: v.keyid, pad: v.pad };
      assert.equal(e(await ece.encrypt(WALRUS, v.ikm, options)), e(v.body));
      assert.equal(e(await encryptChunked(WALRUS, v.ikm, options, 1)), e(v.body));
    });
  }
  test("header of 3.2", () => {
    const header = ece.parseHeader(VECTORS[1].body);
    assert.equal(header.rs, 25);
    assert.equal(new TextDecoder().decode(header.keyid), "a1");
    assert.equal(header.length, 23);
  });
});

describe("round trips", () => {
  const ikm = bytes(32, 7);
  for (const rs of [18, 19, 25, 100, 4096, 65536]) {
    test(`record boundaries, rs ${rs}`, async () => {
      const c = rs - 17;
      for (const size of new Set([0, 1, c - 1, c, c + 1, 2 * c - 1, 2 * c, 2 * c + 1, 3 * c])) {
        const plain = bytes(size, size + 1);
        const body = await ece.encrypt(plain, ikm, { rs });
        assert.equal(body.length, ece.encryptedSize(size, rs));
        assert.deepEqual(await ece.decrypt(body, ikm), plain);
      }
    });
  }

  test("streams give the same bytes as one-shot, whatever the chunking", async () => {
    const salt = bytes(16, 3);
    for (const [size, rs] of [
      [0, 18],
      [1000, 18],
      [5000, 100],
      [70000, 4096],
      [200000, 65536],
    ]) {
      const plain = bytes(size, size);
      const whole = await ece.encrypt(plain, ikm, { rs, salt });
      for (const chunk of [1, 7, rs - 17, rs, rs + 1, 65536, 1 << 20]) {
        if (size / chunk > 20000) continue;
        assert.equal(e(await encryptChunked(plain, ikm, { rs, salt }, chunk)), e(whole));
        assert.deepEqual(await decryptChunked(whole, ikm, chunk), plain);
      }
    }
  });

  test("accepts ArrayBuffers, typed arrays and Buffers", async () => {
    const plain = bytes(3000, 5);
    const body = await ece.encrypt(plain.buffer, Buffer.from(ikm), { rs: 100 });
    assert.deepEqual(await ece.decrypt(new DataView(body.buffer), ikm), plain);
    const view = new Uint8Array(new ArrayBuffer(body.length + 10), 5, body.length);
    view.set(body);
    assert.deepEqual(await ece.decrypt(view, ikm.buffer), plain);
    assert.deepEqual(await decryptChunked(Buffer.from(body), ikm, 333), plain);
  });

  test("fresh salt per payload", async () => {
    const a = await ece.encrypt(WALRUS, ikm);
    const b = await ece.encrypt(WALRUS, ikm);
    assert.notEqual(e(a.slice(0, 16)), e(b.slice(0, 16)));
    assert.equal(ece.parseHeader(a).rs, 65536);
    assert.equal(a[20], 0);
  });

  test("encryptedSize", () => {
    assert.equal(ece.encryptedSize(0), 38);
    assert.equal(ece.encryptedSize(65519), 21 + 65536);
    assert.equal(ece.encryptedSize(65520), 21 + 65536 + 18);
    assert.equal(ece.encryptedSize(2.5e9), 21 + 2.5e9 + 17 * 38157);
    assert.throws(() => ece.encryptedSize(-1), ece.CryptoError);
  });

  test("decrypts any valid layout: padding anywhere, delimiter-only final record", async () => {
    const rs = 40;
    const a = bytes(23, 1);
    const body = referenceEncrypt(
      [
        [a, 0, 1],
        [a.subarray(0, 3), 20, 1],
        [new Uint8Array(0), 23, 1],
        [a, 0, 1],
        [new Uint8Array(0), 0, 2],
      ],
      ikm,
      { rs },
    );
    const expected = ece.concatBytes([a, a.subarray(0, 3), a]);
    assert.deepEqual(await ece.decrypt(body, ikm), expected);
    assert.deepEqual(await decryptChunked(body, ikm, 7), expected);
  });

  test("bad arguments throw at once", () => {
    const cases = [
      [{ rs: 17 }, /record size out of range/],
      [{ rs: 2 ** 24 + 1 }, /record size out of range/],
      [{ salt: new Uint8Array(5) }, /salt/],
      [{ keyid: new Uint8Array(256) }, /key id/],
      [{ rs: 100, pad: 84 }, /padding/],
    ];
    for (const [options, pattern] of cases) {
      assert.throws(() => ece.encryptStream(ikm, options), pattern);
    }
    assert.throws(() => ece.encryptStream(new Uint8Array(15)), /key too short/);
    assert.throws(() => ece.decryptStream(new Uint8Array(0)), /key too short/);
    assert.throws(() => ece.encryptStream("not bytes"), TypeError);
  });
});

describe("streaming", () => {
  test("decryption emits plaintext while the payload still arrives", async () => {
    const ikm = bytes(32, 2);
    const body = await ece.encrypt(bytes(100000, 4), ikm, { rs: 1000 });
    let fed = 0;
    let index = 0;
    const source = new ReadableStream(
      {
        pull(controller) {
          if (index >= body.length) return controller.close();
          controller.enqueue(body.slice(index, index + 500));
          index += 500;
          fed++;
        },
      },
      { highWaterMark: 0 },
    );
    const reader = source.pipeThrough(ece.decryptStream(ikm)).getReader();
    const first = await reader.read();
    assert.equal(first.value.length, 1000 - 17);
    assert.ok(fed < body.length / 500 / 2, `fed ${fed} chunks before the first output`);
    await reader.cancel();
  });

  test("sources that overwrite their buffer once a chunk is taken are safe", async () => {
    // Records are pipelined; WebCrypto copies its input when called, and the streams
    // copy what they keep, so a producer may reuse one buffer for every chunk.
    const ikm = bytes(32, 12);
    const rs = 4096;
    const plain = bytes(300000, 13);
    const body = await ece.encrypt(plain, ikm, { rs, salt: bytes(16, 14) });
    function reusing(data, size) {
      const buffer = new Uint8Array(size);
      let offset = 0;
      return new ReadableStream(
        {
          pull(controller) {
            if (offset >= data.length) return controller.close();
            const n = Math.min(size, data.length - offset);
            buffer.set(data.subarray(offset, offset + n));
            offset += n;
            controller.enqueue(buffer.subarray(0, n));
          },
        },
        { highWaterMark: 0 },
      );
    }
    for (const size of [rs, 3 * rs, 5000, 65536]) {
      const encrypted = await collect(reusing(plain, size).pipeThrough(ece.encryptStream(ikm, { rs, salt: bytes(16, 14) })));
      assert.equal(e(encrypted), e(body));
      assert.deepEqual(await collect(reusing(body, size).pipeThrough(ece.decryptStream(ikm))), plain);
    }
  });

  test("a 256 MiB stream keeps memory flat", async () => {
    const ikm = bytes(32, 9);
    const block = bytes(1 << 20, 11);
    const total = 256;
    let produced = 0;
    const source = new ReadableStream(
      {
        pull(controller) {
          if (produced === total) return controller.close();
          produced++;
          controller.enqueue(block.slice());
        },
      },
      { highWaterMark: 0 },
    );
    let peak = 0;
    let count = 0;
    const sink = new WritableStream({
      write(chunk) {
        count += chunk.length;
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      },
    });
    await source.pipeThrough(ece.encryptStream(ikm)).pipeThrough(ece.decryptStream(ikm)).pipeTo(sink);
    assert.equal(count, total << 20);
    // One input chunk, one record in each direction, plus garbage not yet collected.
    assert.ok(peak < 96 << 20, `arrayBuffers peaked at ${peak} bytes`);
  });
});

describe("tampering", () => {
  const ikm = bytes(32, 21);
  const rs = 64;
  const plain = bytes(260, 22); // 5 full records and 25 bytes
  let body;
  let records;
  const header = () => body.subarray(0, 21);
  const join = (...parts) => ece.concatBytes(parts);
  const flip = (data, index, bit = 0) => {
    const out = data.slice();
    out[index] ^= 1 << bit;
    return out;
  };

  test("setup", async () => {
    body = await ece.encrypt(plain, ikm, { rs, salt: bytes(16, 23) });
    records = split(body.subarray(21), rs);
    assert.equal(records.length, 6);
  });

  test("every truncation is rejected, one-shot and streaming", async () => {
    for (let end = 0; end < body.length; end++) {
      await assertRejects(ece.decrypt(body.subarray(0, end), ikm));
      await assertRejects(decryptChunked(body.subarray(0, end), ikm, 13));
    }
  });

  test("every bit flip is rejected", async () => {
    for (let i = 0; i < body.length; i++) {
      await assertRejects(ece.decrypt(flip(body, i, i % 8), ikm));
    }
  });

  test("reordered, dropped and appended records", async () => {
    const r = records;
    const full = await ece.encrypt(plain.subarray(0, 5 * 47), ikm, { rs });
    const cases = [
      [join(header(), ...r.slice(0, -1)), /truncated stream/],
      [join(header()), /truncated stream/],
      [join(header(), ...r.slice(1)), /authentication failed/],
      [join(header(), r[1], r[0], ...r.slice(2)), /authentication failed/],
      [join(header(), ...r.slice(0, 2), ...r.slice(3)), /authentication failed/],
      [join(body, r[5]), /authentication failed/],
      [join(full, full.subarray(21, 21 + rs)), /data after the final record/],
      [join(full, new Uint8Array(1)), /data after the final record/],
      [join(body.subarray(0, body.length - r[5].length), r[5].subarray(0, 16)), /record too short/],
      [body.subarray(0, 20), /bad header/],
      [join(body.subarray(0, 16), new Uint8Array([0, 0, 0, 17]), body.subarray(20)), /record size out of range/],
      [join(body.subarray(0, 16), new Uint8Array([255, 255, 255, 255]), body.subarray(20)), /record size out of range/],
    ];
    for (const [tampered, pattern] of cases) {
      await assertRejects(ece.decrypt(tampered, ikm), pattern);
      await assertRejects(decryptChunked(tampered, ikm, 10), pattern);
    }
  });

  test("wrong key", async () => {
    await assertRejects(ece.decrypt(body, bytes(32, 1)), /authentication failed/);
    await assertRejects(ece.decrypt(body, flip(ikm, 0)), /authentication failed/);
  });

  test("authentic records with invalid framing", async () => {
    const data = bytes(47, 5);
    const empty = new Uint8Array(0);
    const cases = [
      [[[data, 0, 1], [data.subarray(0, 3), 0, 1]], /truncated stream/],
      [[[data, 0, 2], [data.subarray(0, 3), 0, 2]], /data after the final record/],
      [[[data, 0, 3]], /bad padding/],
      [[[empty, 47, 0]], /bad padding/],
      [[[data, 0, 1], [empty, 4, 0]], /bad padding/],
    ];
    for (const [layout, pattern] of cases) {
      const tampered = referenceEncrypt(layout, ikm, { rs });
      await assertRejects(ece.decrypt(tampered, ikm), pattern);
      await assertRejects(decryptChunked(tampered, ikm, 9), pattern);
    }
  });

  test("a tampered stream emits only authenticated records, then errors", async () => {
    const tampered = flip(body, 21 + 3 * rs + 5);
    const parts = [];
    const sink = new WritableStream({ write: (part) => parts.push(part) });
    await assertRejects(streamOf([tampered]).pipeThrough(ece.decryptStream(ikm)).pipeTo(sink), /record 3/);
    assert.deepEqual(ece.concatBytes(parts), plain.subarray(0, 3 * 47));
  });
});
