// grants.js in Node, checked against node:crypto as an independent implementation.
// Run: node --test tests/js/

import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, hkdfSync, pbkdf2Sync, randomBytes } from "node:crypto";
import { describe, test } from "node:test";

import * as ece from "../../src/sealbox/static/sealbox/js/ece.js";
import * as grants from "../../src/sealbox/static/sealbox/js/grants.js";

const GRANT_ID = "3f9c2d1e-7b4a-4c1e-9d2f-0a1b2c3d4e5f";
const u8 = (buffer) => new Uint8Array(buffer);
const hkdf = (ikm, salt, info, length) => u8(hkdfSync("sha256", ikm, salt, info, length));
const random = (n) => u8(randomBytes(n));

function flip(data, index) {
  const out = data.slice();
  out[index] ^= 1;
  return out;
}

async function assertRejects(promise, pattern) {
  await assert.rejects(promise, (error) => {
    assert.equal(error.name, "CryptoError");
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

describe("definitions", () => {
  test("password key is PBKDF2-SHA256, 600000 iterations, NFC", async () => {
    const key = await grants.derivePasswordKey("correct horse battery staple", GRANT_ID);
    assert.deepEqual(key, u8(pbkdf2Sync("correct horse battery staple", GRANT_ID, 600000, 32, "sha256")));
    const composed = "caf\u00e9";
    const decomposed = "cafe\u0301";
    const a = await grants.derivePasswordKey(composed, GRANT_ID, { iterations: 1000 });
    const b = await grants.derivePasswordKey(decomposed, GRANT_ID, { iterations: 1000 });
    assert.deepEqual(a, b);
    assert.deepEqual(a, u8(pbkdf2Sync(Buffer.from(composed, "utf8"), GRANT_ID, 1000, 32, "sha256")));
  });

  test("verifier is HKDF(password key, salt = grant id)", async () => {
    const pkey = random(32);
    assert.deepEqual(
      await grants.passwordVerifier(pkey, GRANT_ID),
      hkdf(pkey, GRANT_ID, "sealbox password verifier", 32),
    );
  });

  test("KEK is HKDF(link secret || server secret [|| password key])", async () => {
    const [link, server, pkey] = [random(16), random(16), random(32)];
    const grantId = "subvention-\u00e9t\u00e9-\u2713";
    assert.deepEqual(
      await grants.deriveKek(link, server, grantId),
      hkdf(ece.concatBytes([link, server]), Buffer.from(grantId, "utf8"), "sealbox grant v1", 32),
    );
    assert.deepEqual(
      await grants.deriveKek(link, server, grantId, pkey),
      hkdf(ece.concatBytes([link, server, pkey]), Buffer.from(grantId, "utf8"), "sealbox grant v1", 32),
    );
  });

  test("wrapped key is nonce || AES-256-GCM(content key) || tag", async () => {
    const [kek, contentKey, nonce] = [random(32), random(32), random(12)];
    const wrapped = await grants.wrapKey(kek, contentKey, { nonce });
    const cipher = createCipheriv("aes-256-gcm", kek, nonce);
    const expected = Buffer.concat([nonce, cipher.update(contentKey), cipher.final(), cipher.getAuthTag()]);
    assert.deepEqual(wrapped, u8(expected));
    assert.equal(wrapped.length, grants.WRAPPED_KEY_LENGTH);
    assert.deepEqual(await grants.unwrapKey(kek, wrapped), contentKey);
  });
});

describe("grants", () => {
  test("create and unwrap without password", async () => {
    const contentKey = grants.newContentKey();
    assert.equal(contentKey.length, 32);
    const g = await grants.createGrant(contentKey, GRANT_ID);
    assert.equal(g.linkSecret.length, 16);
    assert.equal(g.serverSecret.length, 16);
    assert.equal(g.wrappedKey.length, 60);
    assert.equal(g.passwordVerifier, null);
    assert.deepEqual(await grants.unwrapGrant(GRANT_ID, g.linkSecret, g.serverSecret, g.wrappedKey), contentKey);
    // independently
    const kek = hkdf(ece.concatBytes([g.linkSecret, g.serverSecret]), GRANT_ID, "sealbox grant v1", 32);
    const decipher = createDecipheriv("aes-256-gcm", kek, g.wrappedKey.subarray(0, 12));
    decipher.setAuthTag(g.wrappedKey.subarray(44));
    assert.deepEqual(u8(Buffer.concat([decipher.update(g.wrappedKey.subarray(12, 44)), decipher.final()])), contentKey);
  });

  test("create and unwrap with password; every wrong factor rejects", async () => {
    const contentKey = grants.newContentKey();
    const passwordKey = await grants.derivePasswordKey("hunter2 but longer", GRANT_ID);
    const g = await grants.createGrant(contentKey, GRANT_ID, { passwordKey });
    assert.deepEqual(g.passwordVerifier, await grants.passwordVerifier(passwordKey, GRANT_ID));
    const args = [GRANT_ID, g.linkSecret, g.serverSecret, g.wrappedKey];
    assert.deepEqual(await grants.unwrapGrant(...args, { passwordKey }), contentKey);
    await assertRejects(grants.unwrapGrant(...args), /authentication failed/);
    await assertRejects(grants.unwrapGrant(...args, { password: "hunter2 but longer!" }), /authentication failed/);
    await assertRejects(grants.unwrapGrant(...args, { passwordKey: flip(passwordKey, 3) }), /authentication failed/);
    await assertRejects(grants.unwrapGrant(GRANT_ID + "x", ...args.slice(1), { passwordKey }), /authentication failed/);
    await assertRejects(grants.unwrapGrant(GRANT_ID, random(16), g.serverSecret, g.wrappedKey, { passwordKey }));
    await assertRejects(grants.unwrapGrant(GRANT_ID, g.linkSecret, random(16), g.wrappedKey, { passwordKey }));
    for (let i = 0; i < 60; i++) {
      await assertRejects(
        grants.unwrapGrant(GRANT_ID, g.linkSecret, g.serverSecret, flip(g.wrappedKey, i), { passwordKey }),
        /authentication failed/,
      );
    }
  });

  test("grants are fresh", async () => {
    const contentKey = grants.newContentKey();
    const a = await grants.createGrant(contentKey, GRANT_ID);
    const b = await grants.createGrant(contentKey, GRANT_ID);
    assert.notDeepEqual(a.linkSecret, b.linkSecret);
    assert.notDeepEqual(a.serverSecret, b.serverSecret);
    assert.notDeepEqual(a.wrappedKey, b.wrappedKey);
  });

  test("bad arguments", async () => {
    await assertRejects(grants.createGrant(random(16), GRANT_ID), /content key/);
    await assertRejects(grants.createGrant(random(32), ""), /grant id/);
    await assertRejects(grants.derivePasswordKey("", GRANT_ID), /password/);
    await assertRejects(grants.deriveKek(random(15), random(16), GRANT_ID), /link secret/);
    await assertRejects(grants.deriveKek(random(16), random(16), GRANT_ID, random(5)), /password key/);
    await assertRejects(grants.unwrapKey(random(32), random(59)), /wrapped key/);
    await assertRejects(grants.wrapKey(random(32), random(32), { nonce: random(11) }), /nonce/);
    await assertRejects(
      grants.createGrant(random(32), GRANT_ID, { password: "a", passwordKey: random(32) }),
      /either/,
    );
  });
});
