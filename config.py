"""Configuration, read from the environment.

Every setting has a safe development default except ``SECRET_KEY``, which must be set
outside development and testing (the app refuses to start without it).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))


def _environment() -> str:
    """The deployment environment: ``production`` turns on the safe defaults below."""
    return os.environ.get("EVALUATION_ENV", os.environ.get("FLASK_ENV", "development"))


def _bool(name: str, default: bool = False) -> bool:
    """Read a yes/no environment variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    """Settings for every environment; ``from_env`` builds the running values."""

    # Development unless told otherwise; production deployments set FLASK_ENV=production
    # or simply provide SECRET_KEY (see README, 生产部署).
    ENVIRONMENT = _environment()
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # Key for the keyed hash of voting codes and receipts. Defaults to a key derived from
    # SECRET_KEY; set it separately to rotate the session key without losing codes.
    CODE_HASH_KEY = os.environ.get("CODE_HASH_KEY")

    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'evaluation.db'}"
    )
    REPORTS_DIR = os.environ.get("REPORTS_DIR", str(BASE_DIR / "reports"))
    BALLOTS_DIR = os.environ.get("BALLOTS_DIR", str(BASE_DIR / "ballots"))
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    MIN_GROUP_SIZE = int(os.environ.get("MIN_GROUP_SIZE", "5"))
    # SQLite: seconds a writer waits for the lock before failing (WAL mode is always on).
    SQLITE_BUSY_TIMEOUT = float(os.environ.get("SQLITE_BUSY_TIMEOUT", "15"))

    # Rate limits (Flask-Limiter). memory:// per process by default; production uses Redis.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = False
    # If Redis is unreachable, count in each process's memory rather than fail the request.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # Reverse proxies in front of the app (nginx = 1). Their X-Forwarded-For/-Proto are trusted
    # so rate limits count real client addresses; 0 when clients connect directly.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
    # Failed logins only (README, 账号管理). Per client address, and per account from all
    # addresses together; one address alone stays under the account's limit, so it cannot lock
    # the account's owner out.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute;30 per hour")
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "50 per hour")
    CODE_ENTRY_RATE_LIMIT = os.environ.get("CODE_ENTRY_RATE_LIMIT", "20 per 10 minutes")

    # Organiser sessions expire; voters' sessions hold only the code until they submit.
    PERMANENT_SESSION_LIFETIME = timedelta(minutes=int(os.environ.get("SESSION_MINUTES", "60")))
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Cookies travel only over HTTPS in production; a plain-HTTP intranet sets
    # SESSION_COOKIE_SECURE=0 (and REMEMBER_COOKIE_SECURE=0) explicitly (README, 配置).
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Strict-Transport-Security on HTTPS responses and on every response in production;
    # HSTS_SECONDS=0 leaves the header out.
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    WTF_CSRF_TIME_LIMIT = None  # tied to the session, which itself expires
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    BABEL_DEFAULT_LOCALE = "zh_CN"

    # 廉政档案 accountability rules (SPEC §9) are rule-set files, BALLOTS_DIR/accountability/*.toml,
    # chosen per unit on the 单位 page (evaluation/archive/accountability.py).

    # Seconds between the server's own checks for scheduled opens and closes
    # (evaluation/rounds/scheduler.py); 0 turns them off (then run `flask round tick` by cron).
    SCHEDULE_INTERVAL = float(os.environ.get("SCHEDULE_INTERVAL", "30"))

    TESTING = False

    @classmethod
    def from_env(cls) -> dict[str, object]:
        """Return the configuration as a plain mapping for ``app.config.from_mapping``.

        Values that depend on the environment are read now, not at import.
        """
        values: dict[str, object] = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        environment = _environment()
        production = environment == "production"
        values["ENVIRONMENT"] = environment
        values["SESSION_COOKIE_SECURE"] = _bool("SESSION_COOKIE_SECURE", production)
        values["REMEMBER_COOKIE_SECURE"] = _bool("REMEMBER_COOKIE_SECURE", production)
        return values
