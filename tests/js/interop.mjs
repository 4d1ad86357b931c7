// Test helper: runs the browser crypto modules in Node for the Python interop tests
// (tests/crypto/test_ece_js_interop.py). Not a test file itself.
//
//   node tests/js/interop.mjs batch cases.json results.json
//       Each case is {op, ...} with bytes as base64url strings; each result is the
//       operation's output, or {error: {name, message}} if it threw or rejected.
//   node tests/js/interop.mjs encrypt-pipe IKM RS [SALT]   stdin plaintext -> stdout payload
//   node tests/js/interop.mjs decrypt-pipe IKM             stdin payload -> stdout plaintext
//       Streams with encryptStream / decryptStream; on error prints
//       "CryptoError: message" on stderr and exits with status 3.

import { readFile, writeFile } from "node:fs/promises";
import { Readable, Writable } from "node:stream";

import { fromBase64url, toBase64url } from "../../src/sealbox/static/sealbox/js/b64.js";
import * as ece from "../../src/sealbox/static/sealbox/js/ece.js";
import * as grants from "../../src/sealbox/static/sealbox/js/grants.js";
import * as links from "../../src/sealbox/static/sealbox/js/links.js";

const d = (text) => (text === undefined || text === null ? text : fromBase64url(text));
const e = (bytes) => (bytes === null ? null : toBase64url(bytes));

/** Feed `data` to a TransformStream in chunks of `chunk` bytes; collect the output. */
async function throughStream(transform, data, chunk) {
  const source = new ReadableStream({
    start(controller) {
      for (let i = 0; i < data.length; i += chunk) controller.enqueue(data.slice(i, i + chunk));
      controller.close();
    },
  });
  const parts = [];
  for await (const part of source.pipeThrough(transform)) parts.push(part);
  return ece.concatBytes(parts);
}

const OPS = {
  async encrypt(c) {
    const options = { rs: c.rs, salt: d(c.salt), keyid: d(c.keyid ?? ""), pad: c.pad ?? 0 };
    const plaintext = d(c.plaintext);
    const body = c.chunk
      ? await throughStream(ece.encryptStream(d(c.ikm), options), plaintext, c.chunk)
      : await ece.encrypt(plaintext, d(c.ikm), options);
    return { body: e(body), size: ece.encryptedSize(plaintext.length, c.rs) };
  },
  async decrypt(c) {
    const body = d(c.body);
    const plaintext = c.chunk
      ? await throughStream(ece.decryptStream(d(c.ikm)), body, c.chunk)
      : await ece.decrypt(body, d(c.ikm));
    return { plaintext: e(plaintext) };
  },
  async derivePasswordKey(c) {
    const passwordKey = await grants.derivePasswordKey(c.password, c.grantId, {
      iterations: c.iterations ?? grants.PBKDF2_ITERATIONS,
    });
    return {
      passwordKey: e(passwordKey),
      verifier: e(await grants.passwordVerifier(passwordKey, c.grantId)),
    };
  },
  async deriveKek(c) {
    return {
      kek: e(await grants.deriveKek(d(c.linkSecret), d(c.serverSecret), c.grantId, d(c.passwordKey))),
    };
  },
  async wrapKey(c) {
    return { wrappedKey: e(await grants.wrapKey(d(c.kek), d(c.contentKey), { nonce: d(c.nonce) })) };
  },
  async createGrant(c) {
    const grant = await grants.createGrant(d(c.contentKey), c.grantId, {
      password: c.password,
      passwordKey: d(c.passwordKey),
    });
    return {
      linkSecret: e(grant.linkSecret),
      serverSecret: e(grant.serverSecret),
      wrappedKey: e(grant.wrappedKey),
      passwordVerifier: e(grant.passwordVerifier),
    };
  },
  async unwrapGrant(c) {
    const key = await grants.unwrapGrant(c.grantId, d(c.linkSecret), d(c.serverSecret), d(c.wrappedKey), {
      password: c.password,
      passwordKey: d(c.passwordKey),
    });
    return { contentKey: e(key) };
  },
  async buildLink(c) {
    return { link: links.buildLink(c.baseUrl, c.grantToken, d(c.linkSecret)) };
  },
  async parseLink(c) {
    const link = links.parseLink(c.link, c.baseUrl);
    return { baseUrl: link.baseUrl, grantToken: link.grantToken, linkSecret: e(link.linkSecret) };
  },
};

async function batch(requestPath, responsePath) {
  const { cases } = JSON.parse(await readFile(requestPath, "utf8"));
  const results = [];
  for (const c of cases) {
    try {
      results.push(await OPS[c.op](c));
    } catch (error) {
      results.push({ error: { name: error.name, message: error.message } });
    }
  }
  await writeFile(responsePath, JSON.stringify({ results }));
}

async function pipe(transform) {
  const input = Readable.toWeb(process.stdin);
  const output = Writable.toWeb(process.stdout);
  try {
    await input.pipeThrough(transform).pipeTo(output);
  } catch (error) {
    process.stderr.write(`${error.name}: ${error.message}\n`);
    process.exitCode = 3;
  }
}

const [command, ...args] = process.argv.slice(2);
if (command === "batch") {
  await batch(args[0], args[1]);
} else if (command === "encrypt-pipe") {
  await pipe(ece.encryptStream(d(args[0]), { rs: Number(args[1]), salt: d(args[2]) }));
} else if (command === "decrypt-pipe") {
  await pipe(ece.decryptStream(d(args[0])));
} else {
  process.stderr.write(`unknown command ${command}\n`);
  process.exitCode = 2;
}
