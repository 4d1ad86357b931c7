"""Configuration from SEALBOX_* variables: defaults, URL forms, and one-line errors."""

import os
import stat
import subprocess
import sys

import pytest

from sealbox import config
from sealbox.config import ConfigError


def load(tmp_path, **env):
    return config.load({"SEALBOX_DATA_DIR": str(tmp_path), **env})


def test_embedded_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.database["ENGINE"] == "django.db.backends.sqlite3"
    assert cfg.database["NAME"] == str(tmp_path / "sealbox.sqlite3")
    assert "WAL" in cfg.database["OPTIONS"]["init_command"]
    assert "PRAGMA secure_delete=ON" in cfg.database["OPTIONS"]["init_command"]
    assert "PRAGMA synchronous=NORMAL" in cfg.database["OPTIONS"]["init_command"]
    assert cfg.database["OPTIONS"]["timeout"] >= 5  # waits for the write lock, not "locked"
    # Kept between requests (a new connection per request re-runs the PRAGMAs).
    assert cfg.database["CONN_MAX_AGE"] == 60
    assert cfg.database["CONN_HEALTH_CHECKS"] is True
    assert cfg.storage["OPTIONS"]["location"] == str(tmp_path / "blobs")
    assert cfg.email["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert cfg.sms_url == "console://"
    assert cfg.base_url == "http://127.0.0.1:8000"
    assert cfg.debug is False
    assert cfg.session_idle_seconds == 3600
    assert cfg.session_max_seconds == 12 * 3600


def test_secret_key_generated_once_with_private_mode(tmp_path):
    first = load(tmp_path).secret_key
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 40
    assert load(tmp_path).secret_key == first


def test_explicit_secret_key_wins(tmp_path):
    key = "k" * 40
    assert load(tmp_path, SEALBOX_SECRET_KEY=key).secret_key == key
    assert not (tmp_path / "secret_key").exists()


def test_shared_database_requires_an_explicit_secret_key(tmp_path):
    # A key generated into one node's data folder would differ on every node: sessions
    # and sealed emails would then fail everywhere but where they were made.
    with pytest.raises(ConfigError) as error:
        load(tmp_path, SEALBOX_DATABASE_URL="postgres://sb@127.0.0.1:5432/sealbox")
    message = str(error.value)
    assert message.startswith("SEALBOX_SECRET_KEY: required with a shared database")
    assert "\n" not in message
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_fallbacks_newest_first(tmp_path):
    old, older = "o" * 40, "p" * 40
    cfg = load(tmp_path, SEALBOX_SECRET_KEY_FALLBACKS=f"{old}, {older}")
    assert cfg.secret_key_fallbacks == [old, older]
    assert load(tmp_path).secret_key_fallbacks == []


def test_postgres_url(tmp_path):
    cfg = load(
        tmp_path,
        SEALBOX_DATABASE_URL="postgres://sb@127.0.0.1:5432/sealbox",
        SEALBOX_SECRET_KEY="s" * 40,
    )
    assert cfg.database["ENGINE"] == "django.db.backends.postgresql"
    assert cfg.database["NAME"] == "sealbox"
    assert cfg.database["HOST"] == "127.0.0.1"
    assert cfg.database["PORT"] == 5432
    assert cfg.database["CONN_MAX_AGE"] == 60
    assert cfg.database["CONN_HEALTH_CHECKS"] is True


def test_s3_storage_url(tmp_path):
    cfg = load(
        tmp_path,
        SEALBOX_STORAGE_URL="s3://KEY:SECRET@blobs?endpoint_url=http://127.0.0.1:9000&region=ca",
    )
    assert cfg.storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = cfg.storage["OPTIONS"]
    assert options["bucket_name"] == "blobs"
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["region_name"] == "ca"
    assert (options["access_key"], options["secret_key"]) == ("KEY", "SECRET")


def test_email_urls(tmp_path):
    smtp = load(tmp_path, SEALBOX_EMAIL_URL="smtp://user:pw@mail.example.com:2525").email
    assert smtp["EMAIL_HOST"] == "mail.example.com"
    assert smtp["EMAIL_PORT"] == 2525
    files = load(tmp_path, SEALBOX_EMAIL_URL="filemail:////tmp/sealbox-mail").email
    assert files["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert files["EMAIL_FILE_PATH"] == "/tmp/sealbox-mail"


def test_smtp_waits_a_bounded_time(tmp_path):
    # Without a time-out a mail server that stops answering holds a worker for ever.
    assert (
        load(tmp_path, SEALBOX_EMAIL_URL="smtp://mail.example.com:25").email["EMAIL_TIMEOUT"] == 30
    )
    custom = load(tmp_path, SEALBOX_EMAIL_URL="smtp://mail.example.com:25?timeout=5").email
    assert custom["EMAIL_TIMEOUT"] == 5
    assert "TIMEOUT" not in custom.get("OPTIONS", {})
    for wrong in ("0", "abc", "-3"):
        with pytest.raises(ConfigError, match="timeout"):
            load(tmp_path, SEALBOX_EMAIL_URL=f"smtp://mail.example.com:25?timeout={wrong}")


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("SEALBOX_DATABASE_URL", "mysql://root@localhost/x", "SEALBOX_DATABASE_URL: expected"),
        ("SEALBOX_DATABASE_URL", "postgres://h:notaport/db", "SEALBOX_DATABASE_URL"),
        ("SEALBOX_STORAGE_URL", "ftp://host/x", "SEALBOX_STORAGE_URL: expected"),
        ("SEALBOX_STORAGE_URL", "s3://", "SEALBOX_STORAGE_URL: expected"),
        ("SEALBOX_EMAIL_URL", "pigeon://coop", "SEALBOX_EMAIL_URL: expected"),
        ("SEALBOX_SMS_URL", "carrier://x", "SEALBOX_SMS_URL: expected"),
        ("SEALBOX_BASE_URL", "sealbox.example.com", "SEALBOX_BASE_URL: expected"),
        ("SEALBOX_BASE_URL", "ftp://sealbox.example.com", "SEALBOX_BASE_URL: expected"),
        ("SEALBOX_SECRET_KEY", "short", "SEALBOX_SECRET_KEY: expected at least 32"),
        ("SEALBOX_DEBUG", "maybe", "SEALBOX_DEBUG: expected true or false"),
        ("SEALBOX_SESSION_IDLE_MINUTES", "ten", "SEALBOX_SESSION_IDLE_MINUTES: expected"),
        ("SEALBOX_TIME_ZONE", "Mars/Olympus", "SEALBOX_TIME_ZONE: expected"),
        ("SEALBOX_SECRET_KEY_FALLBACKS", "short", "SEALBOX_SECRET_KEY_FALLBACKS: expected"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **{name: value})
    message = str(error.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_database_error_never_echoes_the_password(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, SEALBOX_DATABASE_URL="oracle://user:hunter2secret@db/x")
    assert "hunter2secret" not in str(error.value)


def test_data_dir_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="SEALBOX_DATA_DIR"):
        config.load({"SEALBOX_DATA_DIR": str(blocker)})


def test_cli_prints_one_line_and_exits_2_on_bad_config(tmp_path):
    env = {**os.environ, "SEALBOX_DATA_DIR": str(tmp_path), "SEALBOX_BASE_URL": "nonsense"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "sealbox.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("sealbox: configuration error: SEALBOX_BASE_URL")
