// Sealbox: PDF revisions for signatures made over a digest (SIGNING.md §1–2, §7).
//
// The server never sees the document: the sender's browser builds revision 0 (the form
// fields of every signer), each signature is an incremental update appended to the
// previous bytes, and only the SHA-256 of the signed byte ranges leaves the browser. The
// server answers with a CMS (DER), which goes into the placeholder.
//
//   prepareDocument(pdf, {zones})      -> revision 0: pdf-lib rewrites the file once, object
//                                         streams off (so every later revision appends to a
//                                         classic xref), with one AcroForm field per zone
//   prepareCertification(pdf, opts)    -> {bytes, byteRange, digest, baseLength}: the
//                                         organisation's DocMDP P=2 certification
//   prepareSignature(pdf, opts)        -> the same for one signer: fills their fields, sets
//                                         the signature widget's appearance, and a FieldMDP
//                                         /Reference matching the field's /Lock
//   embedCms(prepared, cms)            -> the final bytes, CMS written as hex into /Contents
//
// Later revisions are written by this module, not by pdf-lib: only the new and changed
// objects, a classic xref section and a trailer with /Prev. Anything else a revision could
// touch (page content, annotations other than our widgets) would make validators flag the
// earlier signatures as modified.
//
// No DOM: runs in the browser and under Node 20 (WebCrypto is globalThis.crypto there).

import {
  PDFArray,
  PDFDict,
  PDFDocument,
  PDFHexString,
  PDFName,
  PDFRef,
  PDFString,
  ParseSpeeds,
  StandardFontEmbedder,
  StandardFonts,
} from "../vendor/pdf-lib/pdf-lib.esm.min.js";

export const CONTENTS_PLACEHOLDER_BYTES = 8192;
export const CERTIFICATION_FIELD = "sealbox_certification";
export const ZONE_TYPES = ["signature", "initials", "date", "text", "checkbox"];
// DocMDP P=2: filling in forms and signing allowed, nothing else.
export const DOCMDP_FORM_FILLING = 2;

const FIELD_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const FONT_KEY = "Helv";
const BYTE_RANGE_WIDTH = 48; // room for four 10-digit offsets and spaces
const PRINT_FLAG = 4;
const REQUIRED_FLAG = 2;

export class PdfRevisionError extends Error {
  constructor(message) {
    super(message);
    this.name = "PdfRevisionError";
  }
}

// --- bytes ------------------------------------------------------------------------------

function ascii(text) {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7e) throw new PdfRevisionError("internal: non-ASCII text in PDF syntax");
    out[i] = code;
  }
  return out;
}

function concat(chunks) {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// One character per byte whatever the byte (windows-1252 in browsers maps bytes 1:1 too),
// so string indices are byte offsets.
const latin1 = new TextDecoder("latin1");

function toHex(bytes) {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

function serialise(object) {
  const out = new Uint8Array(object.sizeInBytes());
  object.copyBytesInto(out, 0);
  return out;
}

function pdfDate(date) {
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return (
    `D:${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}` +
    `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}+00'00'`
  );
}

function textString(text) {
  // UTF-16BE with a BOM, hex: any Unicode text, nothing to escape.
  return PDFHexString.fromText(String(text)).toString();
}

// --- the last cross-reference section -----------------------------------------------

/** The offset of the last xref section, the trailer's /Size, and the section's kind. */
export function lastSection(bytes) {
  const tailStart = Math.max(0, bytes.length - 2048);
  const tail = latin1.decode(bytes.subarray(tailStart));
  const at = tail.lastIndexOf("startxref");
  if (at < 0) throw new PdfRevisionError("not a PDF: no startxref");
  const match = /^startxref\s+(\d+)\s+%%EOF/.exec(tail.slice(at));
  if (!match) throw new PdfRevisionError("not a PDF: malformed startxref");
  const offset = Number(match[1]);
  const startxref = tailStart + at;
  if (!(offset > 0 && offset < startxref)) {
    throw new PdfRevisionError("not a PDF: startxref out of range");
  }
  const section = latin1.decode(bytes.subarray(offset, startxref));
  if (!section.startsWith("xref")) {
    throw new PdfRevisionError(
      "the PDF ends with a cross-reference stream: only a prepared document (classic " +
        "cross-reference table) can take a signature revision",
    );
  }
  const trailer = section.slice(section.lastIndexOf("trailer"));
  const size = /\/Size\s+(\d+)/.exec(trailer);
  if (!size) throw new PdfRevisionError("not a PDF: trailer without /Size");
  return { offset, size: Number(size[1]) };
}

/** Offsets of every xref section, newest first (a revision each), following /Prev. */
export function revisionOffsets(bytes) {
  const offsets = [];
  let { offset } = lastSection(bytes);
  while (offset !== undefined) {
    if (offsets.includes(offset)) throw new PdfRevisionError("/Prev loop");
    offsets.push(offset);
    const text = latin1.decode(bytes.subarray(offset));
    const trailer = text.slice(text.indexOf("trailer"), text.indexOf("startxref"));
    const prev = /\/Prev\s+(\d+)/.exec(trailer);
    offset = prev ? Number(prev[1]) : undefined;
  }
  return offsets;
}

// --- reading with pdf-lib -------------------------------------------------------------

async function load(bytes) {
  try {
    return await PDFDocument.load(bytes, {
      updateMetadata: false,
      parseSpeed: ParseSpeeds.Fastest,
    });
  } catch (error) {
    if (error && error.name === "EncryptedPDFError") {
      throw new PdfRevisionError("the PDF is encrypted: remove its password first");
    }
    throw new PdfRevisionError(`the PDF cannot be read: ${error && error.message}`);
  }
}

function nameOf(dict) {
  const title = dict.lookup(PDFName.of("T"));
  return title ? title.decodeText() : undefined;
}

/** [ref, dict] of every terminal field, by walking /Fields and /Kids. */
function allFields(doc) {
  const acroForm = doc.catalog.lookup(PDFName.of("AcroForm"));
  if (!(acroForm instanceof PDFDict)) return [];
  const out = [];
  const walk = (array, depth) => {
    if (!(array instanceof PDFArray) || depth > 16) return;
    for (let i = 0; i < array.size(); i++) {
      const ref = array.get(i);
      const dict = array.lookup(i);
      if (!(dict instanceof PDFDict)) continue;
      const kids = dict.lookup(PDFName.of("Kids"));
      if (kids instanceof PDFArray && kids.size() && nameOf(kids.lookup(0)) !== undefined) {
        walk(kids, depth + 1);
      } else {
        out.push([ref, dict]);
      }
    }
  };
  walk(acroForm.lookup(PDFName.of("Fields")), 0);
  return out;
}

function fieldType(dict) {
  const type = dict.lookup(PDFName.of("FT"));
  return type ? type.asString() : undefined;
}

function isSigned(dict) {
  return fieldType(dict) === "/Sig" && dict.get(PDFName.of("V")) !== undefined;
}

/** The document's fields: name, type (/Tx, /Btn, /Sig), whether signed, lock list. */
export async function describeFields(bytes) {
  const doc = await load(bytes);
  return allFields(doc).map(([, dict]) => {
    const lock = dict.lookup(PDFName.of("Lock"));
    const locked = lock instanceof PDFDict ? lock.lookup(PDFName.of("Fields")) : undefined;
    const value = dict.lookup(PDFName.of("V"));
    return {
      name: nameOf(dict),
      type: fieldType(dict),
      signed: isSigned(dict),
      value:
        value && fieldType(dict) !== "/Sig"
          ? value instanceof PDFName
            ? value.asString()
            : value.decodeText()
          : undefined,
      lock: locked instanceof PDFArray ? locked.asArray().map((item) => item.decodeText()) : [],
    };
  });
}

// --- appearance streams -------------------------------------------------------------

const helvetica = StandardFontEmbedder.for(StandardFonts.Helvetica);

function encodable(text) {
  // WinAnsi (Helvetica's encoding) cannot show every character: show "?" for those; the
  // field's /V keeps the exact text.
  let out = "";
  for (const char of String(text).replace(/[\r\n\t]+/g, " ")) {
    try {
      helvetica.encodeText(char);
      out += char;
    } catch {
      out += "?";
    }
  }
  return out;
}

function fontSizeFor(height) {
  return Math.max(4, Math.min(12, (height - 2) * 0.7));
}

function textOperators(text, width, height, initialSize) {
  const shown = encodable(text);
  let size = initialSize;
  const room = Math.max(1, width - 4);
  const measured = helvetica.widthOfTextAtSize(shown, size);
  if (measured > room) size = Math.max(3, (size * room) / measured);
  const baseline = (height - size * 0.72) / 2;
  return (
    `/Tx BMC q BT /${FONT_KEY} ${fmt(size)} Tf 0 g 2 ${fmt(baseline)} Td ` +
    `${helvetica.encodeText(shown).toString()} Tj ET Q EMC`
  );
}

function fmt(n) {
  return Number(n.toFixed(3)).toString();
}

function rectOf(dict) {
  const rect = dict
    .lookup(PDFName.of("Rect"))
    .asArray()
    .map((n) => n.asNumber());
  return {
    width: Math.abs(rect[2] - rect[0]),
    height: Math.abs(rect[3] - rect[1]),
  };
}

function appearance(context, content, width, height, resources) {
  const stream = context.stream(ascii(content), {
    Type: "XObject",
    Subtype: "Form",
    BBox: [0, 0, width, height],
    Resources: resources || {},
  });
  return context.register(stream);
}

// --- incremental updates ------------------------------------------------------------

class Revision {
  constructor(bytes, doc, section) {
    this.base = bytes;
    this.doc = doc;
    this.context = doc.context;
    this.section = section;
    // New objects take numbers past the trailer's /Size, even if free entries end it.
    this.context.largestObjectNumber = Math.max(
      this.context.largestObjectNumber,
      section.size - 1,
    );
    this.firstNew = this.context.largestObjectNumber + 1;
    this.changed = new Map();
    this.raw = new Map(); // ref -> serialised object text we write ourselves
  }

  static async open(bytes) {
    const section = lastSection(bytes);
    const doc = await load(bytes);
    return new Revision(bytes, doc, section);
  }

  touch(ref) {
    if (!(ref instanceof PDFRef)) throw new PdfRevisionError("internal: a direct object changed");
    this.changed.set(ref.tag, ref);
  }

  field(name) {
    const found = allFields(this.doc).find(([, dict]) => nameOf(dict) === name);
    if (!found) throw new PdfRevisionError(`no field named ${name}`);
    if (!(found[0] instanceof PDFRef)) throw new PdfRevisionError(`field ${name} is direct`);
    return found;
  }

  /** The revision appended to the base bytes, with the offsets of what we wrote raw. */
  write() {
    const refs = new Map(this.changed);
    for (const [ref] of this.context.enumerateIndirectObjects()) {
      if (ref.objectNumber >= this.firstNew) refs.set(ref.tag, ref);
    }
    for (const ref of this.raw.keys()) refs.set(ref.tag, ref);
    const ordered = [...refs.values()].sort((a, b) => a.objectNumber - b.objectNumber);

    const chunks = [];
    let position = this.base.length;
    const push = (chunk) => {
      chunks.push(chunk);
      position += chunk.length;
    };
    const last = this.base[this.base.length - 1];
    if (last !== 0x0a && last !== 0x0d) push(ascii("\n"));

    const offsets = new Map();
    const rawOffsets = new Map();
    for (const ref of ordered) {
      offsets.set(ref.objectNumber, [position, ref.generationNumber]);
      push(ascii(`${ref.objectNumber} ${ref.generationNumber} obj\n`));
      if (this.raw.has(ref)) {
        rawOffsets.set(ref, position);
        push(ascii(this.raw.get(ref)));
      } else {
        const object = this.context.lookup(ref);
        if (object === undefined) throw new PdfRevisionError(`internal: ${ref} has no object`);
        push(serialise(object));
      }
      push(ascii("\nendobj\n"));
    }

    const xrefOffset = position;
    let xref = "xref\n";
    for (let i = 0; i < ordered.length; ) {
      let j = i;
      while (j + 1 < ordered.length && ordered[j + 1].objectNumber === ordered[j].objectNumber + 1) j++;
      xref += `${ordered[i].objectNumber} ${j - i + 1}\n`;
      for (let k = i; k <= j; k++) {
        const [offset, generation] = offsets.get(ordered[k].objectNumber);
        xref += `${String(offset).padStart(10, "0")} ${String(generation).padStart(5, "0")} n\r\n`;
      }
      i = j + 1;
    }
    const info = this.context.trailerInfo;
    const size = Math.max(this.section.size, this.context.largestObjectNumber + 1);
    let trailer = `trailer\n<< /Size ${size} /Root ${info.Root.toString()}`;
    if (info.Info) trailer += ` /Info ${info.Info.toString()}`;
    if (info.ID) trailer += ` /ID ${info.ID.toString()}`;
    trailer += ` /Prev ${this.section.offset} >>\nstartxref\n${xrefOffset}\n%%EOF\n`;
    push(ascii(xref + trailer));
    return { bytes: concat([this.base, ...chunks]), rawOffsets };
  }
}

// --- revision 0 ------------------------------------------------------------------------

function checkZones(zones) {
  if (!Array.isArray(zones) || zones.length === 0) throw new PdfRevisionError("no zones");
  const names = new Set([CERTIFICATION_FIELD]);
  const signatures = new Map();
  for (const zone of zones) {
    if (!FIELD_NAME.test(zone.name || "")) {
      throw new PdfRevisionError(`field name ${JSON.stringify(zone.name)}: letters, digits, _ and - only`);
    }
    if (names.has(zone.name)) throw new PdfRevisionError(`field name ${zone.name} twice`);
    names.add(zone.name);
    if (!ZONE_TYPES.includes(zone.type)) throw new PdfRevisionError(`zone type ${zone.type}`);
    if (!FIELD_NAME.test(zone.signer || "")) throw new PdfRevisionError(`zone ${zone.name}: signer`);
    if (!(Array.isArray(zone.rect) && zone.rect.length === 4 && zone.rect.every(Number.isFinite))) {
      throw new PdfRevisionError(`zone ${zone.name}: rect must be [x1, y1, x2, y2] in points`);
    }
    if (zone.type === "signature") {
      if (signatures.has(zone.signer)) {
        throw new PdfRevisionError(`signer ${zone.signer} has two signature zones`);
      }
      signatures.set(zone.signer, zone.name);
    }
  }
  for (const zone of zones) {
    if (!signatures.has(zone.signer)) {
      throw new PdfRevisionError(`signer ${zone.signer} has no signature zone`);
    }
  }
}

/**
 * Revision 0: the document with one AcroForm field per zone, written once by pdf-lib
 * with object streams off (classic xref). Each field is its own widget (merged
 * field/widget dictionary) with an appearance stream, in its page's /Annots; each
 * signer's signature field locks (FieldMDP /Lock) that signer's other fields. Also an
 * invisible signature field for the organisation's certification.
 *
 * zones: [{name, type, signer, page (0-based), rect: [x1, y1, x2, y2] in PDF points,
 *          required?, label?}] — names flat (no dots), one signature zone per signer.
 * Refuses encrypted PDFs and PDFs that already carry signatures.
 */
export async function prepareDocument(bytes, { zones }) {
  checkZones(zones);
  const doc = await load(bytes);
  const context = doc.context;
  if (doc.catalog.get(PDFName.of("Perms")) !== undefined || allFields(doc).some(([, d]) => isSigned(d))) {
    throw new PdfRevisionError("the PDF already carries signatures");
  }
  const existing = new Set(allFields(doc).map(([, dict]) => nameOf(dict)));
  for (const zone of zones) {
    if (existing.has(zone.name)) throw new PdfRevisionError(`the PDF already has a field ${zone.name}`);
  }
  const pages = doc.getPages();

  const acroForm = doc.catalog.getOrCreateAcroForm();
  const fontRef = context.nextRef();
  helvetica.embedIntoContext(context, fontRef);
  let resources = acroForm.dict.lookup(PDFName.of("DR"));
  if (!(resources instanceof PDFDict)) {
    resources = context.obj({});
    acroForm.dict.set(PDFName.of("DR"), resources);
  }
  let fonts = resources.lookup(PDFName.of("Font"));
  if (!(fonts instanceof PDFDict)) {
    fonts = context.obj({});
    resources.set(PDFName.of("Font"), fonts);
  }
  fonts.set(PDFName.of(FONT_KEY), fontRef);
  acroForm.dict.set(PDFName.of("DA"), PDFString.of(`/${FONT_KEY} 0 Tf 0 g`));
  // SignaturesExist | AppendOnly: readers must save signed files incrementally.
  acroForm.dict.set(PDFName.of("SigFlags"), context.obj(3));
  acroForm.dict.delete(PDFName.of("NeedAppearances"));
  const fontResources = { Font: { [FONT_KEY]: fontRef } };

  const addWidget = (pageIndex, entries) => {
    const page = pages[pageIndex];
    if (!page) throw new PdfRevisionError(`no page ${pageIndex}`);
    const dict = context.obj({ Type: "Annot", Subtype: "Widget", P: page.ref, ...entries });
    const ref = context.register(dict);
    let annots = page.node.lookup(PDFName.of("Annots"));
    if (!(annots instanceof PDFArray)) {
      annots = context.obj([]);
      page.node.set(PDFName.of("Annots"), annots);
    }
    annots.push(ref);
    acroForm.addField(ref);
    return ref;
  };

  for (const zone of zones) {
    const [x1, y1, x2, y2] = zone.rect;
    const rect = [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
    const width = rect[2] - rect[0];
    const height = rect[3] - rect[1];
    const common = {
      T: PDFString.of(zone.name),
      Rect: rect,
      F: PRINT_FLAG,
      ...(zone.label ? { TU: PDFHexString.fromText(String(zone.label)) } : {}),
    };
    const required = zone.required === false ? 0 : REQUIRED_FLAG;
    if (zone.type === "signature") {
      const locked = zones
        .filter((other) => other.signer === zone.signer && other.type !== "signature")
        .map((other) => PDFString.of(other.name));
      addWidget(zone.page, {
        ...common,
        FT: "Sig",
        Ff: required,
        Lock: { Type: "SigFieldLock", Action: "Include", Fields: locked },
        AP: { N: appearance(context, "", width, height) },
      });
    } else if (zone.type === "checkbox") {
      const box = `q 0 G 0.8 w 0.5 0.5 ${fmt(width - 1)} ${fmt(height - 1)} re S Q`;
      const cross =
        `${box} q 0 G 1.2 w 2 2 m ${fmt(width - 2)} ${fmt(height - 2)} l ` +
        `2 ${fmt(height - 2)} m ${fmt(width - 2)} 2 l S Q`;
      addWidget(zone.page, {
        ...common,
        FT: "Btn",
        Ff: required,
        V: "Off",
        AS: "Off",
        MK: {},
        AP: {
          N: {
            Yes: appearance(context, cross, width, height),
            Off: appearance(context, box, width, height),
          },
        },
      });
    } else {
      const size = fontSizeFor(height);
      addWidget(zone.page, {
        ...common,
        FT: "Tx",
        Ff: required,
        DA: PDFString.of(`/${FONT_KEY} ${fmt(size)} Tf 0 g`),
        MK: {},
        AP: { N: appearance(context, "/Tx BMC EMC", width, height, fontResources) },
      });
    }
  }
  // The organisation's certification: an invisible signature field (zero rectangle,
  // print + locked flags), like the ones validators expect for a seal.
  addWidget(0, { T: PDFString.of(CERTIFICATION_FIELD), FT: "Sig", Rect: [0, 0, 0, 0], F: 132 });

  if (!context.trailerInfo.ID) {
    const id = PDFHexString.of(toHex(globalThis.crypto.getRandomValues(new Uint8Array(16))));
    context.trailerInfo.ID = context.obj([id, id]);
  }
  return doc.save({ useObjectStreams: false, addDefaultPage: false, updateFieldAppearances: false });
}

// --- signatures --------------------------------------------------------------------

function signatureDictionary({ time, reference, name, reason, location }) {
  let text = "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached";
  text += ` /M (${pdfDate(time)})`;
  if (name) text += ` /Name ${textString(name)}`;
  if (reason) text += ` /Reason ${textString(reason)}`;
  if (location) text += ` /Location ${textString(location)}`;
  text += ` /Reference [${reference}]`;
  text += ` /ByteRange [${" ".repeat(BYTE_RANGE_WIDTH)}]`;
  text += ` /Contents <${"0".repeat(CONTENTS_PLACEHOLDER_BYTES * 2)}> >>`;
  return text;
}

async function finishSignature(revision, sigRef, text) {
  revision.raw.set(sigRef, text);
  const { bytes, rawOffsets } = revision.write();
  const start = rawOffsets.get(sigRef);
  const contents = start + text.lastIndexOf("/Contents <") + "/Contents ".length;
  const after = contents + CONTENTS_PLACEHOLDER_BYTES * 2 + 2;
  const byteRange = [0, contents, after, bytes.length - after];
  const rangeText = byteRange.join(" ");
  if (rangeText.length > BYTE_RANGE_WIDTH) throw new PdfRevisionError("file too large");
  const rangeAt = start + text.indexOf("/ByteRange [") + "/ByteRange [".length;
  bytes.set(ascii(rangeText.padEnd(BYTE_RANGE_WIDTH, " ")), rangeAt);
  return {
    bytes,
    byteRange,
    digest: await byteRangeDigest(bytes, byteRange),
    baseLength: revision.base.length,
  };
}

function checkUnsigned(revision, name) {
  const [ref, dict] = revision.field(name);
  if (fieldType(dict) !== "/Sig") throw new PdfRevisionError(`${name} is not a signature field`);
  if (isSigned(dict)) throw new PdfRevisionError(`${name} is signed already`);
  return [ref, dict];
}

/**
 * The organisation's certification of revision 0 (DocMDP P=2), in a revision of its own:
 * a signature dictionary with a DocMDP /Reference, the catalog's /Perms pointing at it.
 * Must be the document's first signature. Returns {bytes, byteRange, digest, baseLength}.
 */
export async function prepareCertification(bytes, { time = new Date(), name, reason, location } = {}) {
  const revision = await Revision.open(bytes);
  if (allFields(revision.doc).some(([, dict]) => isSigned(dict))) {
    throw new PdfRevisionError("a certification must be the document's first signature");
  }
  const [fieldRef, field] = checkUnsigned(revision, CERTIFICATION_FIELD);
  const context = revision.context;
  const sigRef = context.nextRef();
  field.set(PDFName.of("V"), sigRef);
  revision.touch(fieldRef);
  revision.doc.catalog.set(PDFName.of("Perms"), context.obj({ DocMDP: sigRef }));
  revision.touch(context.trailerInfo.Root);
  const reference =
    "<< /Type /SigRef /TransformMethod /DocMDP /TransformParams " +
    `<< /Type /TransformParams /P ${DOCMDP_FORM_FILLING} /V /1.2 >> >>`;
  return finishSignature(revision, sigRef, signatureDictionary({ time, reference, name, reason, location }));
}

async function imageXObject(doc, image) {
  const embedded =
    image.type === "image/jpeg" || image.type === "jpeg"
      ? await doc.embedJpg(image.bytes)
      : await doc.embedPng(image.bytes);
  await embedded.embed();
  return embedded;
}

/**
 * One signer's revision: fill their fields (`values`: {name: text, or true/false for a
 * checkbox}; only fields their signature field locks), give the signature widget its
 * appearance (`appearance`: {text} typed, or {image: {bytes, type: "png" | "jpeg"}}
 * drawn), and the signature dictionary with a FieldMDP /Reference matching the field's
 * /Lock. Returns {bytes, byteRange, digest, baseLength}.
 */
export async function prepareSignature(
  bytes,
  { field: fieldName, values = {}, appearance: look, time = new Date(), name, reason, location },
) {
  const revision = await Revision.open(bytes);
  const context = revision.context;
  const certified = revision.doc.catalog.lookup(PDFName.of("Perms"));
  if (!(certified instanceof PDFDict)) throw new PdfRevisionError("the document is not certified");
  const [fieldRef, field] = checkUnsigned(revision, fieldName);
  const lock = field.lookup(PDFName.of("Lock"));
  const lockList = lock instanceof PDFDict ? lock.lookup(PDFName.of("Fields")) : undefined;
  if (!(lockList instanceof PDFArray)) throw new PdfRevisionError(`${fieldName} has no /Lock`);
  const own = lockList.asArray().map((item) => item.decodeText());

  // Appearances use the font revision 0 put in the form's resources (no new font object).
  const formResources = revision.doc.catalog
    .lookup(PDFName.of("AcroForm"), PDFDict)
    .lookup(PDFName.of("DR"), PDFDict);
  const fontRef = formResources.lookup(PDFName.of("Font"), PDFDict).get(PDFName.of(FONT_KEY));
  const fontResources = { Font: { [FONT_KEY]: fontRef } };

  for (const [key, value] of Object.entries(values)) {
    if (!own.includes(key)) throw new PdfRevisionError(`${key} is not a field of this signer`);
    const [ref, dict] = revision.field(key);
    const { width, height } = rectOf(dict);
    const type = fieldType(dict);
    if (type === "/Btn") {
      const state = value ? "Yes" : "Off";
      dict.set(PDFName.of("V"), PDFName.of(state));
      dict.set(PDFName.of("AS"), PDFName.of(state));
    } else if (type === "/Tx") {
      const da = dict.lookup(PDFName.of("DA"));
      const size = Number(/([\d.]+)\s+Tf/.exec(da ? da.decodeText() : "")?.[1]) || fontSizeFor(height);
      dict.set(PDFName.of("V"), PDFHexString.fromText(String(value)));
      dict.set(PDFName.of("AP"), context.obj({ N: appearance(context, textOperators(value, width, height, size), width, height, fontResources) }));
    } else {
      throw new PdfRevisionError(`${key}: cannot fill a ${type} field`);
    }
    revision.touch(ref);
  }

  const sigRef = context.nextRef();
  field.set(PDFName.of("V"), sigRef);
  if (look) {
    const { width, height } = rectOf(field);
    let content;
    let resources;
    if (look.image) {
      const image = await imageXObject(revision.doc, look.image);
      const scale = Math.min(width / image.width, height / image.height);
      const w = image.width * scale;
      const h = image.height * scale;
      content = `q ${fmt(w)} 0 0 ${fmt(h)} ${fmt((width - w) / 2)} ${fmt((height - h) / 2)} cm /Im0 Do Q`;
      resources = { XObject: { Im0: image.ref } };
    } else if (look.text) {
      content = textOperators(look.text, width, height, Math.min(24, height * 0.6)).replace("/Tx BMC ", "").replace(" EMC", "");
      resources = fontResources;
    } else {
      throw new PdfRevisionError("appearance: text or image");
    }
    field.set(PDFName.of("AP"), context.obj({ N: appearance(context, content, width, height, resources) }));
  }
  revision.touch(fieldRef);

  const fields = own.map((item) => PDFString.of(item).toString()).join(" ");
  const reference =
    `<< /Type /SigRef /TransformMethod /FieldMDP /Data ${context.trailerInfo.Root.toString()} ` +
    `/TransformParams << /Type /TransformParams /Action /Include /Fields [${fields}] /V /1.2 >> >>`;
  return finishSignature(revision, sigRef, signatureDictionary({ time, reference, name, reason, location }));
}

/** SHA-256 over the two byte ranges (WebCrypto, one shot). */
export async function byteRangeDigest(bytes, byteRange) {
  const [start1, length1, start2, length2] = byteRange;
  const signed = concat([
    bytes.subarray(start1, start1 + length1),
    bytes.subarray(start2, start2 + length2),
  ]);
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", signed));
}

/** The final bytes: the CMS (DER) written as hex into the /Contents placeholder. */
export function embedCms(prepared, cms) {
  const der = cms instanceof Uint8Array ? cms : new Uint8Array(cms);
  if (der.length > CONTENTS_PLACEHOLDER_BYTES) {
    throw new PdfRevisionError(`the CMS (${der.length} bytes) does not fit the placeholder`);
  }
  const [, contents, after] = prepared.byteRange;
  const out = prepared.bytes.slice();
  if (out[contents] !== 0x3c || out[after - 1] !== 0x3e) {
    throw new PdfRevisionError("the byte range does not frame a /Contents placeholder");
  }
  out.set(ascii(toHex(der)), contents + 1);
  return out;
}
