"""Small messages through a running Sealbox: create + open by several clients at once.

    .venv/bin/python bench/small_messages.py [--clients 8] [--seconds 20] [--rounds 2]
    SEALBOX_DATABASE_URL=postgres://postgres@127.0.0.1:5432/sealbox_bench_small \\
        .venv/bin/python bench/small_messages.py          # PostgreSQL (recreated each run)

Starts `sealbox serve` (gunicorn, 2 web workers, its background task worker, local blob
storage) in a temporary data folder. Each client sends a message of a few hundred bytes
with the Python client (`sealbox.client`, an API token: create, upload the manifest,
finalise, links delivery), then opens it as its recipient would (the recipient's page,
unlock with the opening code, download of the manifest) and checks the text: one
operation, six requests. The baseline, run in the same gunicorn settings and interleaved
with Sealbox's rounds: a bare WSGI app answering the same six requests per operation,
with bodies of the same sizes (the HTTP ceiling). Prints operations/s, p50/p95 of an
operation, the ratio to the ceiling, the server's CPU time per operation (web workers
and task worker apart), the p50 of each request, and the load average.

`--profile DIR` runs the web workers under cProfile (each request profiled in its
thread with that thread's CPU time, so waits for locks do not count; the stats of every
thread and worker merged) and the task worker too (wall time), then prints the top
functions by cumulative and by own time; the figures of a profiled run are slower.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sealbox.client.http import HttpTransport
from sealbox.client.messages import Recipient, open_message, send_message

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import PASSWORD, descendants, free_port, wait_for_port  # noqa: E402

BODY = "Your appointment is confirmed for Tuesday at 10:00. " * 4
TICKS = os.sysconf("SC_CLK_TCK")

TOKEN_SCRIPT = """
from sealbox.accounts.models import User
from sealbox.accounts.services import create_api_token
_, secret = create_api_token(None, User.objects.get(email="bench@example.com"), "bench", 7)
print(secret)
"""

# The bare app answers each of the six requests with a body of the size Sealbox's has.
BARE_APP = """
import json
SIZES = {"create": 900, "put": 16, "finalise": 80, "page": 9000, "unlock": 700,
         "download": 480}
def app(environ, start_response):
    left = int(environ.get("CONTENT_LENGTH") or 0)
    if left:
        environ["wsgi.input"].read(left)
    size = SIZES.get(environ["PATH_INFO"].strip("/"), 16)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"pad": "x" * size}).encode()]
"""

PROFILE_CONFIG = """
import cProfile, os, threading, time
_local = threading.local()
_all = []
_lock = threading.Lock()
def pre_request(worker, req):
    profile = getattr(_local, "profile", None)
    if profile is None:
        # CPU time of this thread: waits for locks and I/O do not count.
        profile = _local.profile = cProfile.Profile(time.thread_time)
        with _lock:
            _all.append(profile)
    profile.enable()
def post_request(worker, req, environ, resp):
    _local.profile.disable()
def worker_exit(server, worker):
    import pstats
    with _lock:
        if _all:
            stats = pstats.Stats(_all[0])
            for other in _all[1:]:
                stats.add(other)
            folder = os.environ["BENCH_PROFILE_DIR"]
            stats.dump_stats(os.path.join(folder, f"web-{os.getpid()}.prof"))
"""


def server_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env.update(SEALBOX_DATA_DIR=str(data_dir), SEALBOX_BASE_URL=f"http://127.0.0.1:{port}")
    if os.environ.get("SEALBOX_DATABASE_URL"):
        env["SEALBOX_DATABASE_URL"] = os.environ["SEALBOX_DATABASE_URL"]
        env["SEALBOX_SECRET_KEY"] = "bench-only-secret-key-" + "x" * 40
    return env


def fresh_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.strip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def sealbox_cmd() -> str:
    return str(Path(sys.executable).with_name("sealbox"))


def prepare(env: dict[str, str]) -> str:
    """A Pro organisation with one administrator, and an API token for them."""
    subprocess.run([sealbox_cmd(), "migrate"], env=env, check=True, capture_output=True, text=True)
    subprocess.run(
        [
            sealbox_cmd(),
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
    out = subprocess.run(
        [sealbox_cmd(), "manage", "shell", "-c", TOKEN_SCRIPT],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def start_sealbox(
    env: dict[str, str], port: int, profile_dir: Path | None, log: Path | None = None
) -> list:
    """`sealbox serve` as the docs say; profiled: the same gunicorn settings, by hand."""
    if profile_dir is None:
        output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        server = subprocess.Popen(
            [sealbox_cmd(), "serve", "--port", str(port), "--workers", "2", "--no-migrate"],
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        wait_for_port(port)
        return [server]
    (profile_dir / "gunicorn_profile.py").write_text(PROFILE_CONFIG)
    env = env | {
        "BENCH_PROFILE_DIR": str(profile_dir),
        "DJANGO_SETTINGS_MODULE": "sealbox.settings",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    web = subprocess.Popen(
        [
            gunicorn,
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "-k",
            "gthread",
            "--threads",
            "8",
            "-c",
            str(profile_dir / "gunicorn_profile.py"),
            "sealbox.wsgi:application",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(profile_dir / "task-worker.prof"),
            "-m",
            "sealbox.cli",
            "worker",
            "--no-migrate",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    return [web, worker]


def start_bare(folder: Path, port: int) -> subprocess.Popen:
    (folder / "bare_small.py").write_text(BARE_APP)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen(
        [
            gunicorn,
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "-k",
            "gthread",
            "--threads",
            "8",
            "--chdir",
            str(folder),
            "bare_small:app",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    return server


def stop(processes: list) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            # SIGINT: cProfile writes its file on KeyboardInterrupt; gunicorn stops too.
            os.killpg(process.pid, signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


class TimedTransport(HttpTransport):
    """Records each request's elapsed time under its name (create, put, …)."""

    def __init__(self, *args, timings: dict[str, list[float]], **kwargs):
        super().__init__(*args, **kwargs)
        self.timings = timings

    def _send(self, method, path, body=None, headers=None):
        start = time.perf_counter()
        response = super()._send(method, path, body, headers)
        # The body is read by the caller: count the time to its first byte and after.
        self.timings.setdefault(request_name(method, path), []).append(time.perf_counter() - start)
        return response


def request_name(method: str, path: str) -> str:
    if path.startswith("/o/"):
        return "recipient page"
    if method == "PUT":
        return "upload"
    if path.endswith("/finalise"):
        return "finalise"
    if path.endswith("/unlock"):
        return "unlock"
    if "/download" in path or path.startswith("/api/v1/download"):
        return "download"
    if path == "/api/v1/messages":
        return "create"
    return path


def sealbox_operation(base: str, token: str, timings: dict) -> callable:
    sender = TimedTransport(base, token=token, timings=timings)
    recipient = TimedTransport(base, timings=timings)

    def operation() -> None:
        sent = send_message(
            sender,
            base_url=base,
            subject="Appointment",
            body=BODY,
            recipients=[Recipient("someone@example.org")],
            expires_at=datetime.now(UTC) + timedelta(days=1),
            delivery="links",
        )
        link = sent.links["someone@example.org"]
        opened = open_message(recipient, link, code=sent.opening_codes["someone@example.org"])
        assert opened.body == BODY

    return operation


def bare_operation(base: str, timings: dict) -> callable:
    transport = TimedTransport(base, timings=timings)
    steps = [
        ("POST", "/create", b"x" * 1300),
        ("PUT", "/put", b"x" * 500),
        ("POST", "/finalise", b"{}"),
        ("GET", "/page", None),
        ("POST", "/unlock", b'{"code": "12345678"}'),
        ("GET", "/download", None),
    ]

    def operation() -> None:
        for method, path, body in steps:
            response = transport._send(method, path, body)
            response.read()
            assert response.status == 200

    return operation


def run_clients(make_operation, clients: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    count = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    failures: list[BaseException] = []

    def client() -> None:
        operation = make_operation()
        try:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                operation()
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    count[0] += 1
        except BaseException as error:  # reported once the round ends
            failures.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return count[0], latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def print_profile(profile_dir: Path, top: int) -> None:
    for pattern, title in (("web-*.prof", "web workers"), ("task-worker.prof", "task worker")):
        files = sorted(profile_dir.glob(pattern))
        if not files:
            print(f"(no profile of the {title})")
            continue
        stats = pstats.Stats(*map(str, files))
        print(f"\n--- {title}: top {top} by cumulative time ---")
        stats.sort_stats("cumulative").print_stats(top)
        print(f"\n--- {title}: top {top // 2} by own time ---")
        stats.sort_stats("tottime").print_stats(top // 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many")
    parser.add_argument("--profile", type=Path, help="folder for cProfile output")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--server-log", type=Path, help="append the server's output here")
    args = parser.parse_args()

    database = os.environ.get("SEALBOX_DATABASE_URL", "")
    if database:
        fresh_postgres(database)
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-", dir=".") as tmp:
        folder = Path(tmp).resolve()
        port, bare_port = free_port(), free_port()
        env = server_env(folder / "data", port)
        token = prepare(env)
        profile_dir = args.profile.resolve() if args.profile else None
        if profile_dir:
            profile_dir.mkdir(parents=True, exist_ok=True)
            for old in profile_dir.glob("*.prof"):
                old.unlink()
        servers = start_sealbox(env, port, profile_dir, args.server_log)
        bare = start_bare(folder, bare_port)
        base, bare_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        results: dict[str, list] = {"sealbox": [], "bare": []}
        try:
            # Warm up both (imports, connections, first pages) before anything is timed.
            run_clients(lambda: sealbox_operation(base, token, {}), 2, 2)
            run_clients(lambda: bare_operation(bare_base, {}), 2, 1)
            web_pids = descendants(servers[0].pid)
            task_pids = [p for s in servers[1:] for p in [s.pid, *descendants(s.pid)]]
            if profile_dir is None:
                # `serve` runs gunicorn in its own process and the task worker beside it.
                gunicorn_pids = {p for p in web_pids if _is_gunicorn_worker(p, web_pids)}
                task_pids = [p for p in web_pids if _is_task_worker(p)]
                web_pids = sorted(gunicorn_pids)
            load_before = os.getloadavg()
            for _ in range(args.rounds):
                timings: dict[str, list[float]] = {}
                web_cpu, task_cpu = cpu_seconds(web_pids), cpu_seconds(task_pids)
                start = time.perf_counter()
                count, latencies = run_clients(
                    lambda t=timings: sealbox_operation(base, token, t), args.clients, args.seconds
                )
                elapsed = time.perf_counter() - start
                # Let the task worker finish what this round queued before counting it:
                # until it is back to polling (under a second of CPU in 2 s).
                for _ in range(60):
                    polled = cpu_seconds(task_pids)
                    time.sleep(2)
                    if cpu_seconds(task_pids) - polled < 0.1:
                        break
                web_cpu = cpu_seconds(web_pids) - web_cpu
                task_cpu = cpu_seconds(task_pids) - task_cpu
                results["sealbox"].append(
                    (count / elapsed, latencies, web_cpu / count, task_cpu / count, timings)
                )
                bare_timings: dict[str, list[float]] = {}
                start = time.perf_counter()
                count, latencies = run_clients(
                    lambda t=bare_timings: bare_operation(bare_base, t), args.clients, args.seconds
                )
                results["bare"].append((count / (time.perf_counter() - start), latencies))
            load_after = os.getloadavg()
        finally:
            stop([*servers, bare])

    best = max(results["sealbox"], key=lambda r: r[0])
    best_bare = max(results["bare"], key=lambda r: r[0])
    engine = "PostgreSQL" if database else "SQLite"
    print(
        f"small message create + open, {args.clients} clients x {args.seconds:.0f} s, "
        f"{engine}, best of {args.rounds}{' (profiled)' if profile_dir else ''}"
    )
    print(f"  load average: {load_before[0]:.1f} before, {load_after[0]:.1f} after (2 cores)")
    for name, (rate, latencies, *_rest) in (("sealbox", best), ("HTTP ceiling", best_bare)):
        print(
            f"  {name:13s} {rate:7.1f} ops/s   p50 {percentile(latencies, 0.5) * 1000:6.0f} ms"
            f"   p95 {percentile(latencies, 0.95) * 1000:6.0f} ms"
        )
    print(f"  ratio to the HTTP ceiling: {best[0] / best_bare[0]:.2f}")
    print(
        f"  server CPU per operation: {(best[2] + best[3]) * 1000:.1f} ms "
        f"(web workers {best[2] * 1000:.1f} ms, task worker {best[3] * 1000:.1f} ms)"
    )
    per_request = ", ".join(
        f"{name} {statistics.median(values) * 1000:.0f} ms" for name, values in best[4].items()
    )
    print(f"  per request under load (p50): {per_request}")
    if profile_dir:
        print_profile(profile_dir, args.top)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _is_task_worker(pid: int) -> bool:
    return " worker" in _cmdline(pid)


def _is_gunicorn_worker(pid: int, family: list[int]) -> bool:
    # gunicorn's master is the `serve` process itself; its workers are its children.
    return not _is_task_worker(pid) and pid in family


if __name__ == "__main__":
    main()
