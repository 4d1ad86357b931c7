// The browser's side of a signature, run under Node for the Python tests: each call does
// one step with sealbox/js/pdf-revision.js on files and prints a JSON result.
//
//   node pdf_driver.mjs '{"op": "prepare", "input": ..., "output": ..., "zones": [...]}'
//   ops: prepare, certify, sign (-> {byteRange, digest (hex)}), embed (byteRange, cms path)

import { readFileSync, writeFileSync } from "node:fs";

import * as revision from "../../src/sealbox/static/sealbox/js/pdf-revision.js";

const request = JSON.parse(process.argv[2]);
const input = new Uint8Array(readFileSync(request.input));
const time = request.time ? new Date(request.time) : undefined;

function prepared(result) {
  writeFileSync(request.output, result.bytes);
  return {
    byteRange: result.byteRange,
    digest: Buffer.from(result.digest).toString("hex"),
    baseLength: result.baseLength,
  };
}

async function run() {
  switch (request.op) {
    case "prepare":
      writeFileSync(request.output, await revision.prepareDocument(input, { zones: request.zones }));
      return {};
    case "certify":
      return prepared(await revision.prepareCertification(input, { time, reason: request.reason }));
    case "sign": {
      const look = request.appearance || {};
      const appearance = look.image
        ? { image: { bytes: new Uint8Array(readFileSync(look.image)), type: look.type || "png" } }
        : look.text
          ? { text: look.text }
          : undefined;
      return prepared(
        await revision.prepareSignature(input, {
          field: request.field,
          values: request.values || {},
          appearance,
          time,
          name: request.name,
        }),
      );
    }
    case "embed": {
      const cms = new Uint8Array(readFileSync(request.cms));
      writeFileSync(request.output, revision.embedCms({ bytes: input, byteRange: request.byteRange }, cms));
      return {};
    }
    case "fields":
      return { fields: await revision.describeFields(input) };
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

try {
  process.stdout.write(JSON.stringify({ ok: true, ...(await run()) }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: error.name, message: error.message }));
}
