"""Serving: gunicorn logs that never hold a voting code (SPEC §5.4), and proxy trust.

Behind a reverse proxy every request comes from the proxy's address; ``trust_proxies`` makes
the app read the client's address (for rate limits) and scheme from the proxy's
``X-Forwarded-For``/``X-Forwarded-Proto`` — only as many hops as ``TRUSTED_PROXIES`` says, so a
client talking to the app directly cannot forge its address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from gunicorn.glogging import Logger
from werkzeug.middleware.proxy_fix import ProxyFix

from evaluation.logfilter import RedactCodes, redact


class RedactingLogger(Logger):
    """gunicorn's logger, with voting codes kept out of its access log and its error log.

    Both of gunicorn's loggers get ``RedactCodes``: the access log prints the request line,
    the error log prints malformed request lines ("Invalid request from ip=…") and the URI of a
    request that failed. The filter sits on the loggers, not their handlers, so it holds for
    whatever handlers a ``--log-config`` or a reload installs.
    """

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup (run again on reload), then the filter on both loggers."""
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(RedactCodes())  # all instances are equal: added once

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        """The access-log atoms, with codes redacted (for custom handlers and formats too)."""
        atoms = super().atoms(resp, req, environ, request_time)
        # Every text atom: a custom access_log_format may print any header or environ value
        # (RAW_URI, PATH_INFO, QUERY_STRING, Referer, Location …), and any of them can hold one.
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms


def trust_proxies(app: Flask) -> None:
    """Honour X-Forwarded-For/-Proto from ``TRUSTED_PROXIES`` reverse proxies (0 = none)."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        # Host is never taken from the request (SPEC §5.7: links come from PUBLIC_BASE_URL).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def check_limit_storage(workers: int, environ: Mapping[str, str]) -> None:
    """Refuse production with several workers and per-process rate-limit counters.

    With ``memory://`` every worker counts on its own, so N workers allow N times every limit
    (five workers: 50 logins a minute instead of 10). ``make run`` (development) may use it;
    ``make serve`` (``EVALUATION_ENV=production``) must name a shared store (Redis). Raised
    as RuntimeError, gunicorn prints the message and exits 1.
    """
    environment = environ.get("EVALUATION_ENV", environ.get("FLASK_ENV", "development"))
    storage = environ.get("RATELIMIT_STORAGE_URI", "memory://").strip().lower()
    # The benchmarks serve production on loopback with per-process counters on purpose.
    accepted = environ.get("RATELIMIT_MEMORY_ACCEPTED", "") == "1"
    if (
        environment == "production"
        and workers > 1
        and storage.startswith("memory:")
        and not accepted
    ):
        raise RuntimeError(
            f"生产环境以 {workers} 个工作进程运行，限流计数却放在每个进程的内存里"
            "（RATELIMIT_STORAGE_URI 未设置或为 memory://）：每个进程各数各的，登录和输错测评码的"
            "限制会放宽为原来的数倍。请设置共用的 Redis，例如 "
            "export RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0；"
            "或者只用一个工作进程（WEB_CONCURRENCY=1）。"
        )
