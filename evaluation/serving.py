"""gunicorn integration: an access logger that never writes a voting code (SPEC §5.4)."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from evaluation.logfilter import redact

# Atoms of gunicorn's access-log format that can carry a request path.
_PATH_ATOMS = ("r", "U", "f", "q", "{raw_uri}e")


class RedactingLogger(Logger):
    """gunicorn's logger with ``/v/<code>`` paths redacted in the request line and referrer."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        """The access-log atoms, with codes redacted."""
        atoms = super().atoms(resp, req, environ, request_time)
        for key in _PATH_ATOMS:
            value = atoms.get(key)
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
