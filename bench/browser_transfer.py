"""A large attachment up and down in headless Chromium, the worker upload beside the old one.

    .venv/bin/python bench/browser_transfer.py     # 2.5 GB, or SEALBOX_BENCH_SIZE bytes

Starts `sealbox serve` (gunicorn, SQLite, local storage) on loopback and drives Chromium
through the send page ("Create links", one recipient with an opening code) and the
recipient's page (Download, decrypted by the service worker while it streams to disk).
Runs twice in the same run: with this tree's pages (the upload in a module worker), then
with the tree from before the worker upload (`--baseline REF`, default the parent of the
commit that added upload-worker.js: the main-thread upload), each with its own server
and data folder. Prints MB/s of each direction, the renderers' peak resident memory
(/proc of Chromium's renderer processes, sampled every 50 ms), the page's longest gap
between animation frames and its long tasks during the upload (a requestAnimationFrame
heartbeat and a PerformanceObserver), and the ratios new / old. Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transfer import PASSWORD, descendants, free_port, wait_for_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SEALBOX_TEST_CHROMIUM", "/usr/bin/chromium")
WORKER_JS = "src/sealbox/static/sealbox/js/upload-worker.js"
HEARTBEAT = """() => {
  window.__beat = { last: performance.now(), worst: 0, long: 0, longest: 0, run: true };
  const beat = () => {
    const now = performance.now();
    window.__beat.worst = Math.max(window.__beat.worst, now - window.__beat.last);
    window.__beat.last = now;
    if (window.__beat.run) requestAnimationFrame(beat);
  };
  requestAnimationFrame(beat);
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        window.__beat.long += 1;
        window.__beat.longest = Math.max(window.__beat.longest, entry.duration);
      }
    }).observe({ type: "longtask" });
  } catch (error) { /* no long-task timing in this browser */ }
}"""


def baseline_ref() -> str:
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", WORKER_JS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not added:
        raise SystemExit(f"{WORKER_JS} is not in this repository's history: pass --baseline")
    return added[-1] + "^"


def export_tree(ref: str, target: Path) -> Path:
    """The `src` folder of `ref`, extracted (its Python and its static files)."""
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def start_server(src: Path, data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env.update(
        PYTHONPATH=str(src),
        SEALBOX_DATA_DIR=str(data_dir),
        SEALBOX_BASE_URL=f"http://127.0.0.1:{port}",
    )
    python = sys.executable
    subprocess.run(
        [python, "-m", "sealbox.cli", "createuser", "bench@example.com", "--org", "Bench"]
        + ["--plan", "Pro", "--admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    server = subprocess.Popen(
        [python, "-m", "sealbox.cli", "serve", "--port", str(port), "--workers", "2"]
        + ["--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    return server


def renderer_pids() -> list[int]:
    found = []
    for pid in descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--type=renderer" in cmdline:
            found.append(pid)
    return found


class RendererSampler(threading.Thread):
    """The largest resident memory of any Chromium renderer, sampled every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.running = True
        self.pids: list[int] = []
        self.refreshed = 0.0

    def run(self) -> None:
        while self.running:
            if time.monotonic() - self.refreshed > 1:
                self.pids = renderer_pids()
                self.refreshed = time.monotonic()
            for pid in self.pids:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]) / 1024)
                except OSError:
                    continue
            time.sleep(0.05)

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak


def run_variant(name: str, src: Path, source: Path, folder: Path, browser) -> dict:
    from playwright.sync_api import expect

    port = free_port()
    data = folder / f"data-{name}"
    data.mkdir()
    server = start_server(src, data, port)
    base = f"http://127.0.0.1:{port}"
    size = source.stat().st_size
    result: dict = {}
    try:
        sender = browser.new_context(base_url=base, locale="en-GB")
        sender.set_default_timeout(3_600_000)
        page = sender.new_page()
        page.goto("/login/")
        page.get_by_label("Email").fill("bench@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/account/")
        page.goto("/send/")
        page.wait_for_load_state()
        recipient = page.get_by_role("group", name="Recipient 1")
        recipient.get_by_label("Email").fill("client@example.org")
        recipient.get_by_label("Verification").select_option(label="Opening code")
        page.get_by_label("Subject", exact=True).fill(f"Benchmark {name}")
        page.get_by_label("Message", exact=True).fill("The ledger.")
        page.get_by_label("Attachments").set_input_files(str(source))
        page.evaluate(HEARTBEAT)
        probe = RendererSampler()
        probe.start()
        time.sleep(0.5)
        result["idle_mb"] = probe.stop()  # the renderers before the upload starts
        sampler = RendererSampler()
        sampler.start()
        started = time.monotonic()
        page.get_by_role("button", name="Create links").click()
        expect(page.get_by_role("heading", name="Your links are ready")).to_be_visible(
            timeout=3_600_000
        )
        result["up_s"] = time.monotonic() - started
        result["up_peak_mb"] = sampler.stop()
        beat = page.evaluate("() => { window.__beat.run = false; return window.__beat; }")
        result["worst_frame_ms"] = beat["worst"]
        result["long_tasks"] = beat["long"]
        result["longest_task_ms"] = beat["longest"]
        link = page.get_by_label("client@example.org").input_value()
        code = page.locator(".opening-code").inner_text()
        sender.close()

        reader = browser.new_context(accept_downloads=True, locale="en-GB")
        reader.set_default_timeout(3_600_000)
        opened = reader.new_page()
        opened.goto(link)
        opened.get_by_label("Opening code").fill(code)
        opened.get_by_role("button", name="Open").click()
        button = opened.get_by_role("button", name=f"Download {source.name}")
        expect(button).to_be_visible(timeout=60_000)
        sampler = RendererSampler()
        sampler.start()
        started = time.monotonic()
        with opened.expect_download(timeout=3_600_000) as info:
            button.click()
        download = info.value
        path = download.path()  # returns once the whole file is on disk
        result["down_s"] = time.monotonic() - started
        result["down_peak_mb"] = sampler.stop()
        received = Path(path).stat().st_size
        if received != size:
            raise SystemExit(f"{name}: downloaded {received} bytes of {size}")
        download.delete()
        reader.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    result["up_mbps"] = size / result["up_s"] / 1e6
    result["down_mbps"] = size / result["down_s"] / 1e6
    return result


def make_source(path: Path, size: int) -> None:
    block = os.urandom(16 * 1024 * 1024)
    with path.open("wb") as out:
        left = size
        while left:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git ref of the old pages (default: see above)")
    parser.add_argument("--new-only", action="store_true", help="skip the old pages")
    args = parser.parse_args()
    size = int(float(os.environ.get("SEALBOX_BENCH_SIZE", 2.5e9)))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sealbox-browser-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "ledger.bin"
        make_source(source, size)
        variants = [("worker", REPO / "src")]
        if not args.new_only:
            ref = args.baseline or baseline_ref()
            old = folder / "old"
            old.mkdir()
            variants.append(("old", export_tree(ref, old)))
        results = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            for name, src in variants:
                results[name] = run_variant(name, src, source, folder, browser)
            browser.close()
    print(f"{size / 1e9:.2f} GB in headless Chromium, sealbox serve on local storage")
    for name, r in results.items():
        print(
            f"  {name:6}  up {r['up_mbps']:7.1f} MB/s  renderer peak {r['up_peak_mb']:5.0f} MB"
            f" ({r['idle_mb']:.0f} before)"
            f"  worst frame gap {r['worst_frame_ms']:6.0f} ms  long tasks {r['long_tasks']}"
            f" (longest {r['longest_task_ms']:.0f} ms)\n"
            f"          down {r['down_mbps']:5.1f} MB/s  renderer peak {r['down_peak_mb']:5.0f} MB"
        )
    if "old" in results:
        new, old = results["worker"], results["old"]
        print(
            f"  ratio worker / old: upload {new['up_mbps'] / old['up_mbps']:.2f}x, "
            f"upload renderer peak {new['up_peak_mb'] / old['up_peak_mb']:.2f}x, "
            f"download {new['down_mbps'] / old['down_mbps']:.2f}x"
        )


if __name__ == "__main__":
    main()
