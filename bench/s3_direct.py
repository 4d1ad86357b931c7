"""The same ciphertext through the app server and straight to S3 (direct mode), same run.

    .venv/bin/python bench/s3_direct.py          # 1 GiB, or SEALBOX_BENCH_SIZE bytes

Starts a moto S3 server and `sealbox serve` (gunicorn, SQLite, S3 storage with direct
mode on) on loopback, then uploads one blob of that size and downloads it back, first
through the app server (`upload_mode: proxy`, 16 MiB chunks; download with
`?direct=false`), then directly (`upload_mode: direct`, the presigned 16 MiB parts PUT to
the store; download by the presigned GET the server redirects to). Prints MB/s of each
direction in each mode, the ratio direct / proxy, and the app server's CPU seconds
(gunicorn's processes, user + system) in each mode. Not a timed test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transfer import PASSWORD, descendants, free_port, wait_for_port  # noqa: E402

from sealbox.client.http import HttpTransport, put_to_store, stream_from_store  # noqa: E402
from sealbox.crypto import grants, links  # noqa: E402
from sealbox.crypto._b64 import b64url_encode  # noqa: E402

MIB = 1024 * 1024
CHUNK = 16 * MIB
BUCKET = "sealbox-bench"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def start_moto(port: int) -> subprocess.Popen:
    moto = str(Path(sys.executable).with_name("moto_server"))
    server = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    import boto3

    boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    return server


def start_sealbox(data_dir: Path, port: int, storage_url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env.update(
        SEALBOX_DATA_DIR=str(data_dir),
        SEALBOX_BASE_URL=f"http://127.0.0.1:{port}",
        SEALBOX_STORAGE_URL=storage_url,
    )
    sealbox = str(Path(sys.executable).with_name("sealbox"))
    subprocess.run(
        [sealbox, "createuser", "bench@example.com", "--org", "Bench", "--plan", "Pro"]
        + ["--admin", "--password-stdin"],
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
    wait_for_port(port)
    return server


def create(transport: HttpTransport, size: int, mode: str) -> tuple[dict, str]:
    token = links.new_grant_token()
    grant = grants.create_grant(grants.new_content_key(), token)
    status, created = transport.request(
        "POST",
        "/api/v1/messages",
        json_body={
            "subject": f"benchmark {mode}",
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
            "upload_mode": mode,
        },
    )
    assert status == 201, created
    return created, token


def upload(transport: HttpTransport, created: dict, size: int, buffer: bytes) -> None:
    base = f"/api/v1/messages/{created['id']}/blobs"
    for blob in created["blobs"]:
        plan = blob["upload"]
        length = blob["size"]
        if plan["mode"] == "direct":
            for part in plan["parts"]:
                put_to_store(part["url"], buffer[: part["size"]])
        else:
            for offset in range(0, length, CHUNK):
                body = buffer[: min(CHUNK, length - offset)]
                status, data = transport.request(
                    "PUT", f"{base}/{blob['id']}?offset={offset}", body=body
                )
                assert status == 200, data
    status, data = transport.request(
        "POST", f"/api/v1/messages/{created['id']}/finalise", json_body={"links": None}
    )
    assert status == 200, data


def download(transport: HttpTransport, created: dict, token: str, mode: str) -> int:
    status, unlocked = transport.request(
        "POST",
        f"/api/v1/open/{token}/unlock",
        json_body={"code": created["opening_codes"][token]},
    )
    assert status == 200, unlocked
    url = next(d["url"] for d in unlocked["downloads"] if d["kind"] == "file")
    if mode == "proxy":
        return sum(len(piece) for piece in transport.stream(url + "?direct=false"))
    connection = transport._conn()
    connection.request("GET", url)
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 302, answer.status
    return sum(len(piece) for piece in stream_from_store(answer.headers["Location"]))


def main() -> None:
    size = int(os.environ.get("SEALBOX_BENCH_SIZE") or 1024 * MIB)
    buffer = os.urandom(CHUNK)
    moto_port, port = free_port(), free_port()
    moto = start_moto(moto_port)
    storage_url = (
        f"s3://bench:bench@{BUCKET}?endpoint_url=http://127.0.0.1:{moto_port}&region=us-east-1"
    )
    results: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sealbox-bench-", dir=".") as tmp:
            server = start_sealbox(Path(tmp).resolve() / "data", port, storage_url)
            try:
                transport = HttpTransport(f"http://127.0.0.1:{port}")
                transport.login("bench@example.com", PASSWORD)
                processes = [server.pid, *descendants(server.pid)]
                for mode in ("proxy", "direct"):
                    created, token = create(transport, size, mode)
                    cpu = cpu_seconds(processes)
                    start = time.perf_counter()
                    upload(transport, created, size, buffer)
                    up = size / (time.perf_counter() - start) / 1e6
                    start = time.perf_counter()
                    received = download(transport, created, token, mode)
                    down = size / (time.perf_counter() - start) / 1e6
                    assert received == size, received
                    used = cpu_seconds(processes) - cpu
                    results[mode] = {"upload": up, "download": down, "cpu": used}
                    # Free the store's memory (moto keeps objects in RAM) for the next mode.
                    transport.request("DELETE", f"/api/v1/messages/{created['id']}")
            finally:
                os.killpg(server.pid, signal.SIGINT)
                server.wait(timeout=30)
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=30)

    proxy, direct = results["proxy"], results["direct"]
    print(f"{size / MIB:.0f} MiB to and from a moto S3 server on loopback, same run")
    for name in ("upload", "download"):
        ratio = direct[name] / proxy[name]
        print(
            f"  {name:8}  through the app server: {proxy[name]:8.1f} MB/s   "
            f"direct: {direct[name]:8.1f} MB/s   ratio direct/proxy {ratio:.2f}"
        )
    print(
        f"  app server CPU (gunicorn, user + system): through it {proxy['cpu']:.1f} s, "
        f"direct {direct['cpu']:.1f} s"
    )


if __name__ == "__main__":
    main()
