"""The scaled-out topology of docs/scale-out.md, started for real and put through faults.

nginx (the doc's site file) in front of two app servers and two workers (the doc's
systemd commands, the doc's environment file), a PostgreSQL cluster of the test's own, an
S3 server (moto) and a slow SMTP server. The topology starts once for the module — all at
once, on an empty database — and the scenarios run on it in order, each leaving it whole
(a process the test kills is restarted, as systemd's `Restart=always` would). The last
scenarios stop the object store for good.

Runs on the PostgreSQL pass only (SEALBOX_TEST_DATABASE_URL set): the topology needs
PostgreSQL anyway, and starts a private cluster so that it can restart it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from sealbox.client import messages as client
from sealbox.client.http import CSRF_INPUT
from tests.deploy.topology import (
    DOC_SEALBOX,
    SEALBOX,
    MotoServer,
    Nginx,
    PrivatePostgres,
    Process,
    SlowInbox,
    Started,
    TlsTransport,
    base_env,
    connection_owner,
    doc_file,
    environment_file,
    established_server_ports,
    exec_start,
    free_port,
    https_request,
    make_certificate,
    read_environment_file,
    smtp_server,
    sql,
    wait_for,
    with_option,
)
from tests.processes import POSTGRES_URL

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="the deployment test runs on the PostgreSQL pass (set SEALBOX_TEST_DATABASE_URL)",
)

BUCKET = "sealbox-blobs"
OWNER = "owner@example.org"
OWNER_PASSWORD = "deploy test owner passphrase 42"  # noqa: S105
SLOW_RECIPIENT = "slow-delivery@example.org"
RECIPIENT_PASSWORD = "harbour tulip 77"  # noqa: S105
RESTART_SECONDS = 2  # the units' RestartSec


class Topology:
    """Every piece, started; and a stand-in for systemd that restarts what dies."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sealbox-deploy-"))
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.pg = PrivatePostgres()
        self.moto = MotoServer(self.logs)
        self.inbox = SlowInbox(SLOW_RECIPIENT)
        self.smtp = None
        self.nginx: Nginx | None = None
        self.web: list[Process] = []
        self.workers: list[Process] = []
        self.crashes: list[str] = []
        self.killed: set[int] = set()  # pids the test killed on purpose
        self.started = Started()
        self.token = ""
        self._supervising = threading.Event()

    # --- start and stop ---------------------------------------------------------------

    def start(self) -> None:
        self.pg.init()
        self.db_url = self.pg.create_database("sealbox")
        self.moto.start()
        self.moto.client().create_bucket(Bucket=BUCKET)
        self.smtp = smtp_server(self.inbox)
        self.cafile, key = make_certificate(self.root)
        web_ports = (free_port(), free_port())
        self.nginx = Nginx(self.root / "nginx", self.logs, web_ports, self.cafile, key)
        self.base_url = f"https://localhost:{self.nginx.https_port}"

        env_file = self.root / "sealbox.env"
        env_file.write_text(
            environment_file(
                {
                    "SEALBOX_DATABASE_URL": self.db_url,
                    "SEALBOX_STORAGE_URL": (
                        f"s3://deploy-access-key:deploy-secret-key@{BUCKET}"
                        f"?endpoint_url={self.moto.endpoint}&region=us-east-1"
                    ),
                    "SEALBOX_EMAIL_URL": f"smtp://127.0.0.1:{self.smtp.port}",
                    "SEALBOX_SMS_URL": f"file:///{self.root}/sms.jsonl",
                    "SEALBOX_BASE_URL": self.base_url,
                    "SEALBOX_SECRET_KEY": secrets.token_urlsafe(50),
                    "SEALBOX_METRICS_ALLOW": "127.0.0.1",
                    "SEALBOX_DATA_DIR": str(self.root / "data"),
                }
            )
        )
        self.env = read_environment_file(env_file)
        assert self.env["SEALBOX_TRUSTED_PROXY_COUNT"] == "1"
        assert "&region=" in self.env["SEALBOX_STORAGE_URL"], "the shell cut the storage URL"

        web_command = exec_start("sealbox-web.service")
        assert {"--no-worker", "--no-migrate"} <= set(web_command)
        for number, port in enumerate(web_ports, 1):
            command = with_option(web_command, "--host", "127.0.0.1")
            command = with_option(command, "--port", str(port))
            # One gunicorn process (8 threads) per app server: the test machine's cores are
            # shared; the doc's --workers 4 is for a real host.
            command = with_option(command, "--workers", "1")
            web = Process(f"web{number}", command, self.node_env(f"web{number}"), self.logs)
            web.port = port
            self.web.append(web)
        worker_command = exec_start("sealbox-worker@.service")
        assert "--no-migrate" in worker_command
        for number in (1, 2):
            name = f"worker{number}"
            self.workers.append(Process(name, worker_command, self.node_env(name), self.logs))

        self.nginx.start()
        self.first_start()
        self._supervising.set()
        threading.Thread(target=self._supervise, name="systemd", daemon=True).start()
        self.make_owner()

    def first_start(self) -> None:
        """Scenario (b): the four processes and `sealbox migrate` at once, on an empty
        database. What happens is recorded for the test to judge; whatever crashed is
        restarted so that the other scenarios can run."""
        began = time.monotonic()
        migrate = subprocess.Popen(  # noqa: S603
            [SEALBOX, "migrate"],
            env=self.node_env("migrate"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for process in self.web + self.workers:
            process.start()
        self.started.migrate_output, _ = migrate.communicate(timeout=240)
        self.started.migrate_code = migrate.returncode
        for web in self.web:
            wait_for(lambda web=web: self.healthy(web), 120, f"{web.name} to answer")
        deadline = time.monotonic() + 60  # a worker waiting for migrations checks again
        while time.monotonic() < deadline:
            if self.request("GET", "/readyz").status == 200:
                break
            time.sleep(0.5)
        self.started.seconds = time.monotonic() - began
        for process in self.web + self.workers:
            if not process.alive():
                self.started.notes.append(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )
                process.start()

    def _supervise(self) -> None:
        while self._supervising.is_set():
            for process in self.web + self.workers:
                if process.alive() or not self._supervising.is_set():
                    continue
                if process.pid not in self.killed:
                    self.crashes.append(f"{process.name} exited by itself:\n{process.tail()}")
                time.sleep(RESTART_SECONDS)
                if self._supervising.is_set():
                    process.start()
            time.sleep(0.2)

    def stop(self) -> None:
        self._supervising.clear()
        for process in [*self.web, *self.workers]:
            process.stop()
        if self.nginx is not None:
            self.nginx.stop()
        if self.smtp is not None:
            self.smtp.stop()
        self.moto.stop()
        self.pg.destroy()
        if not os.environ.get("SEALBOX_DEPLOY_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    def kill(self, process: Process) -> None:
        """SIGKILL the process and its children; "systemd" restarts it 2 s later."""
        self.killed.add(process.pid)
        process.kill()

    # --- using it --------------------------------------------------------------------

    def node_env(self, name: str) -> dict[str, str]:
        """A node's environment: the doc's file, with a data folder of the node's own."""
        return base_env() | self.env | {"SEALBOX_DATA_DIR": str(self.root / "nodes" / name)}

    def admin(self, *args: str, stdin: str | None = None, timeout: float = 120):
        """A sealbox command as `sealbox-admin` runs it (the services' environment)."""
        return subprocess.run(  # noqa: S603
            [SEALBOX, *args],
            env=self.node_env("admin"),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli_env(self) -> dict[str, str]:
        """A user's machine: the portal's address, an API token, and trust in the test's
        certificate."""
        return base_env() | {
            "SEALBOX_URL": self.base_url,
            "SEALBOX_API_TOKEN": self.token,
            "SSL_CERT_FILE": str(self.cafile),
        }

    def cli(self, *args: str, timeout: float = 180):
        return subprocess.run(  # noqa: S603
            [SEALBOX, *args], env=self.cli_env(), capture_output=True, text=True, timeout=timeout
        )

    def transport(self, base_url: str | None = None) -> TlsTransport:
        return TlsTransport(base_url or self.base_url, cafile=self.cafile, token=self.token)

    def request(self, method: str, path: str, **kwargs):
        return https_request(self.base_url, self.cafile, method, path, **kwargs)

    def healthy(self, web: Process) -> bool:
        import urllib.request

        try:
            url = f"http://127.0.0.1:{web.port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                return answer.status == 200
        except OSError:
            return False

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        return sql(self.db_url, query, params)

    def make_owner(self) -> None:
        created = self.admin(
            "createuser", OWNER, "--org", "Deploy Test", "--admin", "--plan", "Pro",
            "--password-stdin", stdin=OWNER_PASSWORD + "\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        code = (
            "from sealbox.accounts import services; from sealbox.accounts.models import User; "
            f"print(services.create_api_token(None, User.objects.get(email={OWNER!r}), "
            "'deployment test', 30)[1])"
        )
        made = self.admin("manage", "shell", "-c", code)
        assert made.returncode == 0, made.stdout + made.stderr
        self.token = made.stdout.strip().splitlines()[-1]

    def send(self, *, to: list[str], subject: str, body: str = "Hello.", **options):
        """A message sent through the proxy by the Python client (as `sealbox send`)."""
        verification = options.pop("verification", "opening_code")
        password = options.pop("password", None)
        return client.send_message(
            self.transport(),
            base_url=self.base_url,
            subject=subject,
            body=body,
            recipients=[client.Recipient(a, verification, password=password) for a in to],
            expires_at=datetime.now(UTC) + timedelta(days=7),
            **options,
        )

    def diagnostics(self) -> str:
        parts = [p.tail() for p in [*self.web, *self.workers]]
        if self.nginx is not None:
            parts.append("--- nginx error log ---\n" + self.nginx.error_log()[-3000:])
        return "\n".join(parts)


@pytest.fixture(scope="module")
def topology():
    top = Topology()
    try:
        top.start()
        yield top
    finally:
        top.stop()


def message_pks(topology: Topology, public_ids: list[str]) -> list[int]:
    rows = topology.sql(
        "SELECT id FROM exchange_message WHERE public_id = ANY(%s::uuid[])", (public_ids,)
    )
    return [row[0] for row in rows]


# --- The doc's files, checked before anything runs ---------------------------------------------


def test_the_docs_systemd_units_are_valid(tmp_path):
    analyse = shutil.which("systemd-analyze")
    if analyse is None:
        pytest.skip("systemd-analyze is not installed")
    units = []
    for name in ("sealbox-web.service", "sealbox-worker@.service"):
        text = doc_file(f"/etc/systemd/system/{name}").replace(DOC_SEALBOX, SEALBOX)
        (tmp_path / name).write_text(text)
        units.append(tmp_path / name.replace("@.service", "@1.service"))
    (tmp_path / "sealbox-worker@1.service").symlink_to(tmp_path / "sealbox-worker@.service")
    done = subprocess.run(  # noqa: S603
        [analyse, "verify", *map(str, units)], capture_output=True, text=True, timeout=60
    )
    complaints = [
        line for line in (done.stdout + done.stderr).splitlines() if "sealbox" in line.lower()
    ]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


# --- (b) everything at once on an empty database ------------------------------------------


def test_everything_started_at_once_on_an_empty_database_runs(topology):
    started = topology.started
    assert started.migrate_code == 0, started.migrate_output
    assert "Migrations applied." in started.migrate_output
    assert not started.notes, "\n\n".join(started.notes)
    for process in topology.web + topology.workers:
        assert "Traceback" not in process.output(), process.tail()
    ready = topology.request("GET", "/readyz")
    assert ready.status == 200, ready.body
    assert ready.json()["workers"] == "ok"


def test_the_proxy_redirects_plain_http_and_hides_the_metrics(topology):
    import http.client

    plain = http.client.HTTPConnection("127.0.0.1", topology.nginx.http_port, timeout=10)
    plain.request("GET", "/login/", headers={"Host": "localhost"})
    answer = plain.getresponse()
    assert answer.status == 301
    assert answer.headers["Location"] == "https://localhost/login/"
    plain.close()
    assert topology.request("GET", "/metrics").status == 404
    direct = http.client.HTTPConnection("127.0.0.1", topology.web[0].port, timeout=10)
    direct.request("GET", "/metrics")  # from an address of SEALBOX_METRICS_ALLOW
    assert direct.getresponse().status == 200
    direct.close()


# --- (a) send and open through the proxy with the CLI ----------------------------------------


def test_send_by_email_and_open_through_the_proxy(topology, tmp_path):
    logged_before = len(topology.nginx.access_log())
    report = tmp_path / "figures.bin"
    report.write_bytes(os.urandom(client.CHUNK_BYTES + 3 * 1024 * 1024 + 5))  # two chunks
    sent = topology.cli(
        "send", str(report), "--to", "reader@example.org", "--subject", "Quarterly figures",
        "--message", "The figures are attached.",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("Sent M-")

    # A worker delivers the link and, in a second email, the opening code.
    emails = wait_for(
        lambda: len(got := topology.inbox.to("reader@example.org")) >= 2 and got,
        60,
        "the notification and the opening code emails",
    )
    texts = [received.text() for received in emails]
    [link] = [m.group(0) for t in texts if (m := re.search(r"https://\S+/o/\S+", t))]
    assert link.startswith(topology.base_url + "/o/")
    [code_email] = [t for t in texts if "/o/" not in t]
    # The code stands on its own line, indented, between the facts and the footer.
    [code] = re.findall(r"^ {4}(\S+)\r?$", code_email, flags=re.M)

    received = tmp_path / "received"
    opened = topology.cli("open", link, "--code", code, "--output", str(received))
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.splitlines()[0] == "The figures are attached."
    assert (
        hashlib.sha256((received / "figures.bin").read_bytes()).hexdigest()
        == hashlib.sha256(report.read_bytes()).hexdigest()
    )
    # Direct mode (S3): the CLI sent the parts to the store and read them back from it;
    # the app servers behind nginx only signed and checked.
    [(direct, stored)] = topology.sql(
        "SELECT count(*) FILTER (WHERE b.upload_name <> ''), count(*) FROM exchange_blob b "
        "JOIN exchange_message m ON b.message_id = m.id WHERE m.subject = 'Quarterly figures'"
    )
    assert direct == stored == 2
    logged = topology.nginx.access_log()[logged_before:]
    assert "POST /api/v1/messages/" in logged and "PUT /api/v1/messages/" not in logged
    # The audit log has the client's address, passed on by nginx.
    [(ip,)] = topology.sql(
        "SELECT DISTINCT host(ip) FROM audit_event WHERE action = 'message.opened'"
    )
    assert ip == "127.0.0.1"


# --- (f) an app server killed mid-upload -----------------------------------------------------


def test_an_app_server_killed_mid_upload_is_survived(topology, tmp_path):
    ledger = tmp_path / "ledger.bin"
    ledger.write_bytes(os.urandom(4 * client.CHUNK_BYTES + 5 * 1024 * 1024))  # five chunks
    send = subprocess.Popen(  # noqa: S603
        # Through the app servers (the path a store nobody outside reaches keeps).
        [SEALBOX, "send", str(ledger), "--to", "ledger@example.org", "--subject", "Ledger",
         "--links", "--no-direct"],
        env=topology.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def first_chunk_stored() -> bool:
            rows = topology.sql(
                "SELECT b.stored FROM exchange_blob b JOIN exchange_message m "
                "ON b.message_id = m.id WHERE m.subject = 'Ledger' AND b.kind = 'file'"
            )
            return bool(rows) and rows[0][0] > 0

        wait_for(first_chunk_stored, 120, "the first chunk of the file", interval=0.05)
        ports = {web.port: web for web in topology.web}
        busy = wait_for(
            lambda: established_server_ports(set(ports)), 60, "a chunk in flight", interval=0.005
        )
        victim = ports[sorted(busy)[0]]
        topology.kill(victim)  # mid-chunk: the proxy's connection to it is cut
        out, err = send.communicate(timeout=240)
    finally:
        if send.poll() is None:
            send.kill()
    assert send.returncode == 0, err
    # nginx saw the chunk cut at the killed app server, and answered 502 for it.
    cut = [
        line
        for line in topology.nginx.error_log().splitlines()
        if "PUT /api/v1/messages/" in line and f"127.0.0.1:{victim.port}/" in line
    ]
    assert cut, topology.nginx.error_log()[-2000:]
    line = next(line for line in out.splitlines() if line.startswith("ledger@example.org: "))
    link, code = line.split(": ", 1)[1].split("  (opening code ")
    target = tmp_path / "opened"
    opened = topology.cli("open", link, "--code", code.rstrip(")"), "--output", str(target))
    assert opened.returncode == 0, opened.stderr
    assert (
        hashlib.sha256((target / "ledger.bin").read_bytes()).hexdigest()
        == hashlib.sha256(ledger.read_bytes()).hexdigest()
    )
    # "systemd" brings the app server back; nginx sends it requests again.
    wait_for(lambda: topology.healthy(victim), 60, f"{victim.name} to be back")


# --- (e) two purges at once --------------------------------------------------------------

PURGE = """
import json, os, time
from pathlib import Path
from django.db import connection
from sealbox.cli import run_purge
connection.ensure_connection()
Path({ready!r}).touch()
while not os.path.exists({go!r}):
    time.sleep(0.001)
print(json.dumps(vars(run_purge())))
"""


def test_two_purges_at_once_record_one_event_per_object(topology, tmp_path):
    sent = [
        topology.send(
            to=[f"purge-{n}a@example.org", f"purge-{n}b@example.org"],
            subject=f"Purge {n}",
            delivery="links",
        )
        for n in range(3)
    ]
    messages = message_pks(topology, [s.id for s in sent])
    grants = [
        str(row[0])
        for row in topology.sql(
            "SELECT id FROM exchange_grant WHERE message_id = ANY(%s)", (messages,)
        )
    ]
    assert len(grants) == 6
    go = tmp_path / "go"
    purges = []
    for number in (1, 2):
        ready = tmp_path / f"ready-{number}"
        purges.append(
            (
                ready,
                subprocess.Popen(  # noqa: S603
                    [SEALBOX, "manage", "shell", "-c", PURGE.format(ready=str(ready), go=str(go))],
                    env=topology.node_env(f"purge{number}"),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    wait_for(lambda: all(ready.exists() for ready, _ in purges), 120, "both purges to be ready")
    # Their time has come, for both purges at once (and any worker's purge).
    topology.sql(
        "UPDATE exchange_grant SET expires_at = now() - interval '1 minute' "
        "WHERE message_id = ANY(%s)",
        (messages,),
    )
    topology.sql(
        "UPDATE exchange_message SET expires_at = now() - interval '1 minute' WHERE id = ANY(%s)",
        (messages,),
    )
    go.touch()
    for _, process in purges:
        output, _ = process.communicate(timeout=120)
        if process.returncode != 0:
            pytest.fail(f"a purge failed: {output}")

    per_message = dict(
        topology.sql(
            "SELECT target_id, count(*) FROM audit_event WHERE action = 'message.expired' "
            "AND target_type = 'message' AND target_id = ANY(%s) GROUP BY target_id",
            ([str(pk) for pk in messages],),
        )
    )
    per_grant = dict(
        topology.sql(
            "SELECT actor_id, count(*) FROM audit_event WHERE action = 'grant.expired' "
            "AND actor_id = ANY(%s) GROUP BY actor_id",
            (grants,),
        )
    )
    assert per_message == {str(pk): 1 for pk in messages}
    assert per_grant == {grant: 1 for grant in grants}


# --- (c) a worker killed while it sends an email -------------------------------------------


def test_a_worker_killed_while_sending_an_email_delivers_it_once_later(topology):
    topology.send(
        to=[SLOW_RECIPIENT],
        subject="Payslip",
        verification="password",  # no opening code: one email, one task
        password=RECIPIENT_PASSWORD,
    )
    if not topology.inbox.holding.wait(60):
        pytest.fail("the email never reached the SMTP server")
    # The whole message is on the SMTP server, which has not answered yet: the worker
    # holding that connection is killed.
    _, port = topology.inbox.held_peer
    pid = connection_owner(port, [worker.pid for worker in topology.workers])
    if pid is None:
        pytest.fail("no worker holds the SMTP connection")
    [victim] = [worker for worker in topology.workers if worker.pid == pid]
    topology.kill(victim)

    wait_for(
        lambda: topology.inbox.to(SLOW_RECIPIENT),
        240,
        "another worker to deliver the email",
        interval=1,
    )
    time.sleep(5)  # time for a second delivery, if one were coming
    if not topology.inbox.interrupted:
        pytest.fail("the worker was not killed in the middle of the delivery")
    accepted = topology.inbox.to(SLOW_RECIPIENT)
    assert len(accepted) == 1, "the email was delivered more than once"
    events = dict(
        topology.sql(
            "SELECT action, count(*) FROM audit_event WHERE action IN "
            "('email.sent', 'email.failed') AND details::text LIKE %s GROUP BY action",
            (f"%{SLOW_RECIPIENT}%",),
        )
    )
    assert events == {"email.sent": 1}
    # The killed worker had handed the whole message over: a mail server may deliver that
    # copy too. Then both copies must be one email to the recipient's mail system.
    copies = {copy.message_id for copy in topology.inbox.copies_to(SLOW_RECIPIENT)}
    assert len(copies) == 1, f"the recipient gets {len(copies)} different emails: {copies}"


# --- (d) PostgreSQL restarted ---------------------------------------------------------------


def test_workers_carry_on_after_postgresql_restarts(topology):
    crashes_before = len(topology.crashes)
    topology.pg.stop("fast")  # every connection cut, as a real restart does
    stopped = time.monotonic()
    try:
        with pytest.raises(client.ClientError) as refused:
            topology.send(
                to=["during-outage@example.org"],
                subject="During the outage",
                verification="password",
                password=RECIPIENT_PASSWORD,
            )
        assert 500 <= refused.value.status < 600
        ready = topology.request("GET", "/readyz")
        assert ready.status == 503 and ready.json()["database"] == "failed", ready.body
    finally:
        time.sleep(max(0.0, 6 - (time.monotonic() - stopped)))
        topology.pg.start()

    topology.send(
        to=["after-restart@example.org"],
        subject="After the restart",
        verification="password",
        password=RECIPIENT_PASSWORD,
    )
    wait_for(
        lambda: topology.inbox.to("after-restart@example.org"),
        90,
        "a worker to deliver the email queued after the restart",
        interval=0.5,
    )
    assert len(topology.crashes) == crashes_before, "\n".join(topology.crashes)
    assert all(worker.alive() for worker in topology.workers), topology.diagnostics()
    wait_for(lambda: topology.request("GET", "/readyz").status == 200, 60, "readiness to come back")


# --- (g) wrong passwords in parallel through the proxy -----------------------------------------


def test_parallel_wrong_passwords_with_forged_addresses_meet_the_limit(topology):
    attempts = 24
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def attempt(number: int) -> None:
        try:
            browser = TlsTransport(topology.base_url, cafile=topology.cafile)
            page = browser._send("GET", "/login/").read().decode()
            browser.csrf = CSRF_INPUT.search(page).group(1)
            body = urlencode(
                {
                    "email": f"spray-{number}@example.org",
                    "password": f"wrong guess {number}",
                    "csrfmiddlewaretoken": browser.csrf,
                }
            )
            barrier.wait(timeout=60)
            answer = browser._send(
                "POST",
                "/login/",
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    # Each attempt claims to come from elsewhere.
                    "X-Forwarded-For": f"203.0.113.{number}",
                },
            )
            answer.read()
            statuses.append(answer.status)
        except BaseException as error:  # reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        pytest.fail(f"an attempt failed: {errors[0]!r}")
    assert len(statuses) == attempts and all(status < 500 for status in statuses), statuses
    checked = topology.sql(
        "SELECT host(ip) FROM audit_event WHERE action = 'login.failed' "
        "AND actor_label LIKE 'spray-%%@example.org'"
    )
    assert 1 <= len(checked) <= 10, f"{len(checked)} passwords were checked"
    assert {ip for (ip,) in checked} == {"127.0.0.1"}, "a forged address was believed"


# --- (i) the backup and restore drill of the doc -------------------------------------------------


def test_backup_and_restore_drill(topology, tmp_path):
    drill_file = tmp_path / "drill.txt"
    drill_file.write_text("drill content\n")
    sent = topology.cli(
        "send", str(drill_file), "--to", OWNER, "--subject", "Drill", "--message",
        "Restored and readable.", "--links",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    line = next(line for line in sent.stdout.splitlines() if line.startswith(f"{OWNER}: "))
    link, code = line.split(": ", 1)[1].split("  (opening code ")
    code = code.rstrip(")")

    # The backup: the database, then the store without outbox/.
    dump = tmp_path / "sealbox.dump"
    done = subprocess.run(  # noqa: S603
        [str(topology.pg.bindir / "pg_dump"), "--format=custom", f"--file={dump}", topology.db_url],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    s3 = topology.moto.client()
    backup = tmp_path / "blobs"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            if item["Key"].startswith("outbox/"):
                continue
            path = backup / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, item["Key"], str(path))

    # The restore, into a scratch database and bucket.
    drill_url = topology.pg.create_database("sealbox_drill")
    done = subprocess.run(  # noqa: S603
        [str(topology.pg.bindir / "pg_restore"), "--no-owner", "--role=postgres",
         f"--dbname={drill_url}", str(dump)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    s3.create_bucket(Bucket="sealbox-drill")
    for path in backup.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "sealbox-drill", str(path.relative_to(backup)))

    port = free_port()
    drill_base = f"http://127.0.0.1:{port}"
    env = topology.node_env("drill") | {
        "SEALBOX_DATABASE_URL": drill_url,
        "SEALBOX_STORAGE_URL": topology.env["SEALBOX_STORAGE_URL"].replace(
            f"@{BUCKET}?", "@sealbox-drill?"
        ),
        "SEALBOX_BASE_URL": drill_base,
    }
    verify = subprocess.run(  # noqa: S603
        [SEALBOX, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0 and "Audit log intact" in verify.stdout, verify.stdout
    server = Process(
        "drill",
        [SEALBOX, "serve", "--no-worker", "--no-migrate", "--port", str(port), "--workers", "1"],
        env,
        topology.logs,
    ).start()
    try:
        wait_for(lambda: _http_ok(f"{drill_base}/healthz"), 90, "the drill's app server")
        opened = subprocess.run(  # noqa: S603
            [SEALBOX, "open", link.replace(topology.base_url, drill_base), "--code", code,
             "--output", str(tmp_path / "drill-opened")],
            env=base_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        server.stop()
    assert opened.returncode == 0, opened.stderr + server.tail()
    assert opened.stdout.splitlines()[0] == "Restored and readable."
    assert (tmp_path / "drill-opened" / "drill.txt").read_text() == "drill content\n"


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
            return answer.status == 200
    except OSError:
        return False


# --- (h) the object store stopped (last: moto keeps nothing once stopped) ---------------------


@pytest.fixture(scope="module")
def storage_stopped(topology):
    topology.moto.stop()
    return topology


def test_readiness_names_the_stopped_store_within_three_seconds(storage_stopped):
    topology = storage_stopped
    answer = topology.request("GET", "/readyz", timeout=10)
    assert answer.status == 503, answer.body
    body = answer.json()
    assert body["storage"] == "failed" and body["database"] == "ok", body
    assert answer.seconds < 3.0, f"/readyz took {answer.seconds:.1f} s"


def test_an_upload_while_the_store_is_stopped_is_a_503_that_says_so(storage_stopped, monkeypatch):
    topology = storage_stopped
    monkeypatch.setattr(client, "UPLOAD_RETRY_DELAYS_SECONDS", ())  # the first answer
    with pytest.raises(client.ClientError) as refused:
        topology.send(
            to=["store-down@example.org"],
            subject="While the store is down",
            attachments=[client.Attachment("notes.txt", data=b"notes")],
            delivery="links",
        )
    assert refused.value.status == 503, refused.value.data
    assert "storage" in str(refused.value).lower(), refused.value.data


def test_nothing_crashed_by_itself(topology):
    """Through every fault above, no app server or worker exited unless the test killed it."""
    assert not topology.crashes, "\n\n".join(topology.crashes)
