// pdf-revision.js in Node: the structure of the revisions it appends, their byte ranges
// and digests, checked against node:crypto and an independent reading of the bytes.
// (Signature validity with real CMS is tests/signing/test_digest_signing.py.)
// Run: node --test tests/js/

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";

import * as revision from "../../src/sealbox/static/sealbox/js/pdf-revision.js";
import {
  PDFDocument,
  StandardFonts,
} from "../../src/sealbox/static/sealbox/vendor/pdf-lib/pdf-lib.esm.min.js";

const text = (bytes) => Buffer.from(bytes).toString("latin1");

const ZONES = [
  { name: "s1_name", type: "text", signer: "s1", page: 0, rect: [72, 600, 272, 620] },
  { name: "s1_ok", type: "checkbox", signer: "s1", page: 0, rect: [72, 570, 84, 582] },
  { name: "s1_signature", type: "signature", signer: "s1", page: 0, rect: [72, 480, 272, 540] },
  { name: "s2_initials", type: "initials", signer: "s2", page: 1, rect: [500, 40, 560, 70] },
  { name: "s2_signature", type: "signature", signer: "s2", page: 1, rect: [72, 480, 272, 540] },
];
const TIME = new Date(Date.UTC(2026, 10, 2, 9, 30, 0));

async function sourcePdf({ objectStreams = true } = {}) {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let i = 0; i < 2; i++) {
    doc.addPage([595, 842]).drawText(`Contract page ${i + 1}`, { x: 72, y: 750, size: 14, font });
  }
  return doc.save({ useObjectStreams: objectStreams });
}

function sha256(...parts) {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

// An independent reading of one classic xref section: entries and trailer.
function parseSection(bytes, offset) {
  const body = text(bytes.subarray(offset));
  assert.ok(body.startsWith("xref\n"), "a classic xref section");
  const entries = new Map();
  const lines = body.split("\n");
  let i = 1;
  while (!lines[i].startsWith("trailer")) {
    const [first, count] = lines[i++].split(" ").map(Number);
    for (let k = 0; k < count; k++) {
      const line = lines[i++];
      assert.equal(line.length, 19, "an xref entry is 20 bytes with its \\n");
      assert.match(line, /^\d{10} \d{5} [nf][\r ]$/);
      if (line[17] === "n") entries.set(first + k, Number(line.slice(0, 10)));
    }
  }
  const trailer = body.slice(body.indexOf("trailer"), body.indexOf("startxref"));
  return { entries, trailer };
}

const fakeCms = (n = 3000) => new Uint8Array(n).map((_, i) => (i * 7 + 1) & 0xff);

async function chain() {
  const source = await sourcePdf();
  const prepared = await revision.prepareDocument(source, { zones: ZONES });
  const certification = await revision.prepareCertification(prepared, { time: TIME });
  const certified = revision.embedCms(certification, fakeCms());
  const first = await revision.prepareSignature(certified, {
    field: "s1_signature",
    values: { s1_name: "Zoë Martin", s1_ok: true },
    appearance: { text: "Zoë Martin" },
    time: TIME,
    name: "Zoë Martin",
  });
  return { source, prepared, certification, certified, first };
}

describe("revision 0", () => {
  test("is a classic-xref rewrite with one merged field/widget per zone", async () => {
    const prepared = await revision.prepareDocument(await sourcePdf(), { zones: ZONES });
    const last = revision.lastSection(prepared);
    assert.equal(revision.revisionOffsets(prepared).length, 1);
    assert.ok(!text(prepared).includes("/ObjStm"), "no object streams");
    assert.ok(!text(prepared).includes("/XRef"), "no xref stream");
    const { entries } = parseSection(prepared, last.offset);
    for (const [number, offset] of entries) {
      assert.ok(text(prepared.subarray(offset, offset + 20)).startsWith(`${number} 0 obj`));
    }

    const fields = await revision.describeFields(prepared);
    assert.deepEqual(
      fields.map((field) => [field.name, field.type, field.signed]),
      [
        ["s1_name", "/Tx", false],
        ["s1_ok", "/Btn", false],
        ["s1_signature", "/Sig", false],
        ["s2_initials", "/Tx", false],
        ["s2_signature", "/Sig", false],
        [revision.CERTIFICATION_FIELD, "/Sig", false],
      ],
    );
    assert.deepEqual(fields[2].lock, ["s1_name", "s1_ok"]);
    assert.deepEqual(fields[4].lock, ["s2_initials"]);

    // Each field is its own widget (merged dictionary: no /Kids, no /Parent), listed in
    // its page's /Annots, with an appearance stream.
    const doc = await PDFDocument.load(prepared);
    const onPages = doc.getPages().map((page) =>
      page.node
        .Annots()
        .asArray()
        .map((ref) => doc.context.lookup(ref)),
    );
    assert.deepEqual(
      onPages.map((widgets) => widgets.map((widget) => widget.get(doc.context.obj("T")) && widget.lookup(doc.context.obj("T")).decodeText())),
      [["s1_name", "s1_ok", "s1_signature", revision.CERTIFICATION_FIELD], ["s2_initials", "s2_signature"]],
    );
    for (const widget of onPages.flat()) {
      const has = (key) => widget.get(doc.context.obj(key)) !== undefined;
      assert.equal(widget.lookup(doc.context.obj("Subtype")).asString(), "/Widget");
      assert.ok(has("FT") && has("T") && !has("Kids") && !has("Parent"));
      assert.equal(has("AP"), widget.lookup(doc.context.obj("T")).decodeText() !== revision.CERTIFICATION_FIELD);
    }
    assert.match(text(prepared), /\/SigFlags 3/);
  });

  test("refuses bad zones", async () => {
    const source = await sourcePdf();
    const bad = [
      [[{ ...ZONES[0], name: "s1.name" }, ZONES[2]], /letters, digits/],
      [[ZONES[0]], /no signature zone/],
      [[ZONES[2], { ...ZONES[2], name: "s1_other" }], /two signature zones/],
      [[ZONES[2], ZONES[2]], /twice/],
      [[{ ...ZONES[2], type: "stamp" }], /zone type/],
      [[{ ...ZONES[2], rect: [1, 2, 3] }], /rect/],
      [[{ ...ZONES[2], page: 7 }], /no page 7/],
    ];
    for (const [zones, message] of bad) {
      await assert.rejects(revision.prepareDocument(source, { zones }), message);
    }
  });

  test("refuses a document that already carries signatures", async () => {
    const { certified } = await chain();
    await assert.rejects(revision.prepareDocument(certified, { zones: ZONES }), /already carries signatures/);
  });
});

describe("signature revisions", () => {
  test("append only new and changed objects, with /Prev to the previous xref", async () => {
    const { prepared, certification, certified, first } = await chain();
    for (const [before, after] of [
      [prepared, certification.bytes],
      [certified, first.bytes],
    ]) {
      assert.deepEqual(after.subarray(0, before.length), before, "earlier bytes unchanged");
      const previous = revision.lastSection(before);
      const last = revision.lastSection(after);
      assert.ok(last.offset > before.length);
      const { entries, trailer } = parseSection(after, last.offset);
      assert.match(trailer, new RegExp(`/Prev ${previous.offset}\\b`));
      assert.ok(last.size >= previous.size);
      for (const [number, offset] of entries) {
        assert.ok(offset >= before.length, "every entry points into the new revision");
        assert.ok(text(after.subarray(offset, offset + 20)).startsWith(`${number} 0 obj`));
      }
      // Nothing but these objects in the appended part.
      const appended = text(after.subarray(before.length));
      assert.equal(appended.match(/^\d+ \d+ obj$/gm).length, entries.size);
      assert.ok(!/\/Type \/Pages?\b/.test(appended), "no page object rewritten");
      assert.ok(!/\/Annots/.test(appended), "no /Annots rewritten");
    }
    assert.deepEqual(revision.revisionOffsets(first.bytes).length, 3);
  });

  test("the certification is a DocMDP P=2 signature referenced from /Perms", async () => {
    const { prepared, certification } = await chain();
    const appended = text(certification.bytes.subarray(prepared.length));
    const perms = /\/Perms\s*<<\s*\/DocMDP (\d+) 0 R\s*>>/;
    assert.match(appended, perms);
    const sigNumber = perms.exec(appended)[1];
    const sig = new RegExp(`\\n${sigNumber} 0 obj\\n<< /Type /Sig [^\\n]*`).exec(appended)[0];
    assert.match(sig, /\/SubFilter \/ETSI\.CAdES\.detached/);
    assert.match(sig, /\/TransformMethod \/DocMDP \/TransformParams << \/Type \/TransformParams \/P 2 \/V \/1\.2 >>/);
    assert.match(sig, /\/M \(D:20261102093000\+00'00'\)/);
  });

  test("a signer's signature carries a FieldMDP reference matching the field's /Lock", async () => {
    const { certified, first } = await chain();
    const appended = text(first.bytes.subarray(certified.length));
    assert.match(
      appended,
      /\/TransformMethod \/FieldMDP \/Data \d+ 0 R \/TransformParams << \/Type \/TransformParams \/Action \/Include \/Fields \[\(s1_name\) \(s1_ok\)\] \/V \/1\.2 >>/,
    );
    const fields = Object.fromEntries(
      (await revision.describeFields(first.bytes)).map((field) => [field.name, field]),
    );
    assert.equal(fields.s1_name.value, "Zoë Martin");
    assert.equal(fields.s1_ok.value, "/Yes");
    assert.equal(fields.s1_signature.signed, true);
    assert.equal(fields.s2_signature.signed, false);
  });

  test("the byte range covers the whole file but the /Contents placeholder, and the digest is its SHA-256", async () => {
    const { first } = await chain();
    const [start, length1, start2, length2] = first.byteRange;
    const bytes = first.bytes;
    assert.equal(start, 0);
    assert.equal(start2 + length2, bytes.length);
    assert.equal(start2 - length1, revision.CONTENTS_PLACEHOLDER_BYTES * 2 + 2);
    assert.equal(String.fromCharCode(bytes[length1]), "<");
    assert.equal(String.fromCharCode(bytes[start2 - 1]), ">");
    assert.match(text(bytes.subarray(length1 + 1, start2 - 1)), /^0+$/);
    // The /ByteRange written in the file says the same.
    const written = /\/ByteRange \[([\d ]+?)\s*\]/.exec(text(bytes.subarray(first.baseLength)))[1];
    assert.deepEqual(written.split(" ").map(Number), first.byteRange);
    assert.deepEqual(first.digest, sha256(bytes.subarray(0, length1), bytes.subarray(start2)));
    assert.deepEqual(await revision.byteRangeDigest(bytes, first.byteRange), first.digest);
  });

  test("embedding the CMS changes only the placeholder, so the digest still holds", async () => {
    const { first } = await chain();
    const cms = fakeCms(4321);
    const signed = revision.embedCms(first, cms);
    assert.equal(signed.length, first.bytes.length);
    const [, length1, start2] = first.byteRange;
    assert.deepEqual(signed.subarray(0, length1 + 1), first.bytes.subarray(0, length1 + 1));
    assert.deepEqual(signed.subarray(start2 - 1), first.bytes.subarray(start2 - 1));
    const hex = text(signed.subarray(length1 + 1, start2 - 1));
    assert.equal(hex.slice(0, cms.length * 2), Buffer.from(cms).toString("hex"));
    assert.match(hex.slice(cms.length * 2), /^0+$/);
    assert.deepEqual(await revision.byteRangeDigest(signed, first.byteRange), first.digest);
    assert.throws(() => revision.embedCms(first, new Uint8Array(revision.CONTENTS_PLACEHOLDER_BYTES + 1)), /does not fit/);
  });

  test("a drawn (PNG) signature becomes the widget's appearance", async () => {
    const { certified, first } = await chain();
    // 1x1 white PNG
    const png = Buffer.from(
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==",
      "base64",
    );
    const second = await revision.prepareSignature(revision.embedCms(first, fakeCms()), {
      field: "s2_signature",
      values: { s2_initials: "ZM" },
      appearance: { image: { bytes: new Uint8Array(png), type: "png" } },
      time: TIME,
    });
    const appended = text(second.bytes.subarray(second.baseLength));
    assert.match(appended, /\/Subtype \/Image/);
    assert.match(appended, /\/XObject\s*<<\s*\/Im0 \d+ 0 R\s*>>/);
    assert.ok(certified.length < second.baseLength);
  });

  test("refuses what would break earlier signatures or the signing order", async () => {
    const { prepared, certified, first } = await chain();
    const signedOnce = revision.embedCms(first, fakeCms());
    await assert.rejects(
      revision.prepareSignature(signedOnce, { field: "s2_signature", values: { s1_name: "Mallory" } }),
      /s1_name is not a field of this signer/,
    );
    await assert.rejects(revision.prepareSignature(signedOnce, { field: "s1_signature" }), /signed already/);
    await assert.rejects(revision.prepareSignature(prepared, { field: "s1_signature" }), /not certified/);
    await assert.rejects(revision.prepareCertification(certified), /first signature/);
    await assert.rejects(revision.prepareSignature(certified, { field: "nope" }), /no field named nope/);
    await assert.rejects(revision.prepareSignature(certified, { field: "s1_name" }), /not a signature field/);
  });

  test("refuses a file that ends with a cross-reference stream", async () => {
    const withStreams = await sourcePdf({ objectStreams: true });
    assert.throws(() => revision.lastSection(withStreams), /cross-reference stream/);
    await assert.rejects(revision.prepareCertification(withStreams), /cross-reference stream/);
    // ...which revision 0's rewrite takes care of.
    const prepared = await revision.prepareDocument(withStreams, { zones: ZONES });
    assert.ok(revision.lastSection(prepared).offset > 0);
  });
});
