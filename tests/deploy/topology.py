"""The pieces of the scaled-out topology, started for real, configured from docs/scale-out.md.

Nothing here is a stand-in for a Sealbox process: the app servers and workers are the
`sealbox` commands of the doc's systemd units, nginx runs the doc's site file, and the
environment is the doc's environment file read by `sh` (as the `sealbox-admin` helper
reads it). Only addresses, ports, paths and credentials are replaced by the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import glob
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sealbox.client.http import HttpTransport

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
SEALBOX = os.path.join(os.path.dirname(sys.executable), "sealbox")

# What the doc's files name, and what the test puts in their place.
DOC_SEALBOX = "/opt/sealbox/venv/bin/sealbox"
DOC_APP_SERVERS = ("10.0.0.11:8000", "10.0.0.12:8000")
DOC_HOST = "sealbox.example.com"
DOC_CERTIFICATE = f"/etc/letsencrypt/live/{DOC_HOST}/fullchain.pem"
DOC_CERTIFICATE_KEY = f"/etc/letsencrypt/live/{DOC_HOST}/privkey.pem"


# --- The doc ---------------------------------------------------------------------------


def doc_file(path: str) -> str:
    """The fenced block of docs/scale-out.md that is the file `path` (named in a comment
    on its first or second line)."""
    text = DOC.read_text()
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S):
        head = block.splitlines()[:2]
        if any(re.match(rf"^#\s*{re.escape(path)}(\s|$)", line) for line in head):
            return block
    raise AssertionError(f"docs/scale-out.md has no block for {path}")


def replace_all(text: str, replacements: dict[str, str], what: str) -> str:
    for old, new in replacements.items():
        assert old in text, f"{what} in docs/scale-out.md no longer has {old!r}"
        text = text.replace(old, new)
    return text


def environment_file(values: dict[str, str]) -> str:
    """The doc's environment file, with the test's values for the variables in `values`
    (written in single quotes, the doc's way); every other line as the doc has it."""
    lines = []
    missing = set(values)
    for line in doc_file("/etc/sealbox/sealbox.env").splitlines():
        name = line.split("=", 1)[0]
        if name in values:
            assert "'" not in values[name]
            line = f"{name}='{values[name]}'"
            missing.discard(name)
        lines.append(line)
    assert not missing, f"the doc's environment file lacks {sorted(missing)}"
    return "\n".join(lines) + "\n"


def read_environment_file(path: Path) -> dict[str, str]:
    """What the file sets, read by sh exactly as the doc's `sealbox-admin` reads it."""
    script = f"set -a; . {shlex.quote(str(path))}; set +a; exec env -0"
    output = subprocess.run(  # noqa: S603
        ["/bin/sh", "-c", script], env={"PATH": os.environ["PATH"]}, capture_output=True, check=True
    ).stdout.decode()
    pairs = (item.split("=", 1) for item in output.split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("SEALBOX_")}


def exec_start(unit: str) -> list[str]:
    """The command of a systemd unit of the doc, with the test's sealbox."""
    block = doc_file(f"/etc/systemd/system/{unit}")
    [line] = [line for line in block.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == DOC_SEALBOX, argv
    return [SEALBOX, *argv[1:]]


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    assert option in argv, f"{option} is not in {argv}"
    index = argv.index(option)
    return [*argv[: index + 1], value, *argv[index + 2 :]]


# --- Small helpers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def base_env() -> dict[str, str]:
    """The machine's environment without any SEALBOX_ or DJANGO_ variable of the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}


# --- TLS ------------------------------------------------------------------------------


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (the test's "sealbox.example.com")."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class TlsTransport(HttpTransport):
    """The client's own transport, trusting the test's certificate."""

    def __init__(self, base_url: str, *, cafile: Path, token: str = "", timeout: float = 60):
        super().__init__(base_url, token=token, timeout=timeout)
        self.context = ssl.create_default_context(cafile=str(cafile))

    def _conn(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        return self._connection


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self) -> dict:
        return json.loads(self.body)


def https_request(
    base_url: str,
    cafile: Path,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    context = ssl.create_default_context(cafile=str(cafile))
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port, timeout=timeout, context=context
    )
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return Answer(response.status, response.headers, payload, time.monotonic() - started)
    finally:
        connection.close()


# --- Processes ------------------------------------------------------------------------


class Process:
    """A long-running process of the topology, in its own process group (an app server's
    gunicorn workers die with it), its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log = logs / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.generation = 0
        self.port: int | None = None  # an app server's

    def start(self) -> Process:
        self.generation += 1
        with open(self.log, "a") as out:
            out.write(f"\n===== start {self.generation}: {shlex.join(self.argv)}\n")
            out.flush()
            self.popen = subprocess.Popen(  # noqa: S603
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process group, as a machine losing the service would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
        if self.alive():
            self.kill(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.output().splitlines()[-lines:])


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, on a free port, that can really restart
    (the machine's shared server is used by other tests and is never touched)."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="sealbox-deploy-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    def _run(self, program: str, *args: str, timeout: float = 90) -> str:
        argv = [str(self.bindir / program), *args]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        assert done.returncode == 0, f"{program} failed: {done.stdout}{done.stderr}"
        return done.stdout

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # A test's data: no durability needed, and the disk is shared.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("the deployment test needs PostgreSQL's initdb and pg_ctl (Debian: postgresql)")


class MotoServer:
    """An S3 server (moto) in a process of its own, so that it can be stopped."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            base_env(),
            logs,
        )

    def start(self) -> None:
        self.process.start()
        wait_for(lambda: answers("127.0.0.1", self.port), 60, "the S3 server")

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="deploy-access-key",
            aws_secret_access_key="deploy-secret-key",  # noqa: S106
            region_name="us-east-1",
        )

    def stop(self) -> None:
        self.process.stop()


@dataclass
class Received:
    recipients: list[str]
    message: email.message.EmailMessage
    at: float

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class SlowInbox:
    """A real SMTP server's mailbox. The first message to a `slow` address is held in the
    DATA stage (the whole message received, no answer yet) until the client goes away or
    `hold` seconds pass: a worker can be killed mid-delivery."""

    def __init__(self, slow: str, hold: float = 120) -> None:
        self.slow, self.hold = slow, hold
        self.accepted: list[Received] = []
        # Messages received in full whose sender vanished before the server's answer: a
        # real mail server may well deliver those too, so they count as copies.
        self.interrupted: list[Received] = []
        self.holding = threading.Event()
        self.held_once = False
        self.held_peer: tuple[str, int] | None = None  # the client held in DATA
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        received = Received(list(envelope.rcpt_tos), message, time.monotonic())
        if self.slow in envelope.rcpt_tos and not self.held_once:
            self.held_once = True
            self.held_peer = tuple(session.peer[:2])
            self.holding.set()
            try:
                await asyncio.sleep(self.hold)
            except asyncio.CancelledError:  # aiosmtpd cancels us when the client is gone
                with self.lock:
                    self.interrupted.append(received)
                raise
        with self.lock:
            self.accepted.append(received)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.accepted if address in r.recipients]

    def copies_to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.accepted + self.interrupted if address in r.recipients]


class Nginx:
    """nginx with the doc's site file, inside a minimal main configuration of its own
    (the distribution's nginx.conf would also start the default site on port 80)."""

    def __init__(self, root: Path, logs: Path, app_ports: tuple[int, int], cert, key) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.https_port, self.http_port = free_port(), free_port()
        site = replace_all(
            doc_file("/etc/nginx/sites-available/sealbox"),
            {
                DOC_APP_SERVERS[0]: f"127.0.0.1:{app_ports[0]}",
                DOC_APP_SERVERS[1]: f"127.0.0.1:{app_ports[1]}",
                "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                DOC_CERTIFICATE: str(cert),
                DOC_CERTIFICATE_KEY: str(key),
                DOC_HOST: "localhost",
            },
            "the nginx site file",
        )
        (self.root / "sealbox.conf").write_text(site)
        temp = {
            name: self.root / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        }
        main = f"""
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {self.root}/access.log;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {self.root}/sealbox.conf;
}}
"""
        (self.root / "nginx.conf").write_text(main)
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            pytest.fail("the deployment test needs nginx: apt-get install -y nginx")
        argv = [binary, "-p", str(self.root), "-e", str(self.root / "error.log")]
        argv += ["-c", str(self.root / "nginx.conf")]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True)  # noqa: S603
        assert check.returncode == 0, f"nginx refused the doc's configuration: {check.stderr}"
        self.process = Process("nginx", [*argv, "-g", "daemon off;"], base_env(), logs)

    def start(self) -> None:
        self.process.start()
        wait_for(lambda: answers("127.0.0.1", self.https_port), 30, "nginx")

    def stop(self) -> None:
        self.process.stop()

    def access_log(self) -> str:
        path = self.root / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def smtp_server(inbox: SlowInbox):
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


# --- The database, seen from the test -------------------------------------------------


def sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def established_server_ports(ports: set[int]) -> set[int]:
    """Which of `ports` (listening on loopback) has an established connection now: a
    request in flight, since nginx keeps no idle connection to the app servers."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and local_port in ports:
                found.add(local_port)
    return found


def connection_owner(client_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the loopback connection whose own end is `client_port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
    return None


@dataclass
class Started:
    """What the concurrent first start did: each process, and `migrate`'s outcome."""

    migrate_code: int | None = None
    migrate_output: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
