"""The crypto ES modules in real Chromium, cross-checked with sealbox.crypto (no Django).

A plain http.server on 127.0.0.1 serves ``src/sealbox/static/sealbox/js/`` and a test
page under a strict Content-Security-Policy (no inline script, no eval); the page loads
the modules with ``<script type="module">``. Payloads travel over real HTTP: the
browser streams downloads through ``decryptStream`` and uploads what ``encryptStream``
produced.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealbox.crypto import ece, grants, links
from sealbox.crypto._b64 import b64url_decode, b64url_encode

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "src" / "sealbox" / "static" / "sealbox" / "js"
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crypto test page</title>
<script type="module" src="/driver.js"></script></head><body></body></html>
"""
DRIVER = b"""
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
const [ece, grants, links, b64] = await Promise.all([
  import("/static/sealbox/js/ece.js"),
  import("/static/sealbox/js/grants.js"),
  import("/static/sealbox/js/links.js"),
  import("/static/sealbox/js/b64.js"),
]);
window.sealbox = { ece, grants, links, b64 };
document.documentElement.dataset.ready = "yes";
"""
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Store:
    """Payloads the server hands out (GET /payload/NAME) and receives (POST /upload/NAME)."""

    def __init__(self) -> None:
        self.payloads: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}


def make_handler(store: Store) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass

        def send_body(self, body: bytes, content_type: str, csp: bool = False) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if csp:
                self.send_header("Content-Security-Policy", CSP)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path
            if path == "/":
                self.send_body(PAGE, "text/html; charset=utf-8", csp=True)
            elif path == "/driver.js":
                self.send_body(DRIVER, "text/javascript")
            elif path.startswith("/static/sealbox/js/") and path.endswith(".js"):
                name = path.rsplit("/", 1)[1]
                file = JS_DIR / name
                if "/" in name or not file.is_file():
                    self.send_error(404)
                    return
                self.send_body(file.read_bytes(), "text/javascript")
            elif path.startswith("/payload/") and path[9:] in store.payloads:
                self.send_body(store.payloads[path[9:]], "application/octet-stream")
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            if not self.path.startswith("/upload/"):
                self.send_error(404)
                return
            length = int(self.headers["Content-Length"])
            store.uploads[self.path[8:]] = self.rfile.read(length)
            self.send_body(b"ok", "text/plain")

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Store]]:
    store = Store()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(store))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", store
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def chromium(request):
    """The suite's shared Chromium (``browser`` in tests/e2e/conftest.py) or our own.

    Only one Playwright sync instance can run in a thread, so reuse the shared browser
    when the suite provides one.
    """
    try:
        shared = request.getfixturevalue("browser")
    except pytest.FixtureLookupError:
        shared = None
    if shared is not None:
        yield shared
        return
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(server, chromium):
    base, _ = server
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(base + "/")
        page.wait_for_selector("html[data-ready=yes]", state="attached")
        yield page
        assert not errors
        assert page.evaluate("window.cspViolations") == []
    finally:
        context.close()


def test_modules_load_under_a_strict_csp(page):
    assert page.evaluate("typeof window.sealbox.ece.encryptStream") == "function"
    assert page.evaluate("window.isSecureContext") is True
    assert page.evaluate("window.cspViolations") == []


def test_rfc8188_vectors_in_the_browser(page):
    from tests.crypto.conftest import RFC_VECTORS

    for v in RFC_VECTORS:
        result = page.evaluate(
            """async ([body, ikm, rs, keyid, pad]) => {
                const { ece, b64 } = window.sealbox;
                const d = (t) => b64.fromBase64url(t);
                const plain = await ece.decrypt(d(body), d(ikm));
                const again = await ece.encrypt(plain, d(ikm),
                    { rs, salt: d(body).slice(0, 16), keyid: d(keyid), pad });
                return [new TextDecoder().decode(plain), b64.toBase64url(again)];
            }""",
            [b64url_encode(v.body), b64url_encode(v.ikm), v.rs, b64url_encode(v.keyid), v.pad],
        )
        assert result == [v.plaintext.decode(), b64url_encode(v.body)]


DOWNLOAD_JS = """async ([url, ikm]) => {
    const { ece, b64 } = window.sealbox;
    const response = await fetch(url);
    if (!response.ok) return { error: "HTTP", status: response.status };
    const parts = [];
    try {
        const stream = response.body.pipeThrough(ece.decryptStream(b64.fromBase64url(ikm)));
        for await (const part of stream) parts.push(part);
    } catch (error) {
        return { error: error.name, message: error.message, received: parts.length };
    }
    const plain = ece.concatBytes(parts);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", plain));
    return { size: plain.length, sha256: b64.toBase64url(digest) };
}"""


@pytest.mark.parametrize(
    "size, rs",
    [(0, 65536), (1, 18), (65519, 65536), (65520, 65536), (4079 * 3, 4096), (3_000_017, 65536)],
)
def test_python_encrypts_browser_decrypts_a_download(page, server, size, rs):
    base, store = server
    ikm = os.urandom(32)
    plaintext = os.urandom(size)
    name = f"py-{size}-{rs}"
    store.payloads[name] = ece.encrypt(plaintext, ikm, rs=rs)
    result = page.evaluate(DOWNLOAD_JS, [f"{base}/payload/{name}", b64url_encode(ikm)])
    assert result == {
        "size": size,
        "sha256": b64url_encode(hashlib.sha256(plaintext).digest()),
    }


@pytest.mark.parametrize(
    "cut, message",
    [
        ("last-record", "truncated stream"),
        ("mid-record", "authentication failed for record 4"),
        ("header", "bad header"),
    ],
)
def test_browser_rejects_a_truncated_download(page, server, cut, message):
    base, store = server
    ikm = os.urandom(32)
    body = ece.encrypt(os.urandom(5 * 65519), ikm)  # 5 full records
    end = {"last-record": len(body) - 65536, "mid-record": len(body) - 999, "header": 10}[cut]
    store.payloads[f"cut-{cut}"] = body[:end]
    result = page.evaluate(DOWNLOAD_JS, [f"{base}/payload/cut-{cut}", b64url_encode(ikm)])
    assert result["error"] == "CryptoError"
    assert message in result["message"]


def test_browser_rejects_a_tampered_download_and_a_wrong_key(page, server):
    base, store = server
    ikm = os.urandom(32)
    body = bytearray(ece.encrypt(os.urandom(200_000), ikm))
    body[21 + 65536 + 100] ^= 1
    store.payloads["tampered"] = bytes(body)
    store.payloads["good"] = ece.encrypt(b"x" * 1000, ikm)
    result = page.evaluate(DOWNLOAD_JS, [f"{base}/payload/tampered", b64url_encode(ikm)])
    assert result["error"] == "CryptoError"
    assert "record 1" in result["message"]
    assert result["received"] == 1  # only the authenticated first record came out
    wrong = b64url_encode(os.urandom(32))
    result = page.evaluate(DOWNLOAD_JS, [f"{base}/payload/good", wrong])
    assert result["error"] == "CryptoError"


UPLOAD_JS = """async ([url, size, rs, salt, ikm, seed]) => {
    const { ece, b64 } = window.sealbox;
    // Deterministic plaintext generated in 100 000-byte pieces (same as Python's).
    let sent = 0;
    let n = 0;
    const source = new ReadableStream({
        async pull(controller) {
            if (sent >= size) return controller.close();
            const length = Math.min(100000, size - sent);
            const piece = new Uint8Array(length);
            for (let i = 0; i < length; i++) piece[i] = (seed + n * 131 + i * 7) & 255;
            sent += length;
            n++;
            controller.enqueue(piece);
        },
    }, { highWaterMark: 0 });
    const options = { rs, salt: salt ? b64.fromBase64url(salt) : undefined };
    const encrypted = source.pipeThrough(ece.encryptStream(b64.fromBase64url(ikm), options));
    const blob = await new Response(encrypted).blob();
    const response = await fetch(url, { method: "POST", body: blob });
    return { status: response.status, size: blob.size, expected: ece.encryptedSize(size, rs) };
}"""


def plaintext_like_browser(size: int, seed: int) -> bytes:
    out = bytearray()
    n = 0
    while len(out) < size:
        length = min(100_000, size - len(out))
        out += bytes((seed + n * 131 + i * 7) & 255 for i in range(length))
        n += 1
    return bytes(out)


@pytest.mark.parametrize(
    "size, rs", [(0, 65536), (1, 25), (65519, 65536), (65520, 65536), (1_234_567, 65536)]
)
def test_browser_encrypts_an_upload_python_decrypts(page, server, size, rs):
    base, store = server
    ikm, salt = os.urandom(32), os.urandom(16)
    seed = size % 251
    name = f"js-{size}-{rs}"
    result = page.evaluate(
        UPLOAD_JS,
        [f"{base}/upload/{name}", size, rs, b64url_encode(salt), b64url_encode(ikm), seed],
    )
    assert result["status"] == 200
    assert result["size"] == result["expected"] == ece.encrypted_size(size, rs)
    body = store.uploads[name]
    plaintext = plaintext_like_browser(size, seed)
    assert ece.decrypt(body, ikm) == plaintext
    assert body == ece.encrypt(plaintext, ikm, rs=rs, salt=salt)  # byte for byte


def test_browser_uses_a_fresh_salt(page, server):
    base, store = server
    ikm = os.urandom(32)
    for name in ("salt-a", "salt-b"):
        page.evaluate(UPLOAD_JS, [f"{base}/upload/{name}", 10, 65536, None, b64url_encode(ikm), 1])
    a, b = store.uploads["salt-a"], store.uploads["salt-b"]
    assert a[:16] != b[:16]
    assert ece.decrypt(a, ikm) == ece.decrypt(b, ikm) == plaintext_like_browser(10, 1)


def test_grants_and_password_between_python_and_the_browser(page):
    grant_id = "7c0e5b7a-1f2d-4e3c-9a8b-6d5e4f3a2b1c"
    password = "pässwörd typed in a browser"
    content_key = grants.new_content_key()
    password_key = grants.derive_password_key(password, grant_id)
    py_grant = grants.create_grant(content_key, grant_id, password_key=password_key)
    result = page.evaluate(
        """async ([grantId, password, link, server, wrapped, contentKey]) => {
            const { grants, b64 } = window.sealbox;
            const d = (t) => b64.fromBase64url(t);
            const e = (b) => b64.toBase64url(b);
            const passwordKey = await grants.derivePasswordKey(password, grantId);
            const verifier = await grants.passwordVerifier(passwordKey, grantId);
            const unwrapped = await grants.unwrapGrant(grantId, d(link), d(server), d(wrapped),
                { passwordKey });
            let wrong = null;
            try {
                await grants.unwrapGrant(grantId, d(link), d(server), d(wrapped),
                    { password: password + "x" });
            } catch (error) { wrong = error.name; }
            const created = await grants.createGrant(d(contentKey), grantId, { passwordKey });
            return {
                passwordKey: e(passwordKey), verifier: e(verifier), unwrapped: e(unwrapped),
                wrong, link: e(created.linkSecret), server: e(created.serverSecret),
                wrapped: e(created.wrappedKey), createdVerifier: e(created.passwordVerifier),
            };
        }""",
        [
            grant_id,
            password,
            b64url_encode(py_grant.link_secret),
            b64url_encode(py_grant.server_secret),
            b64url_encode(py_grant.wrapped_key),
            b64url_encode(content_key),
        ],
    )
    assert b64url_decode(result["passwordKey"]) == password_key
    verifier = grants.password_verifier(password_key, grant_id)
    assert b64url_decode(result["verifier"]) == verifier == py_grant.password_verifier
    assert b64url_decode(result["createdVerifier"]) == verifier
    assert b64url_decode(result["unwrapped"]) == content_key
    assert result["wrong"] == "CryptoError"
    unwrapped = grants.unwrap_grant(
        grant_id,
        b64url_decode(result["link"]),
        b64url_decode(result["server"]),
        b64url_decode(result["wrapped"]),
        password=password,
    )
    assert unwrapped == content_key


def test_link_built_by_python_parses_in_the_browser(page, server):
    base, _ = server
    token, secret = links.new_grant_token(), os.urandom(16)
    link = links.build_link(base, token, secret)
    result = page.evaluate(
        """([link, base]) => {
            const { links, b64 } = window.sealbox;
            const parsed = links.parseLink(link, base);
            const fromHash = links.decodeLinkSecret(new URL(link).hash);
            return [parsed.baseUrl, parsed.grantToken, b64.toBase64url(parsed.linkSecret),
                    b64.toBase64url(fromHash)];
        }""",
        [link, base],
    )
    assert result == [base, token, b64url_encode(secret), b64url_encode(secret)]
