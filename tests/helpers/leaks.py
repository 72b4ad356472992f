"""Requests that carry a voting code in every shape a log could catch, and a check for leaks.

Shared by the log filter's unit tests, the gunicorn test and the nginx test (SPEC §5.4): each
sends the same requests, then asserts with ``holds_code`` that no log holds the code in any
reading — as typed, percent-decoded, with nginx's ``\\xHH`` escapes undone, or as the Latin-1
mojibake of a WSGI ``PATH_INFO``; with or without dashes, in either case, full-width folded.
"""

from __future__ import annotations

import re
import socket
import ssl
import unicodedata
import urllib.parse

from evaluation.codes.codes import normalise

# Ten code characters in a row (half a code) count as a leak: a partial code is a leak too.
LEAK_WINDOW = 10


def fullwidth(text: str) -> str:
    """``text`` in full-width characters, as a Chinese input method types it."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def every_byte_escaped(text: str) -> str:
    """``text`` with every UTF-8 byte percent-encoded (``K`` → ``%4B``)."""
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


def request_targets(code: str, other: str) -> list[str]:
    """Paths and queries that carry ``code`` (and ``other``), one for each shape that leaked."""
    plain = normalise(code)
    return [
        f"/v/{code}",
        f"/%76/{code}",
        f"/v%2F{code}",
        f"/v%2f{code}",
        f"/V/{code}",
        f"//v/{code}",
        f"/v/{code}/",
        f"/v/{code}/thanks?x=1",
        f"/v/{code.lower()}?from=qr",
        f"/v/{plain}",
        f"/ballot?code={code}",
        f"/x/{plain.lower()}",
        f"/x/{code.replace('-', '%20')}",
        f"/search?q={code.replace('-', '+')}",
        f"/v/{urllib.parse.quote(fullwidth(code))}",
        f"/x/{every_byte_escaped(plain)}",
        f"/v/{code}?again={other}&more={other.lower()}",
    ]


def malformed_request_lines(code: str) -> list[str]:
    """Request lines a server refuses (and logs as an error) that still hold ``code``."""
    return [
        f"GET /v/{code} extra HTTP/1.1",
        f"GET /v/{code.replace('-', ' ')} HTTP/1.1",
        f"GET /x/{code.replace('-', ' ')} HTTP/1.1",
        f"{normalise(code)} /v/{code} HTTP/1.1",
        f"GET /v/{code} HTTP/9.x",
        f"GET /v/{code}\tHTTP/1.1",
    ]


def raw_requests(code: str, other: str, host: str) -> list[bytes]:
    """Whole requests, byte for byte: the targets, the malformed lines, codes in headers."""
    end = f"Host: {host}\r\nConnection: close\r\n\r\n"
    requests = [f"GET {target} HTTP/1.1\r\n{end}" for target in request_targets(code, other)]
    requests += [f"{line}\r\n{end}" for line in malformed_request_lines(code)]
    requests += [
        # A Referer or a User-Agent with a code (gunicorn's default format prints both).
        f"GET /login HTTP/1.1\r\nReferer: https://{host}/v/{code}\r\n"
        f"User-Agent: scanner {code.lower()}\r\n{end}",
        # A header gunicorn refuses, named after the code ("Invalid HTTP Header" error).
        f"GET /login HTTP/1.1\r\nX {code}: 1\r\n{end}",
    ]
    encoded = [request.encode("utf-8") for request in requests]
    # Full-width characters sent raw (not percent-encoded), as UTF-8 bytes.
    encoded.append(f"GET /x/{fullwidth(normalise(code))} HTTP/1.1\r\n{end}".encode())
    return encoded


ORDINARY_TARGETS = ("/static/app.css", "/rounds/3/results", "/login?next=%2Frounds%2F3")


def send_raw(
    port: int, request: bytes, *, tls: bool = False, host: str = "127.0.0.1", timeout: float = 10
) -> bytes:
    """Send one raw request and read the answer until the server closes the connection."""
    conn = socket.create_connection((host, port), timeout=timeout)
    try:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # a throwaway certificate
            conn = context.wrap_socket(conn, server_hostname=host)
        conn.sendall(request)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError, ssl.SSLError):
            pass
        return answer
    finally:
        conn.close()


def _readings(text: str) -> list[str]:
    """The ways a reader could decode ``text``."""
    unescaped = re.sub(
        rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), text.encode("utf-8")
    ).decode("utf-8", errors="replace")
    mojibake = text.encode("latin-1", errors="ignore").decode("utf-8", errors="replace")
    readings = [text, unescaped, mojibake]
    return readings + [urllib.parse.unquote_plus(r) for r in readings]


def _folded(text: str) -> str:
    """Upper-case ASCII letters and digits of ``text``, full-width folded (as codes are read)."""
    text = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())


def holds_code(text: str, code: str) -> bool:
    """True if any reading of ``text`` holds ``code``, or ``LEAK_WINDOW`` characters of it."""
    plain = normalise(code)
    pieces = {plain[i : i + LEAK_WINDOW] for i in range(len(plain) - LEAK_WINDOW + 1)}
    for reading in _readings(text):
        folded = _folded(reading)
        if any(piece in folded for piece in pieces):
            return True
    return False
