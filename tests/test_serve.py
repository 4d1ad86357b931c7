"""`sealbox serve`: a real gunicorn and worker on a fresh data folder, stopped by Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def served(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env["SEALBOX_DATA_DIR"] = str(tmp_path / "data")
    env["SEALBOX_METRICS_ALLOW"] = "127.0.0.1"
    port = free_port()
    sealbox = os.path.join(os.path.dirname(sys.executable), "sealbox")
    process = subprocess.Popen(
        [sealbox, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if get(base + "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("sealbox serve did not answer: " + process.stdout.read())
    yield process, base, tmp_path / "data"
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def test_serve_creates_data_serves_pages_and_stops_on_ctrl_c(served):
    process, base, data_dir = served
    assert (data_dir / "sealbox.sqlite3").exists()
    assert (data_dir / "secret_key").exists()
    status, body = get(base + "/login/")
    assert status == 200 and b"Log in" in body
    status, css = get(base + "/static/sealbox/css/sealbox.css")
    assert status == 200 and b"Sealbox" in css
    assert get(base + "/healthz") == (200, b'{"status": "ok"}')
    # The embedded worker reports in: the install is ready, storage and queue included.
    deadline = time.monotonic() + 30
    while get(base + "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.3)
    status, ready = get(base + "/readyz")
    assert status == 200, ready
    # Request counts of gunicorn's worker processes meet in one scrape.
    status, metrics = get(base + "/metrics")
    assert status == 200
    assert b'sealbox_http_requests_total{method="GET",route="login/",status="200"} 1.0' in metrics

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"Sealbox is serving on {base}" in output
    # Nothing is left listening.
    with pytest.raises(OSError):
        get(base + "/healthz")
