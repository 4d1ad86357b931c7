"""`sealbox migrate` and every command that migrates at start: safe when started together.

Four processes start at once on an empty database, as app servers, workers and
`createuser` do on a first deploy; without the migration lock PostgreSQL refused all but
one (duplicate type names) and SQLite created tables twice.
"""

import os
import subprocess
import sys

import pytest

from tests.processes import SHARED_SECRET_KEY, clean_env, empty_postgres_database

SEALBOX = os.path.join(os.path.dirname(sys.executable), "sealbox")


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
def postgres_url():
    with empty_postgres_database() as url:
        yield url


def test_concurrent_first_start_on_postgresql(tmp_path, postgres_url):
    env = clean_env(
        tmp_path, SEALBOX_DATABASE_URL=postgres_url, SEALBOX_SECRET_KEY=SHARED_SECRET_KEY
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
