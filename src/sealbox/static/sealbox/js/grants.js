// Sealbox: grants (per-recipient wrapping of a message's content key) and password keys.
// Same definitions, same bytes as the Python module sealbox.crypto.grants:
//
//   password_key = PBKDF2-HMAC-SHA256(UTF-8(NFC(password)), salt = UTF-8(grant_id),
//                                     600000 iterations, 32 bytes)
//   verifier     = HKDF-SHA256(ikm = password_key, salt = UTF-8(grant_id),
//                              info = "sealbox password verifier", 32 bytes)
//   KEK          = HKDF-SHA256(ikm = link_secret || server_secret [|| password_key],
//                              salt = UTF-8(grant_id), info = "sealbox grant v1", 32 bytes)
//   wrapped_key  = nonce (12 random bytes) || AES-256-GCM(KEK, nonce, content_key)
//                  (60 bytes: nonce, encrypted 32-byte key, 16-byte tag; no associated data)
//
// All byte values are Uint8Arrays; grant ids and passwords are strings.

import { CryptoError, randomBytes, subtle, toBytes } from "./ece.js";

export { CryptoError };

export const CONTENT_KEY_LENGTH = 32;
export const LINK_SECRET_LENGTH = 16;
export const SERVER_SECRET_LENGTH = 16;
export const PASSWORD_KEY_LENGTH = 32;
export const VERIFIER_LENGTH = 32;
export const KEK_LENGTH = 32;
export const WRAP_NONCE_LENGTH = 12;
export const WRAPPED_KEY_LENGTH = WRAP_NONCE_LENGTH + CONTENT_KEY_LENGTH + 16;
export const PBKDF2_ITERATIONS = 600000;

const encoder = new TextEncoder();
const GRANT_INFO = encoder.encode("sealbox grant v1");
const VERIFIER_INFO = encoder.encode("sealbox password verifier");

function grantSalt(grantId) {
  if (typeof grantId !== "string" || grantId.length === 0) {
    throw new CryptoError("the grant id must be a non-empty string");
  }
  return encoder.encode(grantId);
}

function checkLength(value, length, what) {
  const bytes = toBytes(value, `the ${what}`);
  if (bytes.length !== length) {
    throw new CryptoError(`bad ${what}: expected ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

async function hkdf(ikm, salt, info, length) {
  const s = subtle();
  const key = await s.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await s.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8);
  return new Uint8Array(bits);
}

/** A fresh random 32-byte content key (the RFC 8188 IKM of a message). */
export function newContentKey() {
  return randomBytes(CONTENT_KEY_LENGTH);
}

/**
 * PBKDF2-HMAC-SHA256 of the NFC-normalised password, salted with the grant id.
 * Slow on purpose (600000 iterations); `iterations` exists for tests only.
 */
export async function derivePasswordKey(password, grantId, { iterations = PBKDF2_ITERATIONS } = {}) {
  if (typeof password !== "string" || password.length === 0) {
    throw new CryptoError("the password must be a non-empty string");
  }
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new CryptoError("iterations must be positive");
  }
  const salt = grantSalt(grantId);
  const s = subtle();
  const key = await s.importKey("raw", encoder.encode(password.normalize("NFC")), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await s.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    PASSWORD_KEY_LENGTH * 8,
  );
  return new Uint8Array(bits);
}

/** The 32-byte value the server stores (hashed) to check a password. */
export async function passwordVerifier(passwordKey, grantId) {
  const ikm = checkLength(passwordKey, PASSWORD_KEY_LENGTH, "password key");
  return hkdf(ikm, grantSalt(grantId), VERIFIER_INFO, VERIFIER_LENGTH);
}

/** The grant's 32-byte key-encryption key. */
export async function deriveKek(linkSecret, serverSecret, grantId, passwordKey = null) {
  const parts = [
    checkLength(linkSecret, LINK_SECRET_LENGTH, "link secret"),
    checkLength(serverSecret, SERVER_SECRET_LENGTH, "server secret"),
  ];
  if (passwordKey !== null && passwordKey !== undefined) {
    parts.push(checkLength(passwordKey, PASSWORD_KEY_LENGTH, "password key"));
  }
  const ikm = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    ikm.set(part, offset);
    offset += part.length;
  }
  return hkdf(ikm, grantSalt(grantId), GRANT_INFO, KEK_LENGTH);
}

async function aesKey(kek, usage) {
  return subtle().importKey("raw", checkLength(kek, KEK_LENGTH, "key-encryption key"), "AES-GCM", false, [
    usage,
  ]);
}

/**
 * Wrap a 32-byte content key: nonce || AES-256-GCM ciphertext || tag (60 bytes).
 * `nonce` defaults to 12 fresh random bytes; pass one only to reproduce test output.
 */
export async function wrapKey(kek, contentKey, { nonce = undefined } = {}) {
  const key = await aesKey(kek, "encrypt");
  const plain = checkLength(contentKey, CONTENT_KEY_LENGTH, "content key");
  const iv = nonce === undefined ? randomBytes(WRAP_NONCE_LENGTH) : checkLength(nonce, WRAP_NONCE_LENGTH, "nonce");
  const sealed = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv }, key, plain));
  const out = new Uint8Array(WRAPPED_KEY_LENGTH);
  out.set(iv);
  out.set(sealed, WRAP_NONCE_LENGTH);
  return out;
}

/** Recover the content key from `wrapKey` output; rejects with CryptoError otherwise. */
export async function unwrapKey(kek, wrappedKey) {
  const key = await aesKey(kek, "decrypt");
  const wrapped = checkLength(wrappedKey, WRAPPED_KEY_LENGTH, "wrapped key");
  try {
    const plain = await subtle().decrypt(
      { name: "AES-GCM", iv: wrapped.subarray(0, WRAP_NONCE_LENGTH) },
      key,
      wrapped.subarray(WRAP_NONCE_LENGTH),
    );
    return new Uint8Array(plain);
  } catch (error) {
    if (error && error.name === "OperationError") {
      throw new CryptoError(
        "authentication failed: wrong link secret, server secret or password, or a modified wrapped key",
      );
    }
    throw error;
  }
}

async function resolvePasswordKey(grantId, password, passwordKey) {
  const hasPassword = password !== undefined && password !== null;
  const hasKey = passwordKey !== undefined && passwordKey !== null;
  if (hasPassword && hasKey) throw new CryptoError("pass either a password or a password key, not both");
  if (hasPassword) return derivePasswordKey(password, grantId);
  return hasKey ? passwordKey : null;
}

/**
 * Create a grant for one recipient of the message whose key is `contentKey`.
 * Options: password (string) or passwordKey (already derived). Returns
 * {linkSecret, serverSecret, wrappedKey, passwordVerifier (null without password)}.
 */
export async function createGrant(contentKey, grantId, { password = null, passwordKey = null } = {}) {
  checkLength(contentKey, CONTENT_KEY_LENGTH, "content key");
  grantSalt(grantId);
  const pkey = await resolvePasswordKey(grantId, password, passwordKey);
  const linkSecret = randomBytes(LINK_SECRET_LENGTH);
  const serverSecret = randomBytes(SERVER_SECRET_LENGTH);
  const kek = await deriveKek(linkSecret, serverSecret, grantId, pkey);
  return {
    linkSecret,
    serverSecret,
    wrappedKey: await wrapKey(kek, contentKey),
    passwordVerifier: pkey === null ? null : await passwordVerifier(pkey, grantId),
  };
}

/** Recover the content key of a grant; rejects with CryptoError otherwise. */
export async function unwrapGrant(
  grantId,
  linkSecret,
  serverSecret,
  wrappedKey,
  { password = null, passwordKey = null } = {},
) {
  const pkey = await resolvePasswordKey(grantId, password, passwordKey);
  const kek = await deriveKek(linkSecret, serverSecret, grantId, pkey);
  return unwrapKey(kek, wrappedKey);
}
