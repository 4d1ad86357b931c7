// Sealbox: strict base64url (RFC 4648 section 5) without padding.
// Same rules as the Python module sealbox.crypto._b64.

import { CryptoError } from "./ece.js";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

/** Encode bytes as base64url without "=" padding. */
export function toBase64url(bytes) {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

/**
 * Decode canonical unpadded base64url into a Uint8Array; throw CryptoError otherwise
 * (padding, whitespace, other characters, impossible length, non-zero unused bits).
 * `length`, when given, is the required number of decoded bytes; `what` names the
 * value in error messages.
 */
export function fromBase64url(text, { length = undefined, what = "value" } = {}) {
  if (typeof text !== "string") throw new CryptoError(`bad ${what}: expected a base64url string`);
  if (text.length % 4 === 1) throw new CryptoError(`bad ${what}: not unpadded base64url`);
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let buffer = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? VALUES[code] : -1;
    if (value < 0) throw new CryptoError(`bad ${what}: not unpadded base64url`);
    buffer = ((buffer << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >> bits) & 0xff;
    }
  }
  if (bits > 0 && (buffer & ((1 << bits) - 1)) !== 0) {
    throw new CryptoError(`bad ${what}: non-canonical base64url`);
  }
  if (length !== undefined && out.length !== length) {
    throw new CryptoError(`bad ${what}: expected ${length} bytes, got ${out.length}`);
  }
  return out;
}
