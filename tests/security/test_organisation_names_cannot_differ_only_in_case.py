"""Issue 11, item 7: organisation names that differed only in case (OrgA, ORGA) let an
administrator capture operator commands (`manage licence`, `createuser --org`,
`audit verify --org` acted on ORGA instead of OrgA).

Now names are unique whatever their case (a database constraint on Lower(name), a
migration that refuses existing clashes and names them, a form error when renaming),
every organisation has a slug, and operator commands take an id or a slug (or a name)
and refuse, in one line with a non-zero exit, a reference that fits more than one.
"""

import io
import sys
import threading
from datetime import date

import django.db
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from sealbox import cli
from sealbox.accounts import organisations
from sealbox.accounts import services as accounts
from sealbox.accounts.models import Organisation, Plan, Role, User
from sealbox.audit.models import Event
from sealbox.users import services as users
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

GOOD = "a long enough passphrase 42"


def run(capsys, monkeypatch, *argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manage(*argv) -> str:
    out = io.StringIO()
    call_command(*argv, stdout=out)
    return out.getvalue()


def test_the_database_refuses_a_name_that_differs_only_in_case(organisation):
    plan = Plan.objects.get(name="Advanced")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organisation.objects.create(
            name="TREMBLAY avocats", plan=plan, seats=1, renewal_date=date(2027, 1, 1)
        )
    same, created = accounts.get_or_create_organisation("TREMBLAY AVOCATS")
    assert (same.pk, created) == (organisation.pk, False)
    assert Organisation.objects.count() == 1


def test_every_organisation_has_a_slug_made_from_its_name_never_a_number(plans):
    acme, _ = accounts.get_or_create_organisation("Acme Inc")
    acme_too, _ = accounts.get_or_create_organisation("Acme, Inc.")
    number, _ = accounts.get_or_create_organisation("2024")
    assert (acme.slug, acme_too.slug, number.slug) == ("acme-inc", "acme-inc-2", "org-2024")


def login(user) -> Client:
    browser = Client()
    assert browser.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    return browser


def settings_form(name: str) -> dict:
    return {
        "name": name,
        "default_sms_country": "CA",
        "default_expiry_days": "7",
        "opening_code_in_separate_email": "True",
        "approved_email_domains": "",
        "accent_colour": "",
        "audit_retention_days": "400",
    }


def test_renaming_to_another_organisations_name_in_another_case_is_a_form_error(
    organisation, other_organisation, make_user
):
    mallory = make_user("mallory@other.example", org=other_organisation, role=Role.ADMIN)
    browser = login(mallory)
    response = browser.post("/users/organisation/", settings_form("tremblay AVOCATS"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["name"] == [
        "Another organisation already has this name (letter case aside). Choose another."
    ]
    other_organisation.refresh_from_db()
    assert other_organisation.name == "Other Firm"
    assert not Event.objects.filter(action="organisation.updated").exists()
    # Its own name in another case is its own business.
    response = browser.post("/users/organisation/", settings_form("OTHER firm"))
    assert response.status_code == 302
    other_organisation.refresh_from_db()
    assert other_organisation.name == "OTHER firm"
    assert other_organisation.slug == "other-firm"  # the slug stays what it was


def test_a_name_taken_between_the_check_and_the_save_is_refused_too(
    organisation, other_organisation, make_user, monkeypatch
):
    mallory = make_user("mallory@other.example", org=other_organisation, role=Role.ADMIN)
    monkeypatch.setattr(organisations, "organisation_name_taken", lambda name, exclude=None: False)
    with pytest.raises(accounts.AccountError, match="letter case aside"):
        users.update_organisation(None, mallory, name="TREMBLAY AVOCATS")
    assert Organisation.objects.get(pk=other_organisation.pk).name == "Other Firm"


def make_org(capsys, monkeypatch, org: str, email: str) -> Organisation:
    code, out, err = run(
        capsys,
        monkeypatch,
        "createuser",
        email,
        "--org",
        org,
        "--admin",
        "--password-stdin",
        stdin=GOOD,
    )
    assert code == 0, err
    return User.objects.get(email=email).organisation


def test_operator_commands_take_an_id_or_a_slug(capsys, monkeypatch, plans):
    acme = make_org(capsys, monkeypatch, "Acme Inc", "boss@acme.example")
    assert acme.slug == "acme-inc"
    out = manage("licence", "acme-inc", "--seats", "9")
    assert out.startswith("Acme Inc: plan Advanced, 1/9 seats")
    out = manage("licence", str(acme.pk), "--seats", "11")
    assert out.startswith("Acme Inc: plan Advanced, 1/11 seats")
    code, out, _ = run(
        capsys,
        monkeypatch,
        "createuser",
        "clerk@acme.example",
        "--org",
        "acme-inc",
        "--password-stdin",
        stdin=GOOD,
    )
    assert code == 0 and "standard user of Acme Inc." in out
    assert f"Organisation id {acme.pk}, slug acme-inc." in out
    assert run(capsys, monkeypatch, "audit", "verify", "--org", str(acme.pk))[0] == 0
    assert run(capsys, monkeypatch, "audit", "verify", "--org", "acme-inc")[0] == 0
    assert "acme-inc\tAcme Inc" in manage("organisations")


def test_an_organisation_named_like_anothers_slug_makes_it_ambiguous_not_captured(
    capsys, monkeypatch, plans
):
    acme = make_org(capsys, monkeypatch, "Acme Inc", "boss@acme.example")
    mallory = User.objects.get(
        organisation=make_org(capsys, monkeypatch, "Mallory Ltd", "mallory@evil.example")
    )
    users.update_organisation(None, mallory, name="acme-inc")  # Acme's slug as a name
    evil = mallory.organisation

    code, _, err = run(capsys, monkeypatch, "audit", "verify", "--org", "acme-inc")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "'acme-inc' could be several organisations" in err
    assert f"id {acme.pk}" in err and f"id {evil.pk}" in err

    code, _, err = run(
        capsys,
        monkeypatch,
        "createuser",
        "new-admin@acme.example",
        "--org",
        "acme-inc",
        "--admin",
        "--password-stdin",
        stdin=GOOD,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert not User.objects.filter(email="new-admin@acme.example").exists()

    with pytest.raises(CommandError, match="could be several organisations"):
        manage("licence", "acme-inc", "--plan", "Pro")
    assert {o.plan.name for o in Organisation.objects.all()} == {"Advanced"}

    # The id is never ambiguous, even for an organisation named after it.
    users.update_organisation(None, mallory, name=str(acme.pk))
    assert manage("licence", str(acme.pk), "--plan", "Pro").startswith("Acme Inc: plan Pro")
    evil.refresh_from_db()
    assert evil.plan.name == "Advanced"


def test_the_manage_command_refuses_in_one_line_with_a_non_zero_exit(capsys, monkeypatch, plans):
    make_org(capsys, monkeypatch, "Acme Inc", "boss@acme.example")
    make_org(capsys, monkeypatch, "Mallory Ltd", "mallory@evil.example")
    users.update_organisation(None, User.objects.get(email="mallory@evil.example"), name="acme-inc")
    # The passthrough closes connections when it ends; the test's must stay open.
    monkeypatch.setattr(django.db.connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["manage", "licence", "acme-inc", "--seats", "50"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "could be several organisations" in err
    assert set(Organisation.objects.values_list("seats", flat=True)) == {5}


def test_a_number_that_is_no_id_does_not_create_an_organisation(capsys, monkeypatch, plans):
    code, _, err = run(
        capsys,
        monkeypatch,
        "createuser",
        "x@example.com",
        "--org",
        "404",
        "--password-stdin",
        stdin=GOOD,
    )
    assert code == 1 and err.strip() == "sealbox: no organisation with id 404"
    assert not Organisation.objects.exists()


# --- existing clashes: the migration refuses, naming them ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_refuses_names_that_differ_only_in_case_and_names_them(plans):
    before = [("accounts", "0006_organisation_manager")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldOrganisation = old.get_model("accounts", "Organisation")
    plan_id = Plan.objects.get(name="Advanced").pk
    made = {}
    for name in ("OrgA", "ORGA", "Acme Inc", "Other"):
        made[name] = OldOrganisation.objects.create(
            name=name, plan_id=plan_id, seats=1, renewal_date=date(2027, 1, 1)
        ).pk
    try:
        executor = MigrationExecutor(connection)
        with pytest.raises(CommandError) as refused:
            executor.migrate([("accounts", "0008_organisation_slug_unique_name_ci")])
        message = str(refused.value)
        assert f"'OrgA' (id {made['OrgA']}) and 'ORGA' (id {made['ORGA']})" in message
        assert "Acme" not in message and "Other" not in message
        assert f"filter(pk={made['ORGA']})" in message  # how to rename one
        assert "\n" not in message
        OldOrganisation.objects.filter(pk=made["ORGA"]).update(name="ORGA (2)")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    slugs = dict(Organisation.objects.values_list("name", "slug"))
    assert slugs == {"OrgA": "orga", "ORGA (2)": "orga-2", "Acme Inc": "acme-inc", "Other": "other"}


# --- at the same moment: one organisation ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_name_created_twice_at_once_in_two_cases_is_one_organisation(plans, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set SEALBOX_TEST_DATABASE_URL")
    barrier = threading.Barrier(2)
    both_looked = threading.Barrier(2)
    results, errors = [], []

    class PlanAfterBothLooked:
        """Both threads have found no organisation of that name before either creates it."""

        DoesNotExist = Plan.DoesNotExist

        class objects:  # noqa: N801 - stands in for the manager
            @staticmethod
            def get(**lookup):
                both_looked.wait(timeout=10)
                return Plan.objects.get(**lookup)

    monkeypatch.setattr(organisations, "Plan", PlanAfterBothLooked)

    def create(name: str) -> None:
        try:
            barrier.wait()
            results.append(accounts.get_or_create_organisation(name))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(n,)) for n in ("Race Org", "RACE ORG")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Organisation.objects.count() == 1
    assert {org.pk for org, _ in results} == {Organisation.objects.get().pk}
    assert sorted(created for _, created in results) == [False, True]
    assert Event.objects.filter(action="organisation.created").count() == 1
