"""The `sealbox` command: createuser, audit verify, manage (plans, licence)."""

import getpass
import io
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from sealbox import cli
from sealbox.accounts.models import Organisation, Role, User
from sealbox.audit.models import Event

pytestmark = pytest.mark.django_db

GOOD = "a long enough passphrase 42"


@pytest.fixture(autouse=True)
def _plans(plans):
    """The plans come from a data migration, which a transactional test run before these
    in the same worker may have flushed."""


def run(capsys, monkeypatch, *argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_createuser_with_password_from_stdin_creates_org_and_admin(capsys, monkeypatch):
    code, out, err = run(
        capsys,
        monkeypatch,
        "createuser",
        "Boss@Example.com",
        "--org",
        "Acme Law",
        "--admin",
        "--first-name",
        "Bo",
        "--last-name",
        "Ss",
        "--password-stdin",
        stdin=GOOD + "\n",
    )
    assert code == 0, err
    assert "Created boss@example.com, administrator of Acme Law (new organisation)." in out
    user = User.objects.get(email="boss@example.com")
    assert user.role == Role.ADMIN
    assert (user.first_name, user.last_name) == ("Bo", "Ss")
    assert user.check_password(GOOD)
    assert user.organisation.plan.name == "Advanced"
    assert Event.objects.filter(action="user.created", target_id=str(user.pk)).exists()


def test_createuser_joins_an_existing_organisation(capsys, monkeypatch):
    run(
        capsys,
        monkeypatch,
        "createuser",
        "a@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        stdin=GOOD,
    )
    code, out, _ = run(
        capsys,
        monkeypatch,
        "createuser",
        "b@example.com",
        "--org",
        "acme",
        "--password-stdin",
        stdin=GOOD,
    )
    assert code == 0
    assert "standard user of Acme." in out
    assert Organisation.objects.count() == 1


def test_createuser_prompts_twice_for_the_password(capsys, monkeypatch):
    answers = iter([GOOD, GOOD])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    monkeypatch.setattr(sys, "stdin", type("Tty", (), {"isatty": lambda self: True})())
    code, out, _ = run(capsys, monkeypatch, "createuser", "c@example.com", "--org", "Acme")
    assert code == 0
    assert User.objects.filter(email="c@example.com").exists()


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (
            ["createuser", "not-an-email", "--org", "Acme", "--password-stdin"],
            GOOD,
            "sealbox: 'not-an-email' is not a valid email address",
        ),
        (
            ["createuser", "d@example.com", "--org", "Acme", "--password-stdin"],
            "short1",
            "sealbox: This password is too short",
        ),
        (
            ["createuser", "d@example.com", "--org", "Acme", "--password-stdin"],
            "password123456",
            "sealbox: This password is too common.",
        ),
        (
            ["createuser", "d@example.com", "--org", "Acme", "--password-stdin"],
            "",
            "sealbox: no password on standard input",
        ),
        (
            ["createuser", "d@example.com", "--org", "Acme", "--plan", "Gold", "--password-stdin"],
            GOOD,
            "sealbox: There is no plan named Gold.",
        ),
    ],
)
def test_createuser_errors_are_one_line_and_change_nothing(
    capsys, monkeypatch, argv, stdin, message
):
    code, out, err = run(capsys, monkeypatch, *argv, stdin=stdin)
    assert code == 1
    assert err.strip().startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert not User.objects.exists()
    assert not Organisation.objects.exists()


def test_createuser_refuses_an_existing_user(capsys, monkeypatch):
    run(
        capsys,
        monkeypatch,
        "createuser",
        "e@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        stdin=GOOD,
    )
    code, _, err = run(
        capsys,
        monkeypatch,
        "createuser",
        "E@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        stdin=GOOD,
    )
    assert code == 1
    assert err.strip() == "sealbox: a user with the email e@example.com already exists"


def test_createuser_without_terminal_or_stdin_flag(capsys, monkeypatch):
    code, _, err = run(
        capsys, monkeypatch, "createuser", "f@example.com", "--org", "Acme", stdin=""
    )
    assert code == 1
    assert "use --password-stdin" in err


def test_audit_verify_reports_count_and_break(capsys, monkeypatch):
    run(
        capsys,
        monkeypatch,
        "createuser",
        "g@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        stdin=GOOD,
    )
    code, out, _ = run(capsys, monkeypatch, "audit", "verify")
    assert code == 0
    assert out.strip() == "Audit log intact: 2 events checked."
    event = Event.objects.get(action="user.created")
    Event.objects.filter(pk=event.pk).update(actor_label="mallory@example.com")
    code, out, _ = run(capsys, monkeypatch, "audit", "verify", "--org", "Acme")
    assert code == 1
    assert f"event {event.pk} (seq 2, user.created)" in out
    assert "content does not match its hash" in out


def test_audit_verify_unknown_org(capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "audit", "verify", "--org", "Nobody")
    assert code == 1
    assert err.strip() == "sealbox: no organisation named 'Nobody'"


def manage(*argv):
    """Management commands in-process (the CLI's passthrough closes the test connection)."""
    out = io.StringIO()
    call_command(*argv, stdout=out)
    return out.getvalue()


def test_manage_plans_and_licence(capsys, monkeypatch):
    run(
        capsys,
        monkeypatch,
        "createuser",
        "h@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        stdin=GOOD,
    )
    out = manage("plans")
    assert "Eco: attachments 0 bytes per send" in out
    assert "Pro: attachments 2500000000 bytes per send" in out
    out = manage("plans", "Advanced", "--max-send", "200MB", "--retention-days", "60")
    assert "Advanced: attachments 200000000 bytes per send, retention 60 days" in out
    out = manage("licence", "Acme", "--plan", "Pro", "--seats", "40", "--renewal", "2027-06-30")
    assert "Acme: plan Pro, 1/40 seats used, renews 2027-06-30" in out
    org = Organisation.objects.get(name="Acme")
    assert (org.plan.name, org.seats, str(org.renewal_date)) == ("Pro", 40, "2027-06-30")
    assert Event.objects.filter(action="licence.changed", organisation=org).exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["licence", "Acme", "--renewal", "next year"], "--renewal: expected YYYY-MM-DD"),
        (["licence", "Acme", "--seats", "0"], "--seats: expected at least 1"),
        (["licence", "Acme", "--plan", "Gold"], "no plan named 'Gold'"),
        (["licence", "Nobody"], "no organisation named 'Nobody'"),
        (["plans", "Eco", "--max-send", "lots"], "size 'lots': expected"),
    ],
)
def test_manage_bad_input_changes_nothing(capsys, monkeypatch, argv, message):
    run(
        capsys,
        monkeypatch,
        "createuser",
        "i@example.com",
        "--org",
        "Acme",
        "--password-stdin",
        stdin=GOOD,
    )
    with pytest.raises(CommandError, match=message):
        manage(*argv)
    org = Organisation.objects.get(name="Acme")
    assert (org.seats, org.plan.name) == (5, "Advanced")


def test_manage_organisations_lists_ids_and_slugs(capsys, monkeypatch):
    for email, org in (("l@example.com", "Acme"), ("m@example.com", "Beta & Co")):
        run(
            capsys,
            monkeypatch,
            "createuser",
            email,
            "--org",
            org,
            "--password-stdin",
            stdin=GOOD,
        )
    acme, beta = Organisation.objects.get(name="Acme"), Organisation.objects.get(name="Beta & Co")
    assert manage("organisations").splitlines() == [
        f"{acme.pk}\tacme\tAcme\tAdvanced",
        f"{beta.pk}\tbeta-co\tBeta & Co\tAdvanced",
    ]


def test_seats_cannot_drop_below_active_users(capsys, monkeypatch):
    for email in ("j@example.com", "k@example.com"):
        run(
            capsys,
            monkeypatch,
            "createuser",
            email,
            "--org",
            "Acme",
            "--password-stdin",
            stdin=GOOD,
        )
    with pytest.raises(CommandError, match="needs at least that many seats"):
        manage("licence", "Acme", "--seats", "1")


def test_installed_command_on_a_fresh_data_dir(tmp_path):
    """The real console script, as an operator runs it, against a new SQLite data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env["SEALBOX_DATA_DIR"] = str(tmp_path / "data")
    sealbox = os.path.join(os.path.dirname(sys.executable), "sealbox")
    created = subprocess.run(
        [sealbox, "createuser", "op@example.com", "--org", "Fresh", "--admin", "--password-stdin"],
        input=GOOD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "data" / "sealbox.sqlite3").exists()
    verified = subprocess.run(
        [sealbox, "audit", "verify"], env=env, capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0
    assert verified.stdout.strip() == "Audit log intact: 2 events checked."
    plans = subprocess.run(
        [sealbox, "manage", "plans"], env=env, capture_output=True, text=True, timeout=60
    )
    assert plans.returncode == 0
    assert "Advanced: attachments 100000000 bytes per send" in plans.stdout
