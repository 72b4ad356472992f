"""Serving: an access logger that never writes a voting code (SPEC §5.4), and proxy trust.

Behind a reverse proxy every request comes from the proxy's address; ``trust_proxies`` makes
the app read the client's address (for rate limits) and scheme from the proxy's
``X-Forwarded-For``/``X-Forwarded-Proto`` — only as many hops as ``TRUSTED_PROXIES`` says, so a
client talking to the app directly cannot forge its address.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.glogging import Logger
from werkzeug.middleware.proxy_fix import ProxyFix

from evaluation.logfilter import CODE_PATH_MARK, redact


class RedactingLogger(Logger):
    """gunicorn's logger with ``/v/<code>`` paths redacted from every access-log atom."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        """The access-log atoms, with codes redacted."""
        atoms = super().atoms(resp, req, environ, request_time)
        # Every text atom: a custom access_log_format may print any header or environ value
        # (RAW_URI, PATH_INFO, Referer, Location …), and any of them can hold a /v/<code> path.
        for key, value in atoms.items():
            if isinstance(value, str) and CODE_PATH_MARK in value:
                atoms[key] = redact(value)
        return atoms


def trust_proxies(app: Flask) -> None:
    """Honour X-Forwarded-For/-Proto from ``TRUSTED_PROXIES`` reverse proxies (0 = none)."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        # Host is never taken from the request (SPEC §5.7: links come from PUBLIC_BASE_URL).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
