// Sealbox: RFC 8188 "aes128gcm" encrypted content-encoding, one-shot and streaming.
//
// Same format, same bytes as the Python module sealbox.crypto.ece (see docs/crypto.md):
//
//   header   = salt (16) || rs (uint32 BE) || idlen (uint8) || keyid (idlen bytes)
//   PRK      = HKDF-Extract(salt, IKM)                      (HMAC-SHA-256)
//   CEK      = HKDF-Expand(PRK, "Content-Encoding: aes128gcm\0", 16)
//   NONCE    = HKDF-Expand(PRK, "Content-Encoding: nonce\0", 12)
//   record i = AES-128-GCM(CEK, NONCE XOR i, data || delimiter || zero padding) + tag
//   delimiter: 1 for every record but the last, 2 for the last.
//
// Every record but the last is rs bytes. Encryption is canonical: records are filled to
// capacity (rs - 17 data bytes) and the last one holds the rest, so the output depends
// only on the plaintext, key, salt, rs and key id, never on how the input was chunked.
// Decryption accepts any valid RFC 8188 layout and rejects truncation (no final
// record), data after the final record, bad padding and any modification.
//
// WebCrypto only (globalThis.crypto.subtle): runs unchanged in browsers (secure context)
// and in Node.js 20. No dependency, no eval; loads as a plain ES module.

export class CryptoError extends Error {
  constructor(message) {
    super(message);
    this.name = "CryptoError";
  }
}

export const DEFAULT_RS = 65536;
export const SALT_LENGTH = 16;
export const TAG_LENGTH = 16;
/** Header length with an empty key id: salt (16) + rs (4) + idlen (1). */
export const HEADER_LENGTH = 21;
/** Bytes a record adds to its data: the 16-byte tag and the 1-byte delimiter. */
export const RECORD_OVERHEAD = 17;
export const MIN_RS = 18;
export const MAX_RS = 2 ** 24;
export const MAX_KEYID_LENGTH = 255;
export const MIN_IKM_LENGTH = 16;

const encoder = new TextEncoder();
const CEK_INFO = encoder.encode("Content-Encoding: aes128gcm\0");
const NONCE_INFO = encoder.encode("Content-Encoding: nonce\0");
const DELIMITER = 1;
const LAST_DELIMITER = 2;

/** The WebCrypto SubtleCrypto object, or a clear error where it is unavailable. */
export function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    throw new CryptoError(
      "WebCrypto is not available (pages must be served over https or from localhost)",
    );
  }
  return s;
}

/** A Uint8Array view of a Uint8Array, ArrayBuffer or ArrayBuffer view (no copy). */
export function toBytes(value, what = "data") {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`${what} must be a Uint8Array, an ArrayBuffer or a typed array`);
}

/** Fresh random bytes from the platform's cryptographic generator. */
export function randomBytes(length) {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < length; i += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  }
  return out;
}

/** Concatenate Uint8Arrays. */
export function concatBytes(parts) {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function checkIkm(ikm) {
  const bytes = toBytes(ikm, "the key");
  if (bytes.length < MIN_IKM_LENGTH) {
    throw new CryptoError(`key too short: at least ${MIN_IKM_LENGTH} bytes are required`);
  }
  return bytes;
}

function checkRs(rs) {
  if (!Number.isInteger(rs) || rs < MIN_RS || rs > MAX_RS) {
    throw new CryptoError(`record size out of range: rs must be between ${MIN_RS} and ${MAX_RS}`);
  }
}

/**
 * Parse and validate the header at the start of `body` (which may hold more).
 * Returns {salt, rs, keyid, length}.
 */
export function parseHeader(body) {
  const bytes = toBytes(body, "body");
  if (bytes.length < HEADER_LENGTH) {
    throw new CryptoError(
      `bad header: ${bytes.length} bytes, an aes128gcm header is at least ${HEADER_LENGTH} bytes`,
    );
  }
  const idlen = bytes[HEADER_LENGTH - 1];
  if (bytes.length < HEADER_LENGTH + idlen) {
    throw new CryptoError(`bad header: the body ends inside the ${idlen}-byte key id`);
  }
  const rs = new DataView(bytes.buffer, bytes.byteOffset + SALT_LENGTH, 4).getUint32(0);
  checkRs(rs);
  return {
    salt: bytes.slice(0, SALT_LENGTH),
    rs,
    keyid: bytes.slice(HEADER_LENGTH, HEADER_LENGTH + idlen),
    length: HEADER_LENGTH + idlen,
  };
}

/** Exact size of the payload `encrypt` produces for `plaintextSize` bytes. */
export function encryptedSize(plaintextSize, rs = DEFAULT_RS, { keyidLength = 0 } = {}) {
  checkRs(rs);
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) {
    throw new CryptoError("plaintext size must be a non-negative integer");
  }
  const records = Math.max(1, Math.ceil(plaintextSize / (rs - RECORD_OVERHEAD)));
  return HEADER_LENGTH + keyidLength + plaintextSize + records * RECORD_OVERHEAD;
}

async function deriveRecordKey(ikm, salt) {
  const s = subtle();
  const base = await s.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const [cek, nonce] = await Promise.all([
    s.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: CEK_INFO }, base, 128),
    s.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: NONCE_INFO }, base, 96),
  ]);
  const key = await s.importKey("raw", cek, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { key, nonce: new Uint8Array(nonce) };
}

/** NONCE XOR counter, the counter as a 96-bit big-endian integer (counter < 2^53). */
function recordNonce(base, counter) {
  const iv = base.slice();
  let low = counter % 0x100000000;
  let high = Math.floor(counter / 0x100000000);
  for (let i = 11; i >= 8; i--) {
    iv[i] ^= low & 0xff;
    low >>>= 8;
  }
  for (let i = 7; i >= 4; i--) {
    iv[i] ^= high & 0xff;
    high >>>= 8;
  }
  return iv;
}

/** Split a record's plaintext into {data, last}. */
function unpad(plain, counter) {
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  if (end < 0) throw new CryptoError(`bad padding: record ${counter} has no delimiter`);
  const delimiter = plain[end];
  if (delimiter !== DELIMITER && delimiter !== LAST_DELIMITER) {
    throw new CryptoError(`bad padding: record ${counter} has an invalid delimiter`);
  }
  return { data: plain.subarray(0, end), last: delimiter === LAST_DELIMITER };
}

/** Incremental encrypter shared by `encrypt` and `encryptStream`. */
class Sealer {
  constructor(ikm, { rs = DEFAULT_RS, salt = undefined, keyid = new Uint8Array(0), pad = 0 } = {}) {
    this.ikm = checkIkm(ikm).slice();
    checkRs(rs);
    if (salt === undefined || salt === null) {
      salt = randomBytes(SALT_LENGTH);
    } else {
      salt = toBytes(salt, "salt").slice();
      if (salt.length !== SALT_LENGTH) throw new CryptoError(`salt must be ${SALT_LENGTH} bytes`);
    }
    keyid = typeof keyid === "string" ? encoder.encode(keyid) : toBytes(keyid, "key id");
    if (keyid.length > MAX_KEYID_LENGTH) {
      throw new CryptoError(`key id must be at most ${MAX_KEYID_LENGTH} bytes`);
    }
    if (!Number.isInteger(pad) || pad < 0 || pad > rs - RECORD_OVERHEAD) {
      throw new CryptoError(`padding must be between 0 and rs - ${RECORD_OVERHEAD}`);
    }
    this.salt = salt;
    this.rs = rs;
    this.pad = pad;
    this.header = new Uint8Array(HEADER_LENGTH + keyid.length);
    this.header.set(salt);
    new DataView(this.header.buffer).setUint32(SALT_LENGTH, rs);
    this.header[HEADER_LENGTH - 1] = keyid.length;
    this.header.set(keyid, HEADER_LENGTH);
    this.capacity = rs - RECORD_OVERHEAD;
    // Plaintext of a full record: `capacity` data bytes then the delimiter 1.
    this.record = new Uint8Array(this.capacity + 1);
    this.record[this.capacity] = DELIMITER;
    this.limit = this.capacity - pad; // data bytes the current record can hold
    this.fill = 0; // data bytes waiting in `record`
    this.counter = 0;
    this.pending = null; // the previous record's encryption, not yet passed on
  }

  async init() {
    const { key, nonce } = await deriveRecordKey(this.ikm, this.salt);
    this.key = key;
    this.nonce = nonce;
    this.ikm = null;
  }

  // Encryption is pipelined one record deep: a record's WebCrypto call runs while the
  // previous record is passed on. WebCrypto copies its input when called, so the
  // record buffer can be reused as soon as seal() returns.
  async seal(plain, emit) {
    const iv = recordNonce(this.nonce, this.counter++);
    const promise = subtle().encrypt({ name: "AES-GCM", iv }, this.key, plain);
    promise.catch(() => {}); // reported when awaited, in order
    const previous = this.pending;
    this.pending = promise;
    if (previous) emit(new Uint8Array(await previous));
  }

  async update(data, emit) {
    const end = data.length;
    let pos = 0;
    // A record is sealed as non-final only once a byte beyond it exists, so the last
    // record is always the one sealed by final().
    while (this.fill + end - pos > this.limit) {
      const take = this.limit - this.fill;
      this.record.set(data.subarray(pos, pos + take), this.fill);
      pos += take;
      let plain = this.record;
      if (this.limit !== this.capacity) {
        // The first record carries padding: data, delimiter, `pad` zeros.
        plain = new Uint8Array(this.capacity + 1);
        plain.set(this.record.subarray(0, this.limit));
        plain[this.limit] = DELIMITER;
        this.limit = this.capacity;
      }
      this.fill = 0;
      await this.seal(plain, emit);
    }
    this.record.set(data.subarray(pos), this.fill);
    this.fill += end - pos;
  }

  async final(emit) {
    const padding = this.counter === 0 ? this.pad : 0;
    const plain = new Uint8Array(this.fill + 1 + padding);
    plain.set(this.record.subarray(0, this.fill));
    plain[this.fill] = LAST_DELIMITER;
    await this.seal(plain, emit);
    emit(new Uint8Array(await this.pending));
    this.pending = null;
    this.record = null;
  }
}

/** Incremental decrypter shared by `decrypt` and `decryptStream`. */
class Opener {
  constructor(ikm) {
    this.ikm = checkIkm(ikm).slice();
    this.head = new Uint8Array(HEADER_LENGTH + MAX_KEYID_LENGTH);
    this.headFill = 0;
    this.need = HEADER_LENGTH; // then the key id, whose length is the header's last byte
    this.header = null;
    this.fill = 0; // bytes of an incomplete record waiting in `record`
    this.counter = 0;
    this.last = false; // a record marked final has been checked
    this.pending = null; // the record being decrypted, not yet checked
  }

  // Decryption is pipelined one record deep: the next record's WebCrypto call runs
  // while the previous record's plaintext is checked and passed on. WebCrypto copies
  // its input when called, so buffers can be reused as soon as start() returns.
  start(sealed, final) {
    const counter = this.counter++;
    const iv = recordNonce(this.nonce, counter);
    const promise = subtle().decrypt({ name: "AES-GCM", iv }, this.key, sealed);
    promise.catch(() => {}); // reported by finish(), in order
    return { promise, counter, final };
  }

  async finish(job) {
    if (this.last) throw new CryptoError("data after the final record");
    let plain;
    try {
      plain = await job.promise;
    } catch (error) {
      if (error && error.name === "OperationError") {
        const cause = job.final ? "modified or truncated" : "modified or reordered";
        throw new CryptoError(
          `authentication failed for record ${job.counter}: wrong key, or the data was ${cause}`,
        );
      }
      throw error;
    }
    const result = unpad(new Uint8Array(plain), job.counter);
    this.last = result.last;
    return result;
  }

  async push(job, emit) {
    const previous = this.pending;
    this.pending = job;
    if (previous) {
      const { data } = await this.finish(previous);
      if (data.length) emit(data);
    }
  }

  async update(data, emit) {
    const end = data.length;
    let pos = 0;
    if (this.header === null) {
      while (pos < end && this.headFill < this.need) {
        const take = Math.min(this.need - this.headFill, end - pos);
        this.head.set(data.subarray(pos, pos + take), this.headFill);
        this.headFill += take;
        pos += take;
        if (this.headFill === HEADER_LENGTH) this.need += this.head[HEADER_LENGTH - 1];
      }
      if (this.headFill < this.need) return;
      this.header = parseHeader(this.head.subarray(0, this.need));
      const { key, nonce } = await deriveRecordKey(this.ikm, this.header.salt);
      this.key = key;
      this.nonce = nonce;
      this.ikm = null;
      this.record = new Uint8Array(this.header.rs);
    }
    const rs = this.header.rs;
    while (pos < end) {
      if (this.last) throw new CryptoError("data after the final record");
      let sealed;
      if (this.fill === 0 && end - pos >= rs) {
        sealed = data.subarray(pos, pos + rs);
        pos += rs;
      } else {
        const take = Math.min(rs - this.fill, end - pos);
        this.record.set(data.subarray(pos, pos + take), this.fill);
        this.fill += take;
        pos += take;
        if (this.fill < rs) break;
        sealed = this.record;
        this.fill = 0;
      }
      await this.push(this.start(sealed, false), emit);
    }
  }

  async final(emit) {
    if (this.header === null) {
      parseHeader(this.head.subarray(0, this.headFill)); // throws: ends inside the header
    }
    if (this.pending) {
      const { data } = await this.finish(this.pending);
      this.pending = null;
      if (data.length) emit(data);
    }
    if (this.last) {
      if (this.fill) throw new CryptoError("data after the final record");
      return;
    }
    if (this.fill === 0) throw new CryptoError("truncated stream: missing final record");
    if (this.fill < RECORD_OVERHEAD) {
      throw new CryptoError(
        `record too short: record ${this.counter} has ${this.fill} bytes, ` +
          `at least ${RECORD_OVERHEAD} are needed`,
      );
    }
    const job = this.start(this.record.subarray(0, this.fill), true);
    const { data, last } = await this.finish(job);
    if (!last) {
      throw new CryptoError(
        `truncated stream: missing final record (record ${job.counter} is shorter than ` +
          "the record size but not marked as final)",
      );
    }
    if (data.length) emit(data);
  }
}

/**
 * Encrypt `plaintext` (Uint8Array) into an aes128gcm payload (Uint8Array).
 * Options: rs (default 65536), salt (16 bytes; default random, pass one only to
 * reproduce known output), keyid (bytes or string, default empty), pad (zero octets of
 * padding in the first record, for test vectors; default 0).
 */
export async function encrypt(plaintext, ikm, options = {}) {
  const data = toBytes(plaintext, "plaintext");
  const sealer = new Sealer(ikm, options);
  await sealer.init();
  const parts = [sealer.header];
  const emit = (part) => parts.push(part);
  await sealer.update(data, emit);
  await sealer.final(emit);
  return concatBytes(parts);
}

/** Decrypt a complete aes128gcm payload; rejects with CryptoError if it is not intact. */
export async function decrypt(body, ikm) {
  const data = toBytes(body, "body");
  const opener = new Opener(ikm);
  const parts = [];
  const emit = (part) => parts.push(part);
  await opener.update(data, emit);
  await opener.final(emit);
  return concatBytes(parts);
}

/**
 * A TransformStream that encrypts a stream of byte chunks (any sizes) into an
 * aes128gcm payload: the header, then one chunk per record. Memory stays flat: one
 * input chunk, the record being filled, one record being encrypted, and the records
 * enqueued for the current input chunk until they are read (the stream applies
 * backpressure). Same options as `encrypt`; bad options throw at once.
 */
export function encryptStream(ikm, options = {}) {
  const sealer = new Sealer(ikm, options);
  return new TransformStream({
    async start(controller) {
      await sealer.init();
      controller.enqueue(sealer.header);
    },
    transform(chunk, controller) {
      return sealer.update(toBytes(chunk, "chunk"), (part) => controller.enqueue(part));
    },
    flush(controller) {
      return sealer.final((part) => controller.enqueue(part));
    },
  });
}

/**
 * A TransformStream that decrypts an aes128gcm payload arriving in chunks of any size
 * and emits plaintext chunks, each from an authenticated record. Memory stays flat as
 * for `encryptStream`. The stream errors with CryptoError on any problem; the
 * plaintext is only complete (not truncated) when the stream closes without error, so
 * write it to its final place only then.
 */
export function decryptStream(ikm) {
  const opener = new Opener(ikm);
  return new TransformStream({
    transform(chunk, controller) {
      return opener.update(toBytes(chunk, "chunk"), (part) => controller.enqueue(part));
    },
    flush(controller) {
      return opener.final((part) => controller.enqueue(part));
    },
  });
}

/**
 * Records sealed one by one, in any order, for uploads that produce a payload's ranges
 * independently (several at once, or again after a failure). The payload is the one
 * `encrypt` makes for the same plaintext, salt and rs (empty key id, no padding).
 * Returns {header, seal(index, data, last)}: seal resolves to the record's ciphertext;
 * `data` is the record's plaintext (rs - 17 bytes but for the last record), copied
 * with its delimiter before seal returns, so its buffer can be reused at once.
 */
export async function recordSealer(ikm, { rs = DEFAULT_RS, salt = undefined } = {}) {
  const sealer = new Sealer(ikm, { rs, salt });
  await sealer.init();
  const capacity = rs - RECORD_OVERHEAD;
  const plain = new Uint8Array(capacity + 1);
  const { key, nonce, header } = sealer;
  return {
    header,
    seal(index, data, last) {
      if (data.length > capacity || (!last && data.length !== capacity)) {
        throw new CryptoError(`record ${index} must hold ${capacity} bytes`);
      }
      plain.set(data);
      plain[data.length] = last ? LAST_DELIMITER : DELIMITER;
      // WebCrypto copies its input when called: `plain` is free again on return.
      return subtle().encrypt(
        { name: "AES-GCM", iv: recordNonce(nonce, index) }, key, plain.subarray(0, data.length + 1),
      );
    },
  };
}
