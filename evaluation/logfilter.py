"""Keeps voting codes out of every log line (SPEC §5.4).

Access logs print request paths and query strings, error logs print malformed request lines,
and any of them can carry a code: ``/v/<code>`` as the QR code opens it, but also ``/V/<code>``,
``//v/<code>``, ``/%76/<code>``, ``/v%2F<code>``, ``/ballot?code=<code>`` or a code a voter
pasted anywhere. Enumerating path shapes always misses one, so ``redact`` looks at the text the
way the app reads a code (``codes.normalise``: any case, dashes and spaces ignored, full-width
folded, percent-escapes decoded) and hides

- every code-shaped token anywhere: a run of at least ``SHORTEST_TOKEN`` code characters
  (receipts are that long, codes longer), which may be split by up to ``MAX_GAP`` separator
  characters (dashes, spaces, ``+``, dots …) at a time; and
- whatever follows ``/v/`` up to the end of that path segment, code-shaped or not: a mistyped
  code (one character wrong or missing) is nearly as good as the code to whoever reads the log.

Ordinary paths (``/static/app.css``, ``/rounds/3/results``) are left alone: words rarely go
sixteen characters without one of 0, 1, I, L or O, which the code alphabet leaves out.

``nginx``'s access log has no such filter; README's nginx example redacts the same set with
regular expressions over ``$request``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator

from evaluation.codes.codes import ALPHABET, CODE_LENGTH

REDACTED = "[已隐藏]"
# Receipts (``codes.new_receipt``) are 16 code characters, voting codes CODE_LENGTH.
SHORTEST_TOKEN = 16
# Separator characters allowed between two code characters (``K7QM - 4XPA`` has three).
MAX_GAP = 3

# Characters that end a token in URLs and log lines. Anything else that is not a letter or a
# digit (``-``, ``_``, ``+``, ``.``, ``~``, a space, a full-width dash …) may sit inside a typed
# code: ``codes.normalise`` drops it.
_DELIMITERS = "/?#&=;:,\"'()<>[]{}|"


class _Expressions:
    """The expressions ``redact`` searches with, for one way of showing separators."""

    def __init__(self, separators: str, spaces: str) -> None:
        code = f"[{ALPHABET}]"
        # Long stretches of code characters and separators, found in one cheap pass; only they
        # can hold a code, and only they are searched again with the exact (slower) expression.
        self.stretch = re.compile(rf"[{ALPHABET}{separators}{spaces}]{{{SHORTEST_TOKEN},}}")
        # Whitespace may split a run only between groups of four, as codes are printed
        # ("K7QM 4XPA …"): a word next to a code stays. No run reaches into "… HTTP/1.1".
        group = f"{code}{{4}}"
        gap = (
            rf"(?:[{separators}]{{0,{MAX_GAP}}}"
            rf"|(?<={group})[{separators}{spaces}]{{1,{MAX_GAP}}}(?={group}))(?!HTTP/)"
        )
        self.run = re.compile(rf"{code}(?:{gap}{code}){{{SHORTEST_TOKEN - 1},}}")
        # The segment after /v/ ends where the path segment, the path or the log field ends.
        self.segment = re.compile(r"/V/+([^/?#\s\"']+)")

    def spans(self, view: str) -> list[tuple[int, int]]:
        """Spans of ``view`` (upper case) to hide: code-shaped runs and ``/v/`` segments."""
        spans = [match.span(1) for match in self.segment.finditer(view)]
        for stretch in self.stretch.finditer(view):
            # One character more, for the lookahead at the stretch's end ("HTTP" + "/").
            limit = min(stretch.end() + 1, len(view))
            spans += [match.span() for match in self.run.finditer(view, stretch.start(), limit)]
        return spans


# Plain ASCII text without escapes is searched as it is (upper-cased); anything else through
# its view, which shows every separator as "-" and raw whitespace as " ".
_RAW = _Expressions(
    "".join(
        re.escape(chr(point))
        for point in range(33, 127)
        if not chr(point).isalnum() and chr(point) not in _DELIMITERS
    ),
    r"\s",
)
_SEPARATOR = "-"
_VIEW = _Expressions(re.escape(_SEPARATOR), " ")


def _ascii_view_table() -> dict[int, str]:
    """How each ASCII character appears in the view (upper case, separators as "-")."""
    table: dict[int, str] = {}
    for point in range(128):
        char = chr(point)
        if char.isalnum() or char in _DELIMITERS:
            table[point] = char.upper()
        elif char.isspace():
            table[point] = " "
        else:
            table[point] = _SEPARATOR
    return table


_ASCII_VIEW = _ascii_view_table()
_HEX = frozenset("0123456789abcdefABCDEF")
assert CODE_LENGTH >= SHORTEST_TOKEN


def _decoded_units(text: str) -> Iterator[tuple[int, int, str, bool]]:
    """``(start, end, character, was_escaped)`` for each character of ``text``.

    Bytes are percent-escapes (``%2F``) or, as in a WSGI ``PATH_INFO``, characters
    U+0080–U+00FF standing for one byte each. A run of them that spells one UTF-8 character is
    one unit, decoded (browsers send ``Ｋ`` as ``%EF%BC%AB``). An escape that is not UTF-8 becomes
    U+FFFD, which the app drops like any other separator; a lone Latin-1 character stays itself.
    """
    i, size = 0, len(text)
    while i < size:
        first = _byte_at(text, i)
        if first is None:
            yield i, i + 1, text[i], False
            i += 1
            continue
        lead, end = first
        length = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        raw = bytearray([lead])
        while len(raw) < length and (more := _byte_at(text, end)) is not None:
            raw.append(more[0])
            end = more[1]
        try:
            char = raw.decode("utf-8")
        except UnicodeDecodeError:
            end = first[1]
            char = "\ufffd" if end == i + 3 else text[i]
        yield i, end, char, end - i > 1
        i = end


def _byte_at(text: str, i: int) -> tuple[int, int] | None:
    """The byte that starts at ``text[i]`` and the index after it, or None for a character."""
    if i + 2 < len(text) and text[i] == "%" and text[i + 1] in _HEX and text[i + 2] in _HEX:
        return int(text[i + 1 : i + 3], 16), i + 3
    if i < len(text) and "\x80" <= text[i] <= "\xff":
        return ord(text[i]), i + 1
    return None


def _view_of(char: str, escaped: bool) -> str:
    """One character of the view: what the app's ``normalise`` would make of ``char``."""
    folded = unicodedata.normalize("NFKC", char).upper() if not char.isascii() else char
    if len(folded) != 1 or not folded.isascii():
        return _SEPARATOR  # dropped by ``codes.normalise``: it may sit inside a code
    if escaped and not folded.isalnum() and folded != "/":
        # %3F, %23 … are part of the segment for the app (only a decoded "/" splits a path).
        return _SEPARATOR
    return _ASCII_VIEW[ord(folded)]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span replaced by the marker."""
    parts: list[str] = []
    last = 0
    for start, end in _merged(spans):
        parts += [text[last:start], REDACTED]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def redact(text: str) -> str:
    """Return ``text`` with every code-shaped token and every ``/v/`` segment replaced."""
    if len(text) < SHORTEST_TOKEN and "/" not in text and "%" not in text and text.isascii():
        return text  # too short for a code, and no path (most access-log atoms)
    if text.isascii() and "%" not in text:
        # One character, one view character: the spans carry over as they are.
        spans = _RAW.spans(text.upper())
        return _replace(text, spans) if spans else text
    units = list(_decoded_units(text))
    view = "".join(_view_of(char, escaped) for _, _, char, escaped in units)
    spans = [(units[start][0], units[end - 1][1]) for start, end in _VIEW.spans(view)]
    return _replace(text, spans) if spans else text


class RedactCodes(logging.Filter):
    """A logging filter that redacts voting codes from the formatted message and traceback.

    All instances are equal, so adding one to a logger that already has one changes nothing
    (``create_app`` may run many times in one process).
    """

    def __eq__(self, other: object) -> bool:
        """Equal to every other ``RedactCodes``."""
        return isinstance(other, RedactCodes)

    def __hash__(self) -> int:
        """One hash for all instances (they are all equal)."""
        return hash(RedactCodes)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - never let logging break a request
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # The exception's text (a request line, a path) would be printed below the message.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
