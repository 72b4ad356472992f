"""Serving: gunicorn logs that never hold a voting code (SPEC §5.4), and proxy trust.

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
