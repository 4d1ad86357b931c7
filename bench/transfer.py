"""Upload and download a large ciphertext through a running Sealbox on loopback.

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--chunk-mib 16]

Starts `sealbox serve` (gunicorn, SQLite, local blob storage) in a temporary data folder,
uploads one blob of --size-mib through the API in chunks, finalises, unlocks and
downloads it. Prints MB/s for each direction, the ratio to a raw baseline measured in
the same run (the same bytes copied file to file on the same disk; and, for uploads, a
bare WSGI app in the same gunicorn that only writes the body to disk), and the server's
memory while the transfers run (resident memory of the web workers, sampled every
20 ms). Then `sealbox send` of a file of the same size (the CLI: encryption on this
machine, upload, finalise) against `cp` of that file, interleaved, best of --cli-rounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sealbox.client.http import HttpTransport
from sealbox.crypto import grants, links
from sealbox.crypto._b64 import b64url_encode

MIB = 1024 * 1024
PASSWORD = "benchmark passphrase 2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
                queue.append(int(entry.name))
    return found


def memory_mb(pids: list[int], field: str = "VmRSS") -> float:
    """The largest `field` (VmRSS now, VmHWM for the high-water mark) among `pids`."""
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


class RssSampler(threading.Thread):
    """Samples the web workers' resident memory every 20 ms while a transfer runs."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = 0.0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, memory_mb(self.pids))
            time.sleep(0.02)

    def stop(self) -> float:
        self.running = False
        self.join()
        return self.peak


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env.update(SEALBOX_DATA_DIR=str(data_dir), SEALBOX_BASE_URL=f"http://127.0.0.1:{port}")
    return env


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = server_env(data_dir, port)
    sealbox = str(Path(sys.executable).with_name("sealbox"))
    subprocess.run(
        [
            sealbox,
            "createuser",
            "bench@example.com",
            "--org",
            "Bench",
            "--plan",
            "Pro",
            "--admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    server = subprocess.Popen(
        [sealbox, "serve", "--port", str(port), "--workers", "2", "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
    except SystemExit:
        server.kill()
        raise
    return server


BARE_APP = """
def app(environ, start_response):
    stream, left = environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0)
    with open(environ["HTTP_X_TARGET"], "ab") as target:
        while left:
            piece = stream.read(min(1 << 20, left))
            if not piece:
                break
            target.write(piece)
            left -= len(piece)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def bare_http_upload(folder: Path, size: int, buffer: bytes) -> float:
    """The HTTP ceiling: the same gunicorn with an app that only writes the body to disk."""
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen(
        [
            gunicorn,
            "-b",
            f"127.0.0.1:{port}",
            "-k",
            "gthread",
            "--threads",
            "8",
            "--chdir",
            str(folder),
            "bare_app:app",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        target = folder / "bare-upload"
        start = time.perf_counter()
        for _ in range(size // len(buffer)):
            connection = transport._conn()
            connection.request("PUT", "/", body=buffer, headers={"X-Target": str(target)})
            connection.getresponse().read()
        elapsed = time.perf_counter() - start
        target.unlink()
        return size / elapsed / 1e6
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def baseline_copy(folder: Path, size: int, buffer: bytes) -> float:
    source, target = folder / "baseline-source", folder / "baseline-target"
    with open(source, "wb") as handle:
        for _ in range(size // len(buffer)):
            handle.write(buffer)
    os.sync()
    # A plain read/write loop through user space, as the server's own path is; the
    # kernel's copy_file_range (shutil.copyfile) would not touch the bytes at all.
    start = time.perf_counter()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, length=len(buffer))
    elapsed = time.perf_counter() - start
    source.unlink()
    target.unlink()
    return size / elapsed / 1e6


TOKEN_SCRIPT = """
from sealbox.accounts.models import User
from sealbox.accounts.services import create_api_token
_, secret = create_api_token(None, User.objects.get(email="bench@example.com"), "bench", 7)
print(secret)
"""


def api_token(data_dir: Path, port: int) -> str:
    sealbox = str(Path(sys.executable).with_name("sealbox"))
    out = subprocess.run(
        [sealbox, "manage", "shell", "-c", TOKEN_SCRIPT],
        env=server_env(data_dir, port),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pids: list[int]) -> float:
    """User + system CPU seconds used so far by `pids` (live processes)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cli_send(source: Path, port: int, token: str) -> float:
    """`sealbox send` of the file (encrypted on this machine, uploaded through the API,
    links delivery): MB/s of plaintext, from start to the command's exit."""
    sealbox = str(Path(sys.executable).with_name("sealbox"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env.update(SEALBOX_API_TOKEN=token, SEALBOX_URL=f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    subprocess.run(
        [sealbox, "send", str(source), "--to", "r@example.org", "--subject", "bench", "--links"],
        env=env,
        check=True,
        capture_output=True,
    )
    return source.stat().st_size / (time.perf_counter() - start) / 1e6


def cp_copy(source: Path) -> float:
    """`cp` of the same file on the same disk (what the issue compares the upload with)."""
    target = source.with_name("cp-target")
    start = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - start
    target.unlink()
    return source.stat().st_size / elapsed / 1e6


def write_source(folder: Path, size: int, buffer: bytes) -> Path:
    source = folder / "cli-source.bin"
    with open(source, "wb") as handle:
        for _ in range(size // len(buffer)):
            handle.write(buffer)
    os.sync()
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=16)
    parser.add_argument(
        "--cli-rounds", type=int, default=3, help="`sealbox send` and `cp` runs, interleaved"
    )
    args = parser.parse_args()
    size, chunk = args.size_mib * MIB, args.chunk_mib * MIB
    buffer = os.urandom(chunk)

    with tempfile.TemporaryDirectory(prefix="sealbox-bench-", dir=".") as tmp:
        folder = Path(tmp).resolve()
        port = free_port()
        server = start_server(folder / "data", port)
        try:
            transport = HttpTransport(f"http://127.0.0.1:{port}")
            transport.login("bench@example.com", PASSWORD)
            workers = descendants(server.pid)
            idle_memory = memory_mb(workers)
            sampler = RssSampler(workers)
            sampler.start()
            key = grants.new_content_key()
            token = links.new_grant_token()
            grant = grants.create_grant(key, token)
            status, created = transport.request(
                "POST",
                "/api/v1/messages",
                json_body={
                    "subject": "benchmark",
                    "delivery": "links",
                    "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    "recipients": [
                        {
                            "email": "r@example.org",
                            "grant_token": token,
                            "server_secret": b64url_encode(grant.server_secret),
                            "wrapped_key": b64url_encode(grant.wrapped_key),
                        }
                    ],
                    "blobs": [
                        {"kind": "manifest", "size": 100},
                        {"kind": "file", "size": size, "file_ref": "f"},
                    ],
                },
            )
            assert status == 201, created
            manifest, blob = created["blobs"]
            base = f"/api/v1/messages/{created['id']}/blobs"
            transport.request("PUT", f"{base}/{manifest['id']}?offset=0", body=buffer[:100])

            start = time.perf_counter()
            for offset in range(0, size, chunk):
                status, data = transport.request(
                    "PUT", f"{base}/{blob['id']}?offset={offset}", body=buffer
                )
                assert status == 200, data
            upload = size / (time.perf_counter() - start) / 1e6

            transport.request(
                "POST", f"/api/v1/messages/{created['id']}/finalise", json_body={"links": None}
            )
            status, unlocked = transport.request(
                "POST",
                f"/api/v1/open/{token}/unlock",
                json_body={"code": created["opening_codes"][token]},
            )
            assert status == 200, unlocked
            url = next(d["url"] for d in unlocked["downloads"] if d["kind"] == "file")
            start = time.perf_counter()
            received = sum(len(piece) for piece in transport.stream(url))
            download = size / (time.perf_counter() - start) / 1e6
            assert received == size
            memory = sampler.stop()
            login_peak = memory_mb(workers, "VmHWM")
            source = write_source(folder, size, buffer)
            token = api_token(folder / "data", port)
            cli, cp = [], []
            cpu = {"cp": [], "client": [], "server": []}
            for _ in range(args.cli_rounds):
                before = children_cpu()
                cp.append(cp_copy(source))
                cpu["cp"].append(children_cpu() - before)
                before, server_before = children_cpu(), process_cpu(workers)
                cli.append(cli_send(source, port, token))
                cpu["client"].append(children_cpu() - before)
                cpu["server"].append(process_cpu(workers) - server_before)
            source.unlink()
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=30)
        raw = baseline_copy(folder, size, buffer)
        bare = bare_http_upload(folder, size, buffer)

    print(f"transfer of {args.size_mib} MiB in {args.chunk_mib} MiB chunks through the server")
    copy = f"file to file copy, {args.chunk_mib} MiB reads and writes"
    print(f"  raw baseline ({copy}): {raw:8.1f} MB/s")
    print(f"  HTTP ceiling (bare WSGI app in gunicorn writing the body to disk): {bare:8.1f} MB/s")
    print(
        f"  upload:   {upload:8.1f} MB/s   ratio {upload / raw:.2f} "
        f"(to the HTTP ceiling: {upload / bare:.2f})"
    )
    print(f"  download: {download:8.1f} MB/s   ratio {download / raw:.2f}")
    print(
        f"  cp of a {args.size_mib} MiB file, same disk (best of {args.cli_rounds}): "
        f"{max(cp):8.1f} MB/s"
    )
    print(
        f"  sealbox send (CLI: encrypt, upload, finalise; best of {args.cli_rounds}): "
        f"{max(cli):8.1f} MB/s   ratio to cp {max(cli) / max(cp):.2f}"
    )
    gib = size / (1 << 30)
    print(
        f"  CPU seconds per GiB (least of {args.cli_rounds}): cp {min(cpu['cp']) / gib:.2f}, "
        f"sealbox send {min(cpu['client']) / gib:.2f} on the client + "
        f"{min(cpu['server']) / gib:.2f} in the web workers"
    )
    print(f"  load average: {os.getloadavg()[0]:.1f} (2 cores)")
    print(
        f"  web worker memory during the transfers: peak {memory:.0f} MB resident "
        f"(before: {idle_memory:.0f} MB; high-water mark including the Argon2 login: "
        f"{login_peak:.0f} MB)"
    )


if __name__ == "__main__":
    main()
