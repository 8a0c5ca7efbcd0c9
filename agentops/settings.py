"""Settings for AgentOps, all read through django-environ.

Embedded defaults make the demo run with nothing configured: a SQLite file under
``var/`` unless ``DATABASE_URL`` is set, Redis at ``REDIS_URL``. Production sets
``DEBUG=0``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and ``SECURE_*`` through the environment and passes
``manage.py check --deploy --fail-level WARNING``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
# The fallback key is only for local development and tests; check --deploy flags it.
SECRET_KEY = env("SECRET_KEY", default="django-insecure-agentops-local-development-only-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    "agentops",  # project wiring: the scheduler and reconcile commands
    "tenants",
    "runs",
    "budgets",
    "agentops.escalations",
    "agentops.prompts",
    "agentops.evals",
    "agentops.toolbox",
    "agentops.memory",
    "agentops.mcp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost of ours: a database or Redis outage in a view becomes a 503 (see agentops/outage.py).
    "agentops.outage.OutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "agentops.middleware.ApiJsonErrorsMiddleware",
    "agentops.middleware.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.zones.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "agentops.middleware.LogContextMiddleware",
]

ROOT_URLCONF = "agentops.urls"
WSGI_APPLICATION = "agentops.wsgi.application"

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
                "tenants.context_processors.tenant_nav",
            ],
        },
    },
]

# A set but empty DATABASE_URL (``DATABASE_URL= python3 dev.py demo``, a blank line in an env file) means
# "not set": the SQLite default, rather than django-environ's engine-less dict and a KeyError below.
DATABASES = {
    "default": env.db_url_config(env.str("DATABASE_URL", default="").strip() or f"sqlite:///{VAR_DIR / 'agentops.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions take the write lock up front, so concurrent demo workers
    # queue on it instead of failing with "database is locked" mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    # Connections are bounded by construction: one per serving thread (see README, Operations).
    # DB_POOL_MAX_SIZE > 0 switches to a psycopg connection pool per process instead, which caps
    # connections below the thread count: a request that waits longer than DB_POOL_TIMEOUT for a
    # free connection gets a 503, not "too many clients". Django has the pool check each connection
    # before handing it out, so one broken by a database restart is replaced, not used.
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
    if DB_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
        from agentops import dbpool  # only when pooling: it patches the PostgreSQL backend

        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env.int("DB_POOL_MIN_SIZE", default=1), DB_POOL_MAX_SIZE),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
        dbpool.install()
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Seconds a client is told to wait (Retry-After) when the database or Redis is down.
SERVICE_UNAVAILABLE_RETRY_AFTER = env.int("SERVICE_UNAVAILABLE_RETRY_AFTER", default=5)
# The events (SSE) server: database threads per process, shared by every subscriber.
EVENTS_DB_THREADS = env.int("EVENTS_DB_THREADS", default=4)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Queues: "runs" drives agent runs, "default" everything else (webhooks, reconciler, evals).
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900},
    "runs": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900},
}
# When Redis does not answer, jobs run in-process (see agentops.jobs); the demo says so.
RQ_EAGER_FALLBACK = env.bool("RQ_EAGER_FALLBACK", default=True)

# Periodic work (agentops/periodic.py lists every job; `manage.py scheduler` runs them), in seconds.
PERIODIC_RECONCILE_SECONDS = env.float("PERIODIC_RECONCILE_SECONDS", default=15)
PERIODIC_BUDGET_ALERTS_SECONDS = env.float("PERIODIC_BUDGET_ALERTS_SECONDS", default=60)
# Judge evaluators (model calls, off the hot path) enabled for every run, e.g. "injection_judge".
AGENTOPS_ONLINE_JUDGES = env.list("AGENTOPS_ONLINE_JUDGES", default=[])
PERIODIC_FLAG_DRIFT_SECONDS = env.float("PERIODIC_FLAG_DRIFT_SECONDS", default=3600)
PERIODIC_RETENTION_SECONDS = env.float("PERIODIC_RETENTION_SECONDS", default=3600)
# A queued run with no job is re-enqueued after this long (its own enqueue may still be in flight).
RECONCILE_QUEUED_GRACE_SECONDS = env.int("RECONCILE_QUEUED_GRACE_SECONDS", default=30)
# Finished webhook deliveries are deleted after this many days (0 keeps them forever).
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=90)
# /readyz shows workers, queues and periodic jobs to staff and to `Authorization: Bearer <READYZ_TOKEN>`.
READYZ_TOKEN = env("READYZ_TOKEN", default="")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
# "index" (not "home", which needs a tenant slug): it forwards a one-tenant user to that tenant's home.
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "login"
# How long the link in a tenant invitation e-mail works (tenants.services.invitation_create).
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Static files are served straight from static/ (no collectstatic), so WhiteNoise cannot hash names
# itself: the vendored libraries carry their version in the file name instead (a new version is a new
# URL) and are cached for a year; each sits beside a pre-built `.gz` that WhiteNoise sends to browsers
# accepting gzip (static/vendor/VENDORED.md). Our own css/js keep the short default max-age.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/static/vendor/[^/]+-\d+\.\d+\.\d+\.min\.js$"

# Bad input: bodies above this are refused with 413 before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and "SECRET_KEY" in env)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG and "SECRET_KEY" in env)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
X_FRAME_OPTIONS = "DENY"

# --- Anthropic -------------------------------------------------------------
ANTHROPIC_API_KEY = env("ANTHROPIC_API_KEY", default="")
# A scenario name (or path) selects the scripted Messages API; empty means the real API.
AGENTOPS_SCENARIO = env("AGENTOPS_SCENARIO", default="")
# The model that grades eval cases with an LLM-judge check (a check may name another).
EVALS_JUDGE_MODEL = env("EVALS_JUDGE_MODEL", default="claude-haiku-4-5")
# The scripted API's pause between SSE events for steps that set none (the demo's workers: 25 ms,
# so the run page visibly types); 0 sends a stream at once.
AGENTOPS_SCRIPTED_PACE_MS = env.int("AGENTOPS_SCRIPTED_PACE_MS", default=0)
ANTHROPIC_MAX_RETRIES = env.int("ANTHROPIC_MAX_RETRIES", default=2)
ANTHROPIC_TIMEOUT_S = env.float("ANTHROPIC_TIMEOUT_S", default=120.0)

# --- Runtime -----------------------------------------------------------------
RUN_LEASE_SECONDS = env.int("RUN_LEASE_SECONDS", default=60)
# A job must outlive the SDK's worst case: (retries + 1) attempts x timeout + retry waits.
RUN_JOB_TIMEOUT = env.int("RUN_JOB_TIMEOUT", default=int((ANTHROPIC_MAX_RETRIES + 1) * ANTHROPIC_TIMEOUT_S + 180))
PII_PATTERNS = env.list("PII_PATTERNS", default=[])

# --- OpenTelemetry -------------------------------------------------------------
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="agentops")

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "agentops.logs.RedactingFilter"},
        "client_errors": {"()": "agentops.logs.ClientErrorFilter"},
    },
    "formatters": {"json": {"()": "agentops.logs.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["client_errors", "redact"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # A 403/404 (or any 4xx) is one line without a traceback, whoever sends them; see logs.py.
        "django.request": {"filters": ["client_errors"]},
        "rq.worker": {"level": env("RQ_LOG_LEVEL", default="WARNING")},
        # httpx2 logs every request at INFO (one line per model call and retry); the gateway's
        # spans and run events already record them.
        "httpx2": {"level": "WARNING"},
    },
}
# Wait for fsync on every cost reservation (see agentops/harness/durability.py).
AGENTOPS_DURABLE_RESERVATIONS = env.bool("AGENTOPS_DURABLE_RESERVATIONS", default=True)
# Escrow for hot caps (budgets/escrow.py): a worker's slice lease lives this long unless renewed
# (a crashed worker's slice goes back after it), and is returned after this long unused.
BUDGETS_ESCROW_LEASE_S = env.int("BUDGETS_ESCROW_LEASE_S", default=60)
BUDGETS_ESCROW_IDLE_S = env.int("BUDGETS_ESCROW_IDLE_S", default=30)
# Hold side-effecting tool calls for a human after a tool result that carried injected instructions.
AGENTOPS_HOLD_ON_INJECTION = env.bool("AGENTOPS_HOLD_ON_INJECTION", default=True)
# Escalation timing defaults (minutes): when the SLA is due, and when a pending escalation expires.
ESCALATION_SLA_MINUTES = env.int("ESCALATION_SLA_MINUTES", default=30)
ESCALATION_EXPIRE_MINUTES = env.int("ESCALATION_EXPIRE_MINUTES", default=24 * 60)
# What an expired escalation does to its run: "reject" (the model gets an is_error result and goes on)
# or "fail" (the run stops as failed: approval_expired). "expiring" webhooks go out this long before.
ESCALATION_EXPIRY_POLICY = env.str("ESCALATION_EXPIRY_POLICY", default="reject")
ESCALATION_EXPIRING_NOTICE_MINUTES = env.int("ESCALATION_EXPIRING_NOTICE_MINUTES", default=15)
# Webhook URLs pass the SSRF guard (agentops/netguard.py) at save and at delivery. Networks listed
# here (CIDR) are exempt from it. Tests only (a receiver on 127.0.0.1): deliberately not read from
# the environment, and `check --deploy` warns when it is not empty.
WEBHOOK_UNSAFE_ALLOW_NETWORKS: list[str] = []
# MCP tool servers (agentops/mcp): each call opens a session and must finish within this many seconds.
MCP_TIMEOUT_S = env.float("MCP_TIMEOUT_S", default=20.0)
# MCP server URLs pass the SSRF guard at registration and at every connect. Networks listed here
# (CIDR) are exempt: tests and the local demo (an MCP server on 127.0.0.1). Off (empty) by default;
# `check --deploy` warns when it is set.
MCP_UNSAFE_ALLOW_NETWORKS = env.list("MCP_UNSAFE_ALLOW_NETWORKS", default=[])
# Context window guard: trim the oldest turns (with a notice) above this many input tokens.
CONTEXT_TRIM_TOKENS = env.int("CONTEXT_TRIM_TOKENS", default=150_000)
# The failure journal (agentops.memory.journal): how long an entry stays live after it was last seen,
# and how long a worker process reuses an agent's entries before reading them again.
MEMORY_JOURNAL_TTL_DAYS = env.float("MEMORY_JOURNAL_TTL_DAYS", default=14.0)
MEMORY_JOURNAL_CACHE_S = env.float("MEMORY_JOURNAL_CACHE_S", default=30.0)
TOOL_OUTPUT_LIMIT_CHARS = env.int("TOOL_OUTPUT_LIMIT_CHARS", default=16_000)
# Extra modules that register tools with @agentops.tools.registry.tool (imported with the built-ins).
AGENTOPS_TOOL_MODULES = env.list("AGENTOPS_TOOL_MODULES", default=[])
# A class (dotted path) implementing agentops.memory.facts.Ranker, e.g. an embeddings provider; empty:
# recall ranks by PostgreSQL full-text relevance and recency.
AGENTOPS_MEMORY_RANKER = env.str("AGENTOPS_MEMORY_RANKER", default="")
# Home page panels, one provider per capability (see tenants/home.py).
HOME_PANEL_PROVIDERS = ["runs.home.panels", "agentops.escalations.home.panels", "budgets.home.panels"]

# --- E-mail (the send_email tool) --------------------------------------------------
# Default: messages are written to var/outbox/ (no SMTP in the demo). Production sets an SMTP
# backend through EMAIL_BACKEND / EMAIL_HOST / EMAIL_PORT / EMAIL_HOST_USER / EMAIL_HOST_PASSWORD.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "outbox"))
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="agentops@localhost")

# --- Login throttling (django-axes) ---------------------------------------------------------
# Failed logins are counted per username and per client address (each on its own); at the limit
# that username, or that address, is refused for the cool-off, right password or not. Staff see
# and lift lockouts in the Django admin. See agentops/login_throttle.py.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as django-axes asks
AUTHENTICATION_BACKENDS = [
    "agentops.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "agentops.login_throttle.client_ip"
AXES_USERNAME_CALLABLE = "agentops.login_throttle.client_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Attempts are rows in the admin; the log keeps axes' warnings (failures, lockouts), not its chatter.
AXES_VERBOSE = False
LOGGING["loggers"]["axes"] = {"level": "WARNING"}

# --- Content-Security-Policy (django-csp) ---------------------------------------------------
# Scripts only from our own static files (htmx, plotly, static/js/*), or inline with this
# response's nonce (`nonce="{{ request.csp_nonce }}"`; the header names it only when a page used
# it). No 'unsafe-inline', no 'unsafe-eval', nothing from another origin. Inline style
# *attributes* stay allowed (style-src-attr): the meters and the run waterfall position bars with
# them and plotly sets them from script; <style> elements and stylesheets must come from us.
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        # Plus the two <style> elements the vendored plotly inserts (an empty one it fills through
        # CSSOM, and its modebar/hover CSS): fixed text, so fixed hashes. A new plotly version changes
        # the second; the browser test fails on any CSP violation and prints the hash to put here.
        "style-src-elem": [SELF, NONCE, "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
                           "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
