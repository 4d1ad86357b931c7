"""Django settings: everything comes from SEALBOX_* environment variables (see config.py)."""

from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

from sealbox import config, logs

CONFIG = config.load()
PACKAGE_DIR = Path(__file__).resolve().parent

DATA_DIR = CONFIG.data_dir
SECRET_KEY = CONFIG.secret_key
SECRET_KEY_FALLBACKS = CONFIG.secret_key_fallbacks
DEBUG = CONFIG.debug
SEALBOX_BASE_URL = CONFIG.base_url
SEALBOX_SMS_URL = CONFIG.sms_url
SEALBOX_TRUSTED_PROXY_COUNT = CONFIG.trusted_proxy_count

_base = urlsplit(CONFIG.base_url)
ALLOWED_HOSTS = [_base.hostname, "127.0.0.1", "localhost", "[::1]"]
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]
USE_HTTPS = _base.scheme == "https"

INSTALLED_APPS = [
    "sealbox.admin_apps.OperatorAdminConfig",  # the operator area: see admin_site.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "phonenumber_field",
    "django_tasks",
    "django_tasks_db",
    "sealbox.ratelimit",
    "sealbox.audit",
    "sealbox.accounts",
    # --- Two-factor authentication (sealbox.twofactor) ---
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "sealbox.twofactor",
    # ---
    "sealbox.notify",
    "sealbox.exchange",
    "sealbox.envelopes",
    "sealbox.history",
    "sealbox.ops",
]

MIDDLEWARE = [
    "sealbox.middleware.RequestLogMiddleware",  # request id, access line, metrics
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "sealbox.csrf.SealboxCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # two-factor: request.user.is_verified()
    "django.contrib.messages.middleware.MessageMiddleware",
    "sealbox.middleware.SessionTimeoutMiddleware",
    "sealbox.middleware.UserPreferencesMiddleware",
    # two-factor: "Require 2FA" sends users without a second factor to set one up.
    "sealbox.twofactor.middleware.TwoFactorPolicyMiddleware",
    "sealbox.middleware.StorageUnavailableMiddleware",  # the 503 page when storage is down
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "sealbox.urls"
WSGI_APPLICATION = "sealbox.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sealbox.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STORAGES = {
    "default": CONFIG.storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Direct mode (S3 only): presigned URLs let clients move ciphertext to and from the store
# without the app servers; None keeps every byte on the path through them.
SEALBOX_DIRECT_STORAGE = CONFIG.direct_storage
STATIC_URL = "/static/"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
# Served straight from the package (no STATIC_ROOT, no collectstatic step): the
# one-command install has nothing to build.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Nothing shared lives in a cache: limits, sessions and the task queue are in the
# database, so every app server sees the same state without Redis.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Email ------------------------------------------------------------------------
_email = CONFIG.email
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH")
EMAIL_TIMEOUT = _email.get("EMAIL_TIMEOUT")
DEFAULT_FROM_EMAIL = CONFIG.default_from_email
SERVER_EMAIL = CONFIG.default_from_email

# --- Background tasks ---------------------------------------------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Authentication ----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:account"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "first_name", "last_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "sealbox.accounts.validators.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 3600  # one hour

# --- Sessions and cookies --------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = CONFIG.session_max_seconds
SEALBOX_SESSION_IDLE_SECONDS = CONFIG.session_idle_seconds
SEALBOX_SESSION_MAX_SECONDS = CONFIG.session_max_seconds
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = USE_HTTPS
SESSION_COOKIE_NAME = "sealbox_session"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = USE_HTTPS
LANGUAGE_COOKIE_NAME = "sealbox_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = USE_HTTPS
LANGUAGE_COOKIE_HTTPONLY = True

# --- Security headers -------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Django only sends HSTS on requests that arrived over HTTPS.
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
if CONFIG.trusted_proxy_count:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        # The upload worker (static/sealbox/js/upload-worker.js), a module from this origin.
        "worker-src": [SELF],
        # Direct mode: the pages PUT and GET ciphertext at the store itself.
        "connect-src": [SELF, *(CONFIG.direct_storage.origins if CONFIG.direct_storage else ())],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# --- Internationalisation ------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = CONFIG.time_zone
USE_TZ = True

PHONENUMBER_DEFAULT_FORMAT = "E164"

# Files larger than this are decrypted by a service worker while they stream to disk
# instead of being assembled in the recipient's browser memory.
SEALBOX_IN_MEMORY_DOWNLOAD_LIMIT = 64 * 1024 * 1024

# --- Two-factor authentication (sealbox.twofactor) -------------------------------------
# Passkeys are a second factor only: the password step always comes first.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
# The relying party ID and the accepted origin come from the request's host, which
# ALLOWED_HOSTS has already restricted (the base URL's host, or localhost).
OTP_WEBAUTHN_HELPER_CLASS = "sealbox.twofactor.passkeys.SealboxWebAuthnHelper"
OTP_WEBAUTHN_RP_ID_CALLABLE = "sealbox.twofactor.passkeys.rp_id"
OTP_WEBAUTHN_RP_NAME = "Sealbox"
OTP_WEBAUTHN_ALLOWED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]
# A plain-http base URL is for local use; browsers only offer WebAuthn there on localhost.
SILENCED_SYSTEM_CHECKS = ["otp_webauthn.E031"]
OTP_TOTP_ISSUER = "Sealbox"
# The operator area never shows a user's authenticator secret (key, QR code): with it an
# operator could produce that user's codes.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Sealbox counts failures itself (5 per code, lock after 100 in a row), on sealbox.lib.clock.
OTP_TOTP_THROTTLE_FACTOR = 0

LOGGING = logs.logging_config(CONFIG.log_format)
SEALBOX_METRICS_TOKEN = CONFIG.metrics_token
SEALBOX_METRICS_ALLOW = CONFIG.metrics_allow
