"""Typed configuration read from SEALBOX_* environment variables.

Every variable is validated here, once, so that a bad value stops start-up with one
line naming the variable and what was expected (never echoing a secret it may hold).
"""

from __future__ import annotations

import os
import secrets
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import environ


class ConfigError(Exception):
    """A SEALBOX_* variable has a value Sealbox cannot use."""


SMS_SCHEMES = ("console", "file", "twilio", "https", "http")


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database: dict[str, Any]
    storage: dict[str, Any]
    email: dict[str, Any]
    sms_url: str
    base_url: str
    secret_key: str
    secret_key_fallbacks: list[str]
    debug: bool
    session_idle_seconds: int
    session_max_seconds: int
    trusted_proxy_count: int
    default_from_email: str
    time_zone: str
    log_format: str
    metrics_token: str
    metrics_allow: list[str]
    # With S3 storage (unless `?direct=false`): browsers and the CLI upload and download
    # ciphertext straight from the store with presigned URLs.
    direct_storage: DirectStorage | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectStorage:
    """How browsers and clients reach the S3 store themselves (direct mode)."""

    # The endpoint presigned URLs name: SEALBOX_STORAGE_PUBLIC_URL when the store is
    # reached by another address from outside, else "" (the store's own endpoint).
    public_endpoint: str
    # What the pages' Content-Security-Policy `connect-src` must allow.
    origins: tuple[str, ...]


def _bool(name: str, env: dict[str, str], default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _int(name: str, env: dict[str, str], default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: expected a number of at least {minimum}, got {value}")
    return value


def _data_dir(env: dict[str, str]) -> Path:
    raw = env.get("SEALBOX_DATA_DIR") or "./sealbox-data"
    path = Path(raw).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"SEALBOX_DATA_DIR: {path} exists and is not a folder")
    return path


def data_dir(env: dict[str, str] | None = None) -> Path:
    """The data folder alone (for what must be set up before Django loads)."""
    return _data_dir(dict(os.environ if env is None else env))


def _database(env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    raw = env.get("SEALBOX_DATABASE_URL")
    if not raw:
        return sqlite_database(data_dir / "sealbox.sqlite3")
    scheme = urlsplit(raw).scheme
    if scheme not in ("sqlite", "postgres", "postgresql", "pgsql"):
        raise ConfigError(
            "SEALBOX_DATABASE_URL: expected sqlite:////path/to/db.sqlite3 or "
            "postgres://user@host:5432/name"
        )
    try:
        config = environ.Env.db_url_config(raw)
    except Exception:
        raise ConfigError(
            "SEALBOX_DATABASE_URL: not a valid database URL "
            "(expected postgres://user@host:5432/name)"
        ) from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return sqlite_database(Path(config["NAME"]))
    if not config.get("NAME"):
        raise ConfigError("SEALBOX_DATABASE_URL: the database name is missing")
    return config | CONNECTION_LIFETIME


# A connection is kept for a minute by the thread that opened it, instead of opened and
# closed (with its PRAGMAs, or PostgreSQL's authentication) for every request; the
# health check replaces one the database dropped before it is used.
CONNECTION_LIFETIME = {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}


def sqlite_database(path: Path) -> dict[str, Any]:
    # IMMEDIATE transactions take the write lock at BEGIN, so concurrent writers queue
    # instead of failing with "database is locked" half-way through a transaction (the
    # audit chain relies on this to append without forking).
    # secure_delete: deleted and overwritten content is zeroed in the file instead of
    # left in free space (wiped grant secrets, erased email payloads; see notify.sealing).
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        **CONNECTION_LIFETIME,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;"
            ),
        },
    }


def _storage(env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    raw = env.get("SEALBOX_STORAGE_URL")
    if not raw or raw == "file://":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(data_dir / "blobs")},
        }
    parts = urlsplit(raw)
    if parts.scheme == "file":
        if not parts.path:
            raise ConfigError("SEALBOX_STORAGE_URL: expected file:////absolute/path")
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": unquote(parts.path)},
        }
    if parts.scheme == "s3":
        if not parts.hostname:
            raise ConfigError(
                "SEALBOX_STORAGE_URL: expected s3://bucket?endpoint_url=https://…&region=…"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        from botocore.config import Config as BotoConfig

        options: dict[str, Any] = {
            # A store that hangs must not hold a request (or /readyz) for minutes: bounded
            # connect and read waits, a few retries on throttling and connection errors.
            "client_config": BotoConfig(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                signature_version="s3v4",
            ),
            "bucket_name": parts.hostname,
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": True,
        }
        if parts.username:
            options["access_key"] = unquote(parts.username)
            options["secret_key"] = unquote(parts.password or "")
        if "endpoint_url" in query:
            options["endpoint_url"] = query["endpoint_url"]
        if "region" in query:
            options["region_name"] = query["region"]
        if parts.path.strip("/"):
            options["location"] = parts.path.strip("/")
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    raise ConfigError("SEALBOX_STORAGE_URL: expected file:////path or s3://bucket?endpoint_url=…")


def _origin(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: expected an address like https://s3.example.com, got {raw!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _direct_storage(env: dict[str, str]) -> DirectStorage | None:
    """Direct mode: on by default with S3 storage, off with `?direct=false` (and always
    off with the local folder, which only the app servers can reach)."""
    raw = env.get("SEALBOX_STORAGE_URL") or ""
    public = (env.get("SEALBOX_STORAGE_PUBLIC_URL") or "").rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme != "s3":
        if public:
            raise ConfigError("SEALBOX_STORAGE_PUBLIC_URL: only for s3:// storage")
        return None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    direct = {"SEALBOX_STORAGE_URL direct": query.get("direct", "")}
    if not _bool("SEALBOX_STORAGE_URL direct", direct, True):
        return None
    if public:
        origins: tuple[str, ...] = (_origin("SEALBOX_STORAGE_PUBLIC_URL", public),)
    elif "endpoint_url" in query:
        # A custom endpoint is addressed path-style (bucket in the path): its origin.
        origins = (_origin("SEALBOX_STORAGE_URL endpoint_url", query["endpoint_url"]),)
    else:
        # Amazon S3 itself: the bucket's virtual host, global and regional.
        bucket, region = parts.hostname, query.get("region", "us-east-1")
        origins = (
            f"https://{bucket}.s3.amazonaws.com",
            f"https://{bucket}.s3.{region}.amazonaws.com",
        )
    return DirectStorage(public_endpoint=public, origins=origins)


EMAIL_TIMEOUT_SECONDS = 30


def _email(env: dict[str, str], data_dir: Path) -> dict[str, Any]:
    raw = env.get("SEALBOX_EMAIL_URL") or "consolemail://"
    scheme = urlsplit(raw).scheme
    if scheme not in ("smtp", "smtps", "smtp+tls", "smtp+ssl", "consolemail", "filemail"):
        raise ConfigError(
            "SEALBOX_EMAIL_URL: expected smtp://user:password@host:port, consolemail:// "
            "or filemail:////path/to/folder"
        )
    try:
        config = environ.Env.email_url_config(raw)
    except Exception:
        raise ConfigError("SEALBOX_EMAIL_URL: not a valid email URL") from None
    if scheme == "filemail" and not config.get("EMAIL_FILE_PATH"):
        raise ConfigError("SEALBOX_EMAIL_URL: expected filemail:////absolute/path/to/folder")
    # Without a time-out, a mail server that stops answering holds a worker for ever (and
    # the message with it): each SMTP step waits this long at most, then the attempt
    # fails as transient and is retried later. `?timeout=N` sets it.
    timeout = (config.get("OPTIONS") or {}).pop("TIMEOUT", EMAIL_TIMEOUT_SECONDS)
    if not isinstance(timeout, int) or timeout <= 0:
        raise ConfigError("SEALBOX_EMAIL_URL: timeout must be a whole number of seconds")
    config["EMAIL_TIMEOUT"] = timeout
    return config


def _sms_url(env: dict[str, str]) -> str:
    raw = env.get("SEALBOX_SMS_URL") or "console://"
    parts = urlsplit(raw)
    if parts.scheme not in SMS_SCHEMES:
        raise ConfigError(
            "SEALBOX_SMS_URL: expected console://, file:////path/to/sms.jsonl, "
            "twilio://SID:TOKEN@?from=+1… or an https:// webhook"
        )
    if parts.scheme == "file" and not parts.path:
        raise ConfigError("SEALBOX_SMS_URL: expected file:////absolute/path/to/sms.jsonl")
    return raw


def _base_url(env: dict[str, str]) -> str:
    raw = env.get("SEALBOX_BASE_URL") or "http://127.0.0.1:8000"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(
            f"SEALBOX_BASE_URL: expected an address like https://sealbox.example.com, got {raw!r}"
        )
    return raw.rstrip("/")


def _secret_key(env: dict[str, str], data_dir: Path, database: dict[str, Any]) -> str:
    raw = env.get("SEALBOX_SECRET_KEY")
    if raw:
        if len(raw) < 32:
            raise ConfigError("SEALBOX_SECRET_KEY: expected at least 32 characters")
        return raw
    if database["ENGINE"] != "django.db.backends.sqlite3":
        # Every app server and worker of a shared database must hold the same key, or
        # sessions and sealed emails made on one node fail on the others: a key generated
        # into one node's data folder would be that node's alone.
        raise ConfigError(
            "SEALBOX_SECRET_KEY: required with a shared database (set the same value on "
            "every app server and worker; e.g. python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(50))')"
        )
    return load_or_create_secret_key(data_dir / "secret_key")


def _secret_key_fallbacks(env: dict[str, str]) -> list[str]:
    """Former secret keys, newest first, still accepted while a rotation completes."""
    raw = env.get("SEALBOX_SECRET_KEY_FALLBACKS") or ""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if any(len(key) < 32 for key in keys):
        raise ConfigError(
            "SEALBOX_SECRET_KEY_FALLBACKS: expected former keys of at least 32 characters, "
            "separated by commas"
        )
    return keys


def load_or_create_secret_key(path: Path) -> str:
    """Read the generated key, or create it (mode 0600) on first run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
    else:
        key = secrets.token_urlsafe(50)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    if len(key) < 32:
        raise ConfigError(f"SEALBOX_SECRET_KEY: the generated key in {path} is damaged")
    return key


def _time_zone(env: dict[str, str]) -> str:
    raw = env.get("SEALBOX_TIME_ZONE") or "UTC"
    if raw not in zoneinfo.available_timezones():
        raise ConfigError(
            f"SEALBOX_TIME_ZONE: expected a time zone like America/Toronto, got {raw!r}"
        )
    return raw


def _choice(name: str, env: dict[str, str], default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return raw


def _metrics_token(env: dict[str, str]) -> str:
    raw = env.get("SEALBOX_METRICS_TOKEN") or ""
    if raw and len(raw) < 24:
        raise ConfigError("SEALBOX_METRICS_TOKEN: expected at least 24 characters")
    return raw


def _networks(name: str, env: dict[str, str]) -> list[str]:
    import ipaddress

    networks = []
    for raw in (env.get(name) or "").split(","):
        if not raw.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(raw.strip(), strict=False)))
        except ValueError:
            raise ConfigError(
                f"{name}: expected addresses or networks separated by commas "
                f"(e.g. 10.0.0.0/8,127.0.0.1), got {raw.strip()!r}"
            ) from None
    return networks


def _default_from(base_url: str) -> str:
    host = urlsplit(base_url).hostname or "localhost"
    if host.replace(".", "").isdigit() or ":" in host:
        host = "localhost"  # an IP address is not a mail domain
    return f"Sealbox <no-reply@{host}>"


def load(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    data_dir = _data_dir(env)
    base_url = _base_url(env)
    database = _database(env, data_dir)
    return Config(
        data_dir=data_dir,
        database=database,
        storage=_storage(env, data_dir),
        email=_email(env, data_dir),
        sms_url=_sms_url(env),
        base_url=base_url,
        secret_key=_secret_key(env, data_dir, database),
        secret_key_fallbacks=_secret_key_fallbacks(env),
        debug=_bool("SEALBOX_DEBUG", env, False),
        session_idle_seconds=_int("SEALBOX_SESSION_IDLE_MINUTES", env, 60, minimum=1) * 60,
        session_max_seconds=_int("SEALBOX_SESSION_MAX_HOURS", env, 12, minimum=1) * 3600,
        trusted_proxy_count=_int("SEALBOX_TRUSTED_PROXY_COUNT", env, 0),
        default_from_email=env.get("SEALBOX_FROM_EMAIL") or _default_from(base_url),
        time_zone=_time_zone(env),
        log_format=_choice("SEALBOX_LOG_FORMAT", env, "plain", ("plain", "json")),
        metrics_token=_metrics_token(env),
        metrics_allow=_networks("SEALBOX_METRICS_ALLOW", env),
        direct_storage=_direct_storage(env),
    )
