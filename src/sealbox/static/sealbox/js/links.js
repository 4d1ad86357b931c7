// Sealbox: recipient links, {BASE_URL}/o/{grant_token}#{link_secret}.
// Same rules as the Python module sealbox.crypto.links:
//   BASE_URL      http:// or https:// (lowercase), host name or [IPv6], optional port,
//                 optional path of segments [A-Za-z0-9._~-]+; trailing slash dropped;
//                 the host compares case-insensitively, the path exactly.
//   grant_token   16 to 128 characters of A-Z a-z 0-9 _ -
//   link_secret   16 bytes, canonical base64url without padding (22 characters).
// Anything else is rejected with CryptoError. Browsers never send the fragment.

import { fromBase64url, toBase64url } from "./b64.js";
import { CryptoError, randomBytes } from "./ece.js";

export { CryptoError };

export const LINK_SECRET_LENGTH = 16;

const BASE =
  "(?<origin>https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])" +
  "(?::[0-9]{1,5})?)(?<path>(?:/[A-Za-z0-9._~-]+)*)";
const TOKEN = "[A-Za-z0-9_-]{16,128}";
const SECRET = "[A-Za-z0-9_-]{22}";
const BASE_URL_RE = new RegExp(`^${BASE}/?$`);
export const GRANT_TOKEN_RE = new RegExp(`^${TOKEN}$`);
const LINK_RE = new RegExp(`^${BASE}/o/(?<token>${TOKEN})#(?<secret>${SECRET})$`);

/** Validate a base URL; return it without trailing slash, host lowercased. */
export function normaliseBaseUrl(baseUrl) {
  const match = typeof baseUrl === "string" ? BASE_URL_RE.exec(baseUrl) : null;
  if (match === null) throw new CryptoError("bad base URL: expected http(s)://host[:port][/path]");
  return match.groups.origin.toLowerCase() + match.groups.path;
}

/** The link secret as it appears in the URL fragment (22 characters). */
export function encodeLinkSecret(linkSecret) {
  if (!(linkSecret instanceof Uint8Array) || linkSecret.length !== LINK_SECRET_LENGTH) {
    throw new CryptoError(`bad link secret: expected ${LINK_SECRET_LENGTH} bytes`);
  }
  return toBase64url(linkSecret);
}

/** Decode a URL fragment (with or without its leading "#", e.g. location.hash). */
export function decodeLinkSecret(text) {
  if (typeof text === "string" && text.startsWith("#")) text = text.slice(1);
  return fromBase64url(text, { length: LINK_SECRET_LENGTH, what: "link secret" });
}

/** A fresh random grant token (22 characters, 128 bits). */
export function newGrantToken() {
  return toBase64url(randomBytes(16));
}

/** Build `${baseUrl}/o/${grantToken}#${linkSecret}`. */
export function buildLink(baseUrl, grantToken, linkSecret) {
  const base = normaliseBaseUrl(baseUrl);
  if (typeof grantToken !== "string" || !GRANT_TOKEN_RE.test(grantToken)) {
    throw new CryptoError("bad grant token: expected 16-128 characters of A-Z a-z 0-9 _ -");
  }
  return `${base}/o/${grantToken}#${encodeLinkSecret(linkSecret)}`;
}

/**
 * Parse a recipient link into {baseUrl, grantToken, linkSecret}; with `baseUrl`, also
 * require that the link belongs there.
 */
export function parseLink(link, baseUrl = undefined) {
  const match = typeof link === "string" ? LINK_RE.exec(link) : null;
  if (match === null) {
    throw new CryptoError("bad link: expected {BASE_URL}/o/{grant_token}#{link_secret}");
  }
  const found = match.groups.origin.toLowerCase() + match.groups.path;
  if (baseUrl !== undefined && baseUrl !== null && found !== normaliseBaseUrl(baseUrl)) {
    throw new CryptoError("bad link: it does not belong to this server");
  }
  return {
    baseUrl: found,
    grantToken: match.groups.token,
    linkSecret: decodeLinkSecret(match.groups.secret),
  };
}
