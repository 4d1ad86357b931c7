"""Benchmark: the browser crypto module (static/sealbox/js/ece.js) in headless Chromium.

Runs the code of ``bench/crypto_js.mjs`` in a page of the system's Chromium (through
Playwright for Python), served from a plain http.server on 127.0.0.1 under a strict
Content-Security-Policy, and prints MB/s and the ratio to raw WebCrypto AES-GCM on the
same records, measured in the same run (aim: ratio >= 0.7).

    python bench/crypto_browser.py                 # 1 GiB stream
    python bench/crypto_browser.py --size 256M     # quicker

The decryption runs replay a payload encrypted beforehand and held in the page's
memory, so ``--size`` also sets how much memory the tab needs.
"""

from __future__ import annotations

import argparse
import http.server
import re
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SERVED = {
    "/bench/": ROOT / "bench",
    "/src/sealbox/static/sealbox/js/": ROOT / "src" / "sealbox" / "static" / "sealbox" / "js",
}
CSP = "default-src 'none'; script-src 'self'; connect-src 'self'"
PAGE = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>sealbox crypto benchmark</title>
<script type="module" src="/bench/crypto_browser_page.mjs"></script></head><body></body></html>
"""
# The page module: loads the benchmark and exposes it (served from memory, not a file).
PAGE_MODULE = b"""
import { runBench, formatResult } from "/bench/crypto_js.mjs";
window.sealboxBench = { runBench, formatResult };
document.documentElement.dataset.ready = "yes";
"""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    def send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/":
            self.send(PAGE, "text/html; charset=utf-8")
            return
        if self.path == "/bench/crypto_browser_page.mjs":
            self.send(PAGE_MODULE, "text/javascript")
            return
        for prefix, folder in SERVED.items():
            name = self.path.removeprefix(prefix)
            if self.path.startswith(prefix) and re.fullmatch(r"[\w-]+\.m?js", name):
                file = folder / name
                if file.is_file():
                    self.send(file.read_bytes(), "text/javascript")
                    return
        self.send_error(404)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size: {text!r} (examples: 1G, 64M, 1000)")
    factor = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match[2].upper()]
    return int(float(match[1]) * factor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="e.g. 1G, 256M")
    parser.add_argument("--rs", type=int, default=65536, help="record size")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="browser binary")
    args = parser.parse_args()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: print(f"  [page] {message.text}", file=sys.stderr))
            page.goto(url)
            page.wait_for_selector("html[data-ready=yes]", state="attached")
            version = browser.version
            start = time.perf_counter()
            text = page.evaluate(
                """async ([size, rs, repeat, title]) => {
                    const { runBench, formatResult } = window.sealboxBench;
                    const log = (line) => console.log(line);
                    return formatResult(await runBench({ size, rs, repeat, log }), title);
                }""",
                [
                    args.size,
                    args.rs,
                    args.repeat,
                    f"static/sealbox/js/ece.js in Chromium {version}",
                ],
            )
            elapsed = time.perf_counter() - start
            browser.close()
            if errors:
                raise SystemExit(f"page errors: {errors}")
    finally:
        httpd.shutdown()
    print(text)
    print(f"(whole benchmark: {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
