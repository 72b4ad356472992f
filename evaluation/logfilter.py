"""Keeps voting codes out of every log line (SPEC §5.4).

The access log of the development server and of gunicorn would otherwise print request paths,
and ``/v/<code>`` carries a code. The filter rewrites any such path to ``/v/[已隐藏]``.
"""

from __future__ import annotations

import logging
import re

# /v/<code> in a path, with or without a query string. Text without CODE_PATH_MARK cannot
# hold one (a cheap test before the regular expression, for every access-log atom).
CODE_PATH_MARK = "/v/"
_CODE_PATH = re.compile(r"(/v/)[^\s\"?/]+")
REDACTED = r"\1[已隐藏]"


def redact(text: str) -> str:
    """Return ``text`` with any voting code in a ``/v/…`` path replaced."""
    return _CODE_PATH.sub(REDACTED, text)


class RedactCodes(logging.Filter):
    """A logging filter that redacts voting codes from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        if record.args:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - never let logging break a request
                return True
            record.msg = redact(message)
            record.args = None
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True
