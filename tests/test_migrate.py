"""`sealbox migrate` and every command that migrates at start: safe when started together.

Four processes start at once on an empty database, as app servers, workers and
`createuser` do on a first deploy; without the migration lock PostgreSQL refused all but
one (duplicate type names) and SQLite created tables twice.
"""

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

SEALBOX = os.path.join(os.path.dirname(sys.executable), "sealbox")
POSTGRES_URL = os.environ.get("SEALBOX_TEST_DATABASE_URL", "")


def clean_env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALBOX_", "DJANGO_"))}
    env["SEALBOX_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra)
    return env


def start_together(commands: list[list[str]], env: dict[str, str]) -> list[tuple[int, str]]:
    processes = [
        subprocess.Popen(  # noqa: S603
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    ]
    results = []
    for process in processes:
        output, _ = process.communicate(timeout=240)
        results.append((process.returncode, output))
    return results


def assert_all_migrated(results: list[tuple[int, str]]) -> None:
    for code, output in results:
        assert code == 0, output
        assert "Error" not in output, output


def test_concurrent_migrations_on_sqlite(tmp_path):
    env = clean_env(tmp_path)
    results = start_together([[SEALBOX, "migrate"]] * 4, env)
    assert_all_migrated(results)
    check = subprocess.run(  # noqa: S603
        [SEALBOX, "manage", "migrate", "--check"], env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture
def empty_postgres_database():
    if not POSTGRES_URL:
        pytest.skip("needs PostgreSQL: set SEALBOX_TEST_DATABASE_URL")
    import psycopg

    name = f"sealbox_migrate_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(POSTGRES_URL)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_first_start_on_postgresql(tmp_path, empty_postgres_database):
    env = clean_env(
        tmp_path,
        SEALBOX_DATABASE_URL=empty_postgres_database,
        SEALBOX_SECRET_KEY="same-key-on-every-node-" + "x" * 20,
    )
    results = start_together(
        [
            [SEALBOX, "migrate"],
            [SEALBOX, "manage", "migrate"],
            [SEALBOX, "migrate"],
            [SEALBOX, "manage", "migrate", "--noinput"],
        ],
        env,
    )
    assert_all_migrated(results)


def test_serve_and_worker_skip_migrations_when_asked():
    from sealbox.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "--no-migrate"]).no_migrate is True
    assert parser.parse_args(["worker", "--no-migrate"]).no_migrate is True
    assert parser.parse_args(["serve"]).no_migrate is False
