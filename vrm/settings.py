"""Settings for vrm, read from the environment (INTERFACES.md §2).

Defaults are production-safe; `VRM_DEBUG=True` switches on the development conveniences,
including the development keys under `var/keys/` that `manage.py dev_keys` creates.
Key variables are only read here; they are parsed and checked by `vrm.checks`, so a missing or
malformed key is a system-check error naming the variable, never a silent fallback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from consent.scopes import SCOPES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
DEV_KEYS_DIR = VAR_DIR / "keys"
# seed_demo keeps the demo people's recovery codes here, so that it can reset their passwords on
# every run without losing their stores (development only: real people's codes are never stored).
VRM_DEMO_RECOVERY_FILE = DEV_KEYS_DIR / "demo_recovery_codes.json"


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (True/False), got {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def envrate(name: str, default: str) -> str:
    """A rate as django-ratelimit reads it: count/[multiplier]unit, e.g. 30/10m or 5/s."""
    value = envstr(name, default).strip()
    if not re.fullmatch(r"[0-9]+/[0-9]*[smhd]", value) or value.startswith("0"):
        raise ImproperlyConfigured(f"{name} must be a rate such as 30/10m (count/[n]s|m|h|d), got {value!r}")
    return value


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


def envsecret(name: str, dev_file: str | None = None) -> str | None:
    """Return a secret from NAME, or from the file named by NAME_FILE, or (debug only) var/keys."""
    if os.environ.get(name):
        return os.environ[name].strip()
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from None
    if DEBUG and dev_file and (DEV_KEYS_DIR / dev_file).is_file():
        return (DEV_KEYS_DIR / dev_file).read_text().strip()
    return None


def envsecret_path(name: str, dev_file: str | None = None) -> Path | None:
    """Return the file envsecret(name, dev_file) reads, or None when the value is in NAME itself."""
    if os.environ.get(name):
        return None
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path)
    if DEBUG and dev_file and (DEV_KEYS_DIR / dev_file).is_file():
        return DEV_KEYS_DIR / dev_file
    return None


DEBUG = envbool("VRM_DEBUG", False)
# HTTPS is assumed in production; tests and `make run` serve plain http on loopback.
HTTPS = envbool("VRM_HTTPS", not DEBUG)

SECRET_KEY = envsecret("VRM_SECRET_KEY", "secret_key") or ""
# Django refuses an empty SECRET_KEY on first use; vrm.checks reports it by name before that.
VRM_SECRET_KEY_SET = bool(SECRET_KEY)
VRM_MASTER_KEYS = envsecret("VRM_MASTER_KEYS", "master_keys")
VRM_INDEX_KEY = envsecret("VRM_INDEX_KEY", "index_key")
VRM_LEDGER_SIGNING_KEY = envsecret("VRM_LEDGER_SIGNING_KEY", "ledger_signing_key.pem")
# Where that key was read from, so rotate_signing_key can replace it (None: from the environment).
VRM_LEDGER_SIGNING_KEY_PATH = envsecret_path("VRM_LEDGER_SIGNING_KEY", "ledger_signing_key.pem")
VRM_ISSUER = envstr("VRM_ISSUER", "http://127.0.0.1:8000").rstrip("/")
# The ledger's tiles (/ledger/tile/...) per client address: a monitor fetches many; a cache in
# front of them takes the load in production (docs/ledger.md, "Tiles").
VRM_LEDGER_TILE_RATE = envstr("VRM_LEDGER_TILE_RATE", "3000/m")
# Named on consent receipts as the jurisdiction the consent was given under.
VRM_JURISDICTION = envstr("VRM_JURISDICTION", "EU")

ALLOWED_HOSTS = envlist("VRM_ALLOWED_HOSTS", "localhost,127.0.0.1")
if DEBUG:
    ALLOWED_HOSTS += ["testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    # Two-step sign-in: TOTP authenticators and backup codes (accounts/twofactor.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "oauth2_provider",
    "django_tasks",
    "django_tasks_db",
    "vrm",
    "accounts",
    "personal_data",
    "audit",
    "consent",
    "vendors",
    "portal",
    "auditor",
]
# Demo and scale seeding and development keys: never installed in production, so `seed_demo`
# (which resets passwords and client secrets) is not a command there.
if DEBUG:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    # Outermost, so a request's time covers every other middleware; gone when VRM_METRICS is off.
    "vrm.metrics.MetricsMiddleware",
    # Before the rest, so every response (redirects and errors included) carries the request id.
    "core.request_ids.RequestIdMiddleware",
    # Health probes, answered before the host check and the HTTPS redirect (vrm/health.py).
    "vrm.health.HealthMiddleware",
    # One JSON line per request (vrm/logs.py); probes above it are not logged.
    "vrm.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "vrm.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in person's opened keys, from the session and the key cookie (portal/keysession.py).
    "portal.keysession.PersonKeysMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "vrm.middleware.NoStoreForAuthenticatedMiddleware",
    # Axes must come last so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vrm.urls"
WSGI_APPLICATION = "vrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
                "portal.context_processors.person_nav",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'vrm.sqlite3'}"),
        # Persistent connections are worth ~3.5x on a small API request (measured).
        conn_max_age=envint("VRM_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool("VRM_DB_PREPARE", True):
    # Server-side binding lets psycopg prepare a statement once it has run five times on a
    # connection, so PostgreSQL stops planning it again: the API's token join and page read
    # each cost more to plan than to run (docs/performance.md). Behind a pooler in transaction
    # mode that cannot keep prepared statements (PgBouncer before 1.21), set VRM_DB_PREPARE=False.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default (`make run`) serves threads that write at once (docs/security.md,
    # "SQLite"). WAL lets readers go on beside the one writer; IMMEDIATE takes the write lock at
    # BEGIN, so a transaction that read first never fails upgrading its lock ("database is
    # locked" without waiting); the timeout is how long a writer waits its turn. secure_delete
    # overwrites deleted content in the file, so an erased person's rows do not linger in free pages.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=envint("VRM_SQLITE_TIMEOUT", 20),
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON",
    )
    # Django's SQLite test database lives in memory, where WAL does not exist and the live
    # server's threads share one connection: a file (one per run) tests what `make run` runs.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"vrm-test-{os.getpid()}.sqlite3"),
    }
# A streaming replica (PostgreSQL's own replication) for the auditor's pages and exports only
# (core/replica.py): token checks, grant state, sessions and every write stay on the primary.
if replica_url := envstr("VRM_REPLICA_URL", ""):
    DATABASES["replica"] = dj_database_url.parse(
        replica_url, conn_max_age=envint("VRM_CONN_MAX_AGE", 600), conn_health_checks=True
    )
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("VRM_REPLICA_URL must name the same kind of database as DATABASE_URL")
    # An unreachable replica costs the auditor's page this long before it reads from the primary.
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    if "server_side_binding" in DATABASES["default"].get("OPTIONS", {}):
        DATABASES["replica"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
    # Tests that run in-process read the test database through both aliases.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First, so a slowed-down address costs no password hash (docs/security.md, "Logins").
    "accounts.limits.AddressSlowdownBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    # Argon2id at the cost of the key the password wraps (accounts/hashers.py says why).
    "accounts.hashers.VrmArgon2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"


def _cache_config(url: str, key_prefix: str) -> dict[str, str]:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": key_prefix,
        }
    if url in {"", "locmem", "locmem://"}:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": key_prefix}
    raise ImproperlyConfigured(f"CACHE_URL must be redis://… or locmem://, got {url!r}")


# Every node of one deployment shares CACHE_URL (and this prefix); deployments or test runs that
# share one Redis database keep their counters apart with a prefix of their own.
CACHES = {"default": _cache_config(envstr("CACHE_URL", "locmem://"), envstr("VRM_CACHE_KEY_PREFIX", ""))}

# The Argon2id cost of the key each person's password wraps their data key with (docs/security.md,
# "People hold the key"): tuned so that opening the store at sign-in takes 100-250 ms here (130 ms)
# (bench/keys.py prints the figure for the machine it runs on).
VRM_KDF_MEMORY_KIB = envint("VRM_KDF_MEMORY_KIB", 65536)
VRM_KDF_ITERATIONS = envint("VRM_KDF_ITERATIONS", 2)
if VRM_KDF_MEMORY_KIB < 8 or VRM_KDF_ITERATIONS < 1:
    raise ImproperlyConfigured("VRM_KDF_MEMORY_KIB must be at least 8 and VRM_KDF_ITERATIONS at least 1")

# Behind a reverse proxy every request comes from the proxy's address: with VRM_BEHIND_PROXY the
# client address is read from X-Forwarded-For, from the entry the last VRM_PROXY_COUNT trusted
# proxies appended (core/clients.py). Off, the header is ignored: anyone can write it.
VRM_BEHIND_PROXY = envbool("VRM_BEHIND_PROXY", False)
VRM_PROXY_COUNT = envint("VRM_PROXY_COUNT", 1)
if VRM_PROXY_COUNT < 1:
    raise ImproperlyConfigured(f"VRM_PROXY_COUNT must be at least 1, got {VRM_PROXY_COUNT}")

# Prometheus metrics at /metrics (docs/metrics.md): off by default; on, served without
# authentication to the addresses (or networks) listed, and a 404 to everyone else.
VRM_METRICS = envbool("VRM_METRICS", False)
VRM_METRICS_ALLOW = envlist("VRM_METRICS_ALLOW", "127.0.0.1,::1")
for _network in VRM_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"VRM_METRICS_ALLOW must list IP addresses or networks, got {_network!r}"
        ) from None

# Failed logins (docs/security.md, "Logins"): 5 wrong passwords for one account from one address
# pause that pair for 15 minutes; the account stays open from everywhere else. An address with
# too many failures over all accounts is slowed: refused (429, Retry-After) until its window ends.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "core.clients.client_address"
AXES_USERNAME_CALLABLE = "accounts.limits.login_username"
AXES_LOCKOUT_CALLABLE = "accounts.limits.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a pause check no password, so they neither count nor extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
# The name authenticator apps list the account under; its secret never shows in the admin.
OTP_TOTP_ISSUER = "vrm"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
VRM_LOGIN_ADDRESS_RATE = envrate("VRM_LOGIN_ADDRESS_RATE", "30/10m")
# Sign-up mail (accounts/signup.py): per client address, and per recipient so that nobody can
# flood an inbox through the form.
VRM_SIGNUP_ADDRESS_RATE = envrate("VRM_SIGNUP_ADDRESS_RATE", "20/h")
VRM_SIGNUP_RECIPIENT_RATE = envrate("VRM_SIGNUP_RECIPIENT_RATE", "3/h")
# axes.W001 flags a per-process (local memory) cache; vrm.W001 says the same in deploy checks,
# where it matters, instead of on every development command.
# models.W040: SQLite ignores an index's INCLUDE columns (audit.LedgerEntry's covering indexes);
# the indexes still serve SQLite, and the columns only spare PostgreSQL reads of the table.
SILENCED_SYSTEM_CHECKS = ["axes.W001", "models.W040"]


def _email_config(url: str) -> dict[str, object]:
    if url in {"", "console"}:
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if url == "locmem":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps", "submission"}:
        raise ImproperlyConfigured(f"VRM_EMAIL_URL must be console, locmem or smtp://…, got {url!r}")
    query = parse_qs(parts.query)
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 587),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": parts.scheme == "smtps",
        "EMAIL_USE_TLS": parts.scheme != "smtps" and query.get("tls", ["true"])[0] != "false",
    }


globals().update(_email_config(envstr("VRM_EMAIL_URL", "console")))
DEFAULT_FROM_EMAIL = envstr("VRM_FROM_EMAIL", "vrm <no-reply@localhost>")


_TASK_BACKENDS = {
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "database": "django_tasks_db.DatabaseBackend",
}
_tasks_backend = envstr("VRM_TASKS_BACKEND", "immediate")
if _tasks_backend not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"VRM_TASKS_BACKEND must be one of {sorted(_TASK_BACKENDS)}")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[_tasks_backend]}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Django 6 default, adopted now: a URL typed without a scheme is https.
FORMS_URLFIELD_ASSUME_HTTPS = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, immutable file names once `collectstatic` has run (deployments); plain names before
# (a fresh clone, tests, `make run`).
_MANIFEST = (STATIC_ROOT / "staticfiles.json").is_file() and not DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve from the app and static/ folders directly, so tests and a fresh clone need no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_MANIFEST_STRICT = False

# Request bodies: the API refuses anything over 1 MiB; file uploads have their own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Security headers and cookies.
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if VRM_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 12
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    },
}

# OAuth 2 authorization server (django-oauth-toolkit), INTERFACES.md §4.
OAUTH2_PROVIDER_APPLICATION_MODEL = "vendors.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "consent.AccessToken"  # noqa: S105 (a model name)
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "consent.RefreshToken"  # noqa: S105 (a model name)
OAUTH2_PROVIDER_GRANT_MODEL = "consent.AuthorizationCode"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "consent.IDToken"  # noqa: S105 (a model name)
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "consent.oauth.GrantValidator",
    "SCOPES_BACKEND_CLASS": "consent.scopes.ApplicationScopes",
    "SCOPES": {name: scope.title for name, scope in SCOPES.items()},
    "DEFAULT_SCOPES": [],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 15 * 60,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    # Refresh tokens die with their grant (checked on every use), not on a clock of their own.
    "REFRESH_TOKEN_EXPIRE_SECONDS": None,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    # https only; the Application model adds http for loopback hosts alone (RFC 8252).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "ALLOW_URI_WILDCARDS": False,
    "REQUEST_APPROVAL_PROMPT": "force",
    "ERROR_RESPONSE_WITH_SCOPES": True,
    "OIDC_ENABLED": False,
    "DCR_ENABLED": False,
    "OIDC_ISS_ENDPOINT": VRM_ISSUER,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}
# Token endpoint: per-client limit (requests per minute) answered with 429 and Retry-After.
VRM_TOKEN_RATE_PER_MINUTE = envint("VRM_TOKEN_RATE_PER_MINUTE", 60)
# Failed client authentication is counted apart, per client id and address, so requests with a
# vendor's public client id and a wrong secret never spend that vendor's allowance above.
VRM_TOKEN_FAILURES_PER_MINUTE = envint("VRM_TOKEN_FAILURES_PER_MINUTE", 10)

REST_FRAMEWORK = {
    # Secure by default: a view that declares nothing is refused.
    "DEFAULT_PERMISSION_CLASSES": ["vrm.permissions.DenyAll"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    # orjson: several times faster than the standard library, and it embeds records that are
    # already JSON (orjson.Fragment) without parsing them again.
    "DEFAULT_RENDERER_CLASSES": ["drf_orjson_renderer.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "vrm.schema.VrmAutoSchema",
    "EXCEPTION_HANDLER": "core.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per vendor app: a burst limit and a sustained limit (INTERFACES.md §5, 429 with Retry-After).
    "DEFAULT_THROTTLE_RATES": {
        "app_burst": envstr("VRM_API_RATE_BURST", "50/second"),
        "app_sustained": envstr("VRM_API_RATE_SUSTAINED", "20000/hour"),
        # The public ledger endpoints, per client address.
        "ledger": envstr("VRM_LEDGER_RATE", "120/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "vrm vendor API",
    "DESCRIPTION": (
        "Consent-checked access to what a person granted. Authorization code + PKCE (S256) for "
        "person data, client credentials for organisation scopes. Errors are application/problem+json "
        "(RFC 9457). Every person-data response carries Grant-Expires."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "OAUTH2_FLOWS": ["authorizationCode", "clientCredentials"],
    "OAUTH2_AUTHORIZATION_URL": f"{VRM_ISSUER}/o/authorize/",
    "OAUTH2_TOKEN_URL": f"{VRM_ISSUER}/o/token/",
    "OAUTH2_REFRESH_URL": f"{VRM_ISSUER}/o/token/",
    "OAUTH2_SCOPES": {name: scope.title for name, scope in SCOPES.items()},
    # A message's status and a recall's are both called `status`: name each set of values.
    "ENUM_NAME_OVERRIDES": {"MessageStatusEnum": "vendors.api.messages.STATUSES"},
    # Path parameters as the URL converters match them, so a documented value always routes.
    "PATH_CONVERTER_OVERRIDES": {
        "int": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "str": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
    },
    # Served from this site (drf-spectacular-sidecar): no third-party script, CSP 'self' holds.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# One JSON line per record (vrm/logs.py): a request's line, a task's line, and every other
# logger's, each through the Scrub filter. VRM_LOG_FORMAT=text gives plain lines to read by eye.
VRM_LOG_FORMAT = envstr("VRM_LOG_FORMAT", "json")
if VRM_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("VRM_LOG_FORMAT must be json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub": {"()": "vrm.logs.Scrub"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": VRM_LOG_FORMAT, "filters": ["scrub"]},
    },
    "root": {"handlers": ["console"], "level": envstr("VRM_LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # vrm.task writes a line per task with its duration; django-tasks' own lines then repeat it.
        "django_tasks": {"level": "WARNING"},
        # Django's own handlers (plain lines with paths, e-mail to admins) give way to the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # Its "GET /path" lines would repeat vrm.request's, with the path.
        "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
    },
}
