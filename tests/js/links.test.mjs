// links.js and b64.js in Node. The Python tests also feed the same malformed links to
// links.js (tests/crypto/test_ece_js_interop.py) so both reject the same set.
// Run: node --test tests/js/

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { fromBase64url, toBase64url } from "../../src/sealbox/static/sealbox/js/b64.js";
import * as links from "../../src/sealbox/static/sealbox/js/links.js";

const TOKEN = "Zk3x9QmB7rT2vW1yA5cD8e";
const SECRET = Uint8Array.from({ length: 16 }, (_, i) => i);
const SECRET_TEXT = "AAECAwQFBgcICQoLDA0ODw";

describe("links", () => {
  test("build and parse", () => {
    const link = links.buildLink("https://sealbox.example.com/", TOKEN, SECRET);
    assert.equal(link, `https://sealbox.example.com/o/${TOKEN}#${SECRET_TEXT}`);
    const parsed = links.parseLink(link, "https://Sealbox.example.com");
    assert.deepEqual(parsed, { baseUrl: "https://sealbox.example.com", grantToken: TOKEN, linkSecret: SECRET });
    assert.deepEqual(links.parseLink(link), parsed);
  });

  test("base URLs", () => {
    for (const [base, normal] of [
      ["https://Example.COM:8443/", "https://example.com:8443"],
      ["https://[::1]:8443", "https://[::1]:8443"],
      ["https://example.com/portal/Sealbox/", "https://example.com/portal/Sealbox"],
    ]) {
      assert.equal(links.normaliseBaseUrl(base), normal);
      assert.equal(links.parseLink(links.buildLink(base, TOKEN, SECRET), base).baseUrl, normal);
    }
    for (const bad of ["", "example.com", "https://example.com?x", "javascript:alert(1)", "https://example.com//"]) {
      assert.throws(() => links.normaliseBaseUrl(bad), links.CryptoError);
    }
  });

  test("wrong server", () => {
    const link = `https://example.com/app/o/${TOKEN}#${SECRET_TEXT}`;
    assert.throws(() => links.parseLink(link, "https://example.com/App"), /does not belong/);
    assert.throws(() => links.parseLink(link, "https://example.org/app"), /does not belong/);
  });

  test("malformed links", () => {
    for (const bad of [
      "",
      `https://example.com/o/${TOKEN}`,
      `https://example.com/o/${TOKEN}?x=1#${SECRET_TEXT}`,
      `https://example.com/o/${TOKEN}#${SECRET_TEXT}=`,
      `https://example.com/o/${TOKEN}#AAECAwQFBgcICQoLDA0ODx`,
      `https://example.com/o/short#${SECRET_TEXT}`,
      `https://example.com/o/${TOKEN}#${SECRET_TEXT}\n`,
      null,
    ]) {
      assert.throws(() => links.parseLink(bad), links.CryptoError);
    }
  });

  test("link secret from location.hash", () => {
    assert.deepEqual(links.decodeLinkSecret(`#${SECRET_TEXT}`), SECRET);
    assert.throws(() => links.decodeLinkSecret("#"), /link secret/);
    assert.equal(links.newGrantToken().length, 22);
    assert.match(links.newGrantToken(), links.GRANT_TOKEN_RE);
  });
});

describe("base64url", () => {
  test("round trips and matches Buffer", () => {
    for (let n = 0; n < 70; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      const text = toBase64url(data);
      assert.equal(text, Buffer.from(data).toString("base64url"));
      assert.deepEqual(fromBase64url(text), data);
    }
  });

  test("strict", () => {
    for (const bad of ["A", "AA=", "AA==", "A+", "A/", "AB C", "AB\n", "AE", "AAB", "é"]) {
      assert.throws(() => fromBase64url(bad), /base64url/, bad);
    }
    assert.throws(() => fromBase64url("AAAA", { length: 4, what: "thing" }), /bad thing: expected 4 bytes/);
  });
});
