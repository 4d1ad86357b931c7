"""Settings for the test suite: the product's settings, with a private data folder.

Set SEALBOX_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the
whole suite on PostgreSQL; SQLite (a file in the private data folder) is used otherwise.
"""

import os
import tempfile

_DATA_DIR = tempfile.mkdtemp(prefix="sealbox-test-")
os.environ["SEALBOX_DATA_DIR"] = _DATA_DIR
os.environ["SEALBOX_SECRET_KEY"] = "sealbox-test-secret-key-not-for-production-use-0123456789"
for _name in (
    "SEALBOX_STORAGE_URL",
    "SEALBOX_EMAIL_URL",
    "SEALBOX_SMS_URL",
    "SEALBOX_BASE_URL",
    "SEALBOX_SECRET_KEY_FALLBACKS",
    "SEALBOX_DEBUG",
    "SEALBOX_TRUSTED_PROXY_COUNT",
    "SEALBOX_TIME_ZONE",
):
    os.environ.pop(_name, None)
if os.environ.get("SEALBOX_TEST_DATABASE_URL"):
    os.environ["SEALBOX_DATABASE_URL"] = os.environ["SEALBOX_TEST_DATABASE_URL"]
else:
    os.environ.pop("SEALBOX_DATABASE_URL", None)

from sealbox.settings import *  # noqa: E402,F403
from sealbox.settings import PASSWORD_HASHERS as PRODUCTION_PASSWORD_HASHERS  # noqa: E402,F401

# One test database per run, so runs side by side on one server never collide.
if DATABASES["default"]["ENGINE"].endswith("postgresql"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_sealbox_{os.getpid()}"}  # noqa: F405
else:
    # A file, as the embedded default runs, not Django's shared in-memory database: threaded
    # tests then get one connection each, queued by SQLite's write lock (IMMEDIATE
    # transactions) exactly as concurrent requests are in production.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_DATA_DIR, "test.sqlite3")}  # noqa: F405
    # A test run needs no durability: no fsync, so the file is as fast as memory.
    DATABASES["default"]["OPTIONS"]["init_command"] = (  # noqa: F405
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA secure_delete=ON;"
    )

# Tasks run at once, in the request that queued them.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
# Still Argon2id, with a small cost so hundreds of logins stay fast.
PASSWORD_HASHERS = ["tests.hashers.FastArgon2PasswordHasher"]

LOGGING["handlers"]["console"]["class"] = "tests.logs.CurrentStderrHandler"  # noqa: F405
