"""Every FLINT_* setting, read once, typed, with defaults.

Tests and the CLI pass overrides to ``create_app`` / ``Config.from_env`` instead of
monkeypatching the environment.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from email_validator import EmailNotValidError, validate_email

from flint.proxies import parse_networks

# Seconds between webhook attempts, after the Standard Webhooks example: about 3 days of retries in all.
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
# Seconds between attempts at one mail (docs/deploy.md, SMTP): about 7 hours of retries, then it is failed.
DEFAULT_MAIL_RETRY_SCHEDULE = (30, 120, 600, 3600, 21600)


@dataclass(frozen=True)
class SmtpSettings:
    """FLINT_SMTP_URL taken apart. ``smtp://`` is a plain connection upgraded with STARTTLS when the
    server offers it (and always, when a password is sent to anything but a loopback address);
    ``smtps://`` is TLS from the first byte. The password never appears in a repr or a message."""
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def require_starttls(self) -> bool:
        """A password never crosses the network in clear: to a host other than this machine, a
        connection that cannot be upgraded with STARTTLS is refused before AUTH."""
        if self.implicit_tls or self.username is None:
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"


def parse_smtp_url(url: str) -> SmtpSettings:
    """``smtp://[user:password@]host[:port]`` (port 587 unless given) or ``smtps://...`` (port 465).
    User and password are percent-decoded (a password with '@' or ':' is written %40, %3A)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("FLINT_SMTP_URL must start with smtp:// (STARTTLS when offered) or smtps:// (implicit TLS)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("FLINT_SMTP_URL has a port that is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("FLINT_SMTP_URL names no host (smtp://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("FLINT_SMTP_URL is smtp[s]://[user:password@]host[:port] with nothing after the port")
    implicit = parts.scheme == "smtps"
    return SmtpSettings(host=parts.hostname, port=port or (465 if implicit else 587), implicit_tls=implicit,
                        username=unquote(parts.username) if parts.username else None,
                        password=unquote(parts.password) if parts.password is not None else None)


def parse_mail_from(value: str) -> tuple[str, str]:
    """FLINT_MAIL_FROM (``shop@example.com`` or ``Example Shop <shop@example.com>``) -> (display name,
    address), the address checked for syntax only (no DNS at startup); a ``.test`` domain (RFC 2606) is
    accepted, for test and demo setups."""
    name, address = parseaddr(value)
    if not address or "@" not in address:
        raise ValueError("FLINT_MAIL_FROM must be an email address, optionally as 'Name <address>'")
    try:
        normalized = validate_email(address, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as error:
        raise ValueError(f"FLINT_MAIL_FROM is not a valid address: {error}") from None
    return name, normalized


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Config:
    database_url: str = "sqlite:///var/flint.sqlite3"
    # Newest first; all verify, the first signs (rotation without logging anyone out).
    secret_keys: tuple[str, ...] = field(default_factory=lambda: (secrets.token_urlsafe(32),))
    public_url: str = "http://127.0.0.1:8000"
    # Production unless development is chosen explicitly (flint demo, the tests, a local walkthrough):
    # a forgotten FLINT_ENV must never allow loopback webhook targets or a generated signing key.
    env: str = "production"
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = 10.0  # per attempt, connect to last byte of the status line
    webhook_concurrency: int = 64  # attempts in flight in one worker
    webhook_per_endpoint: int = 16  # of which at most this many to one endpoint
    webhook_poll_interval: float = 0.1  # how often an idle worker looks for due deliveries
    # An endpoint whose every attempt failed for this long is disabled (Stripe: 3 days).
    webhook_disable_after_seconds: float = 3 * 24 * 3600
    sweep_interval: float = 5.0
    # How long a payment attempt holds its order before another attempt may take over.
    payment_lease_seconds: float = 60.0
    # A 3-D Secure challenge keeps the order for the buyer this long.
    action_lease_seconds: float = 900.0
    # An authorization (manual capture, docs/api.md 17) not captured by then is voided by the sweeper.
    authorization_ttl_seconds: float = 7 * 24 * 3600
    # A processor call that has not answered by then has an unknown outcome (never "declined").
    processor_timeout_seconds: float = 30.0
    # The connector (docs/processors.md): "simulated" (the default: test cards, no money moves) or "stripe"
    # (the optional `stripe` package, flint-checkout[stripe]). The secret key stays out of the repr.
    processor: str = "simulated"
    stripe_secret_key: str | None = field(default=None, repr=False)
    # Where the Stripe connector sends its requests (default: Stripe's own API); tests point it at localstripe.
    stripe_api_base: str | None = None
    # An in-flight idempotent request holds its key this long before a retry may take over.
    idempotency_lock_seconds: float = 60.0
    idempotency_ttl_seconds: int = 7 * 24 * 3600
    max_body_bytes: int = 1024 * 1024
    sqlite_readers: int = 4
    # PostgreSQL connections per process (asyncpg pool); several processes share max_connections.
    database_pool_size: int = 10
    # flint serve also delivers webhooks and sweeps (off: leave that to `flint worker` processes).
    background: bool = True
    # Load balancers whose X-Forwarded-For is believed (IPs or CIDRs); empty: the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "INFO"
    # Card testing (docs/api.md 13): failed attempts per checkout session and per payment link in a rolling
    # hour, and attempts per client address per minute over all sessions.
    max_failed_attempts: int = 10
    attempts_per_address: int = 30
    # Email to buyers (docs/deploy.md, SMTP): both set, or no mail is sent (and sends answer 409).
    # The URL may hold the SMTP password: it is kept out of the repr (and so out of every log line).
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str | None = None
    mail_retry_schedule: tuple[float, ...] = DEFAULT_MAIL_RETRY_SCHEDULE
    mail_timeout_seconds: float = 15.0  # per attempt: connect, TLS, login and the whole transaction
    mail_concurrency: int = 4  # mails in flight in one worker, each on an SMTP connection of its own
    mail_poll_interval: float = 0.2  # how often an idle mail worker looks for due mail

    def __post_init__(self) -> None:
        # At startup, not at the first mail: a typo in either setting stops `flint serve` at once.
        if self.smtp_url is not None:
            parse_smtp_url(self.smtp_url)
        if self.mail_from is not None:
            parse_mail_from(self.mail_from)
        if self.mail_concurrency < 1:
            raise ValueError("FLINT_MAIL_CONCURRENCY must be at least 1")
        if self.processor not in ("simulated", "stripe"):
            raise ValueError("FLINT_PROCESSOR must be 'simulated' or 'stripe'")
        if self.processor == "stripe" and not self.stripe_secret_key:
            raise ValueError("FLINT_PROCESSOR=stripe needs FLINT_STRIPE_SECRET_KEY")
        if self.stripe_api_base is not None and not self.stripe_api_base.startswith(("https://", "http://")):
            raise ValueError("FLINT_STRIPE_API_BASE must be an http(s):// URL")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def mail_configured(self) -> bool:
        return bool(self.smtp_url and self.mail_from)

    @property
    def smtp(self) -> SmtpSettings | None:
        return parse_smtp_url(self.smtp_url) if self.smtp_url else None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, require_secret: bool = True,
                 **overrides) -> "Config":
        """``require_secret=False`` for commands that sign and open nothing (``flint migrate``): in
        production they run without FLINT_SECRET_KEY, under a random key that is never kept."""
        env = os.environ if environ is None else environ
        values: dict = {}
        if env.get("FLINT_DATABASE_URL"):
            values["database_url"] = env["FLINT_DATABASE_URL"]
        if env.get("FLINT_SECRET_KEY"):
            values["secret_keys"] = _split(env["FLINT_SECRET_KEY"])
        if env.get("FLINT_PUBLIC_URL"):
            values["public_url"] = env["FLINT_PUBLIC_URL"].rstrip("/")
        if env.get("FLINT_ENV"):
            if env["FLINT_ENV"] not in ("development", "production"):
                raise ValueError("FLINT_ENV must be 'development' or 'production'")
            values["env"] = env["FLINT_ENV"]
        if env.get("FLINT_WEBHOOK_RETRY_SCHEDULE"):
            schedule = tuple(float(s) for s in _split(env["FLINT_WEBHOOK_RETRY_SCHEDULE"]))
            if not schedule or any(s < 0 for s in schedule):
                raise ValueError("FLINT_WEBHOOK_RETRY_SCHEDULE is comma-separated seconds, at least one, none negative")
            values["webhook_retry_schedule"] = schedule
        if env.get("FLINT_MAIL_RETRY_SCHEDULE"):
            schedule = tuple(float(s) for s in _split(env["FLINT_MAIL_RETRY_SCHEDULE"]))
            if not schedule or any(s < 0 for s in schedule):
                raise ValueError("FLINT_MAIL_RETRY_SCHEDULE is comma-separated seconds, at least one, none negative")
            values["mail_retry_schedule"] = schedule
        if env.get("FLINT_SMTP_URL"):
            values["smtp_url"] = env["FLINT_SMTP_URL"]
        if env.get("FLINT_MAIL_FROM"):
            values["mail_from"] = env["FLINT_MAIL_FROM"]
        if env.get("FLINT_PROCESSOR"):
            values["processor"] = env["FLINT_PROCESSOR"]
        if env.get("FLINT_STRIPE_SECRET_KEY"):
            values["stripe_secret_key"] = env["FLINT_STRIPE_SECRET_KEY"]
        if env.get("FLINT_STRIPE_API_BASE"):
            values["stripe_api_base"] = env["FLINT_STRIPE_API_BASE"].rstrip("/")
        if env.get("FLINT_BACKGROUND"):
            if env["FLINT_BACKGROUND"] not in ("0", "1"):
                raise ValueError("FLINT_BACKGROUND must be 1 (flint serve delivers webhooks and sweeps) or 0")
            values["background"] = env["FLINT_BACKGROUND"] == "1"
        if env.get("FLINT_TRUSTED_PROXIES"):
            proxies = _split(env["FLINT_TRUSTED_PROXIES"])
            try:
                parse_networks(proxies)
            except ValueError as error:
                raise ValueError(f"FLINT_TRUSTED_PROXIES: {error}") from None
            values["trusted_proxies"] = proxies
        for name, key, kind in (
            ("sweep_interval", "FLINT_SWEEP_INTERVAL", float),
            ("payment_lease_seconds", "FLINT_PAYMENT_LEASE_SECONDS", float),
            ("action_lease_seconds", "FLINT_ACTION_LEASE_SECONDS", float),
            ("authorization_ttl_seconds", "FLINT_AUTHORIZATION_TTL", float),
            ("processor_timeout_seconds", "FLINT_PROCESSOR_TIMEOUT_SECONDS", float),
            ("webhook_timeout_seconds", "FLINT_WEBHOOK_TIMEOUT_SECONDS", float),
            ("webhook_concurrency", "FLINT_WEBHOOK_CONCURRENCY", int),
            ("webhook_poll_interval", "FLINT_WEBHOOK_POLL_INTERVAL", float),
            ("webhook_disable_after_seconds", "FLINT_WEBHOOK_DISABLE_AFTER_SECONDS", float),
            ("log_level", "FLINT_LOG_LEVEL", str),
            ("database_pool_size", "FLINT_DATABASE_POOL_SIZE", int),
            ("max_failed_attempts", "FLINT_MAX_FAILED_ATTEMPTS", int),
            ("attempts_per_address", "FLINT_ATTEMPTS_PER_ADDRESS", int),
            ("mail_timeout_seconds", "FLINT_MAIL_TIMEOUT_SECONDS", float),
            ("mail_concurrency", "FLINT_MAIL_CONCURRENCY", int),
            ("mail_poll_interval", "FLINT_MAIL_POLL_INTERVAL", float),
        ):
            if env.get(key):
                values[name] = kind(env[key])
        config = cls(**values)
        if overrides:
            config = replace(config, **overrides)
        if "FLINT_SECRET_KEY" not in env and "secret_keys" not in overrides:
            if config.is_production:
                if require_secret:
                    raise ValueError("FLINT_SECRET_KEY is required in production (FLINT_ENV is production "
                                     "unless set to development)")
                return config
            config = replace(config, secret_keys=(config.development_secret(),))
        return config

    def development_secret(self) -> str:
        """Development without FLINT_SECRET_KEY: one random key kept beside the database, so a
        restart, or a `flint worker` beside `flint serve`, accepts the tokens already issued."""
        folder = self.sqlite_path().parent if self.database_url.startswith("sqlite:///") else Path("var")
        path = folder / "flint-dev-secret-key"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def sqlite_path(self) -> Path:
        assert self.database_url.startswith("sqlite:///"), self.database_url
        return Path(self.database_url[len("sqlite:///"):])
