"""The log filter (SPEC §5.4): every code-shaped token and every ``/v/`` segment is hidden,
whatever shape the request gave it; ordinary paths and log lines are left as they are.

Tests of ``evaluation.logfilter``, of gunicorn's ``RedactingLogger`` fed by hand, and of the
development server (Werkzeug) with the app; gunicorn and nginx themselves are started in
``tests/test_serving.py`` and ``tests/test_reverse_proxy.py``.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import urllib.parse
from datetime import timedelta

import pytest
from flask import Flask
from gunicorn.config import Config
from werkzeug.serving import make_server

from evaluation.codes.codes import new_code, new_receipt, normalise
from evaluation.logfilter import REDACTED, SHORTEST_TOKEN, RedactCodes, redact
from evaluation.serving import RedactingLogger
from tests.helpers.leaks import (
    ORDINARY_TARGETS,
    every_byte_escaped,
    fullwidth,
    holds_code,
    malformed_request_lines,
    raw_requests,
    request_targets,
    send_raw,
)

CODE = "K7QM-4XPA-R9TW-HC3N-8WZE"
OTHER = "Q2ZT-HMN7-6ARD-VW3X-PK9B"
PLAIN = normalise(CODE)


def test_the_leak_check_sees_every_reading() -> None:
    """``holds_code`` itself: without it the tests below would prove nothing."""
    for text in (
        CODE,
        CODE.lower(),
        PLAIN,
        fullwidth(CODE),
        every_byte_escaped(CODE),
        urllib.parse.quote(fullwidth(CODE)),
        fullwidth(PLAIN).encode().decode("latin-1"),  # WSGI PATH_INFO
        "".join(f"\\x{b:02X}" for b in fullwidth(PLAIN).encode()),  # nginx's log escaping
        "GET /v/[已隐藏] 4XPA R9TW HC3N 8WZE HTTP/1.1",  # half a code
    ):
        assert holds_code(text, CODE), text
    assert not holds_code("GET /v/[已隐藏] HTTP/1.1", CODE)


@pytest.mark.parametrize("target", request_targets(CODE, OTHER))
def test_every_shape_of_a_code_in_a_request_is_hidden(target: str) -> None:
    for text in (target, f'10.0.0.5 - - [06/Jun/2025:10:00:00 +0800] "GET {target} HTTP/1.1"'):
        redacted = redact(text)
        assert REDACTED in redacted
        assert not holds_code(redacted, CODE) and not holds_code(redacted, OTHER), redacted


@pytest.mark.parametrize("line", malformed_request_lines(CODE))
def test_malformed_request_lines_are_hidden_as_servers_log_them(line: str) -> None:
    """gunicorn logs ``Invalid request from ip=…: Invalid HTTP request line: '…'`` (repr);
    Werkzeug's server logs ``code 400, message Bad request syntax ('…')`` and the raw line."""
    for logged in (
        f"Invalid request from ip=10.0.0.5: Invalid HTTP request line: {line!r}",
        f"127.0.0.1 - - [06/Jun/2025 10:00:00] code 400, message Bad request syntax ({line!r})",
        f'127.0.0.1 - - [06/Jun/2025 10:00:00] "{line}" 400 -',
        line.encode("utf-8").decode("latin-1"),
    ):
        redacted = redact(logged)
        assert not holds_code(redacted, CODE), redacted


def test_the_marker_replaces_only_the_code() -> None:
    assert redact(f"GET /v/{CODE} HTTP/1.1") == f"GET /v/{REDACTED} HTTP/1.1"
    assert redact(f"/%76/{CODE}?x=1") == f"/%76/{REDACTED}?x=1"
    assert redact(f"/v%2F{CODE}/") == f"/v%2F{REDACTED}/"
    assert redact(f"//V/{CODE.lower()}") == f"//V/{REDACTED}"
    assert redact(f"/ballot?code={CODE}&lang=zh") == f"/ballot?code={REDACTED}&lang=zh"
    assert redact(f"/x/{PLAIN} HTTP/1.1") == f"/x/{REDACTED} HTTP/1.1"


def test_a_mistyped_code_after_v_is_hidden_too() -> None:
    """One character wrong (O for Q) breaks the code's shape, but is nearly the code."""
    typo = CODE.replace("Q", "O")
    assert redact(f"/v/{typo}") == f"/v/{REDACTED}"
    assert redact("/v/NOT-A-REAL-CODE?x=1") == f"/v/{REDACTED}?x=1"


def test_receipts_and_random_codes_are_hidden() -> None:
    for _ in range(200):
        code, receipt = new_code(), new_receipt()
        assert len(normalise(receipt)) >= SHORTEST_TOKEN
        for text in (f"/x/{code}", f"/q?r={receipt}", f"/x/{normalise(code).lower()}"):
            assert not holds_code(redact(text), code) and normalise(receipt) not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        *ORDINARY_TARGETS,
        "/v",
        "/v/",
        "/rounds/12/codes/batches/3.csv",
        "/archive?q=%E5%BC%A0%E4%B8%89",
        "/archive?q=" + "张三".encode().decode("latin-1"),
        "GET /rounds/3/results HTTP/1.1",
        '10.0.0.5 - - [06/Jun/2025:22:45:55 +0800] "GET /static/app.css HTTP/1.1" 200 5234 "-" '
        '"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/120.0.0.0 Mobile Safari/537.36"',
        "Booting worker with pid: 12345",
        "未处理的错误 GET /rounds/3/close: OperationalError",
        "café %zz 100%",
    ],
)
def test_ordinary_paths_and_lines_are_left_alone(text: str) -> None:
    assert redact(text) == text


def _filtered(record: logging.LogRecord) -> str:
    assert RedactCodes().filter(record) is True  # never drops a line
    return logging.Formatter("%(message)s").format(record)


def test_the_filter_redacts_arguments_exceptions_and_stacks() -> None:
    args = logging.LogRecord("t", logging.INFO, __file__, 1, "%s from %s", (CODE, "10.0.0.5"), None)
    assert _filtered(args) == f"{REDACTED} from 10.0.0.5"
    mapping = logging.LogRecord("t", logging.INFO, __file__, 1, "%(r)s", ({"r": CODE},), None)
    assert _filtered(mapping) == REDACTED
    try:
        raise ValueError(f"Invalid HTTP request line: 'GET /v/{CODE} x'")
    except ValueError:
        failed = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "Error handling request %s", (f"/v/{CODE}",),
            sys.exc_info(), sinfo=f"Stack (most recent call last):\n  /x/{CODE}",
        )  # fmt: skip
    text = _filtered(failed)
    assert "ValueError" in text and "Stack" in text and not holds_code(text, CODE)


def test_one_filter_per_logger_however_often_it_is_added() -> None:
    log = logging.getLogger("tests.logfilter.once")
    log.addFilter(RedactCodes())
    log.addFilter(RedactCodes())
    assert sum(isinstance(f, RedactCodes) for f in log.filters) == 1


class _Response:
    status = "400 Bad Request"
    sent = 11
    response_length = 11
    headers = [("Location", f"https://x/v/{CODE}")]


class _Request:
    headers = [("REFERER", f"https://x/ballot?code={CODE}"), ("USER-AGENT", f"app {PLAIN}")]


def _environ(target: str) -> dict[str, str]:
    path, _, query = target.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": target,
        "PATH_INFO": urllib.parse.unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.5",
        "HTTP_REFERER": f"https://x/v/{CODE}",
    }


def test_gunicorn_logger_filters_its_access_and_error_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The logger ``gunicorn.conf.py`` names: every atom, the access line, the error lines."""
    for name in ("gunicorn.error", "gunicorn.access"):
        # Alembic's fileConfig (run by migrations in earlier tests) disables existing loggers.
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", config.access_log_format + " %(U)s %(q)s %({location}o)s")
    logger = RedactingLogger(config)
    assert RedactCodes() in logger.error_log.filters and RedactCodes() in logger.access_log.filters
    logger.setup(config)  # a reload does not stack filters
    assert logger.error_log.filters.count(RedactCodes()) == 1
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    for log in (logger.error_log, logger.access_log):
        log.addHandler(handler)
    try:
        for target in request_targets(CODE, OTHER):
            atoms = logger.atoms(_Response(), _Request(), _environ(target), timedelta(0))
            assert not holds_code(" ".join(map(str, atoms.values())), CODE)
            logger.access(_Response(), _Request(), _environ(target), timedelta(0))
        for line in malformed_request_lines(CODE):
            logger.warning(f"Invalid request from ip=10.0.0.5: Invalid HTTP request line: {line!r}")
        try:
            raise ValueError(f"Invalid HTTP request line: 'GET /v/{CODE} x'")
        except ValueError:
            logger.exception("Error handling request %s", f"/v/{CODE}")
    finally:
        for log in (logger.error_log, logger.access_log):
            log.removeHandler(handler)
    written = output.getvalue()
    assert written.count(REDACTED) > len(request_targets(CODE, OTHER))
    assert not holds_code(written, CODE) and not holds_code(written, OTHER), written


def test_development_server_logs_no_code_even_for_malformed_lines(
    app: Flask, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flask run``: Werkzeug logs each request line, and a refused one as an error."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    # Alembic's fileConfig (run by the migration fixture) disables existing loggers.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    requests = raw_requests(CODE, OTHER, f"127.0.0.1:{server.server_port}")
    try:
        for request in requests:
            assert send_raw(server.server_port, request)  # a refused version gets a bare page
        # The handler threads log after they have answered: wait for their lines.
        deadline = time.monotonic() + 10
        while sum(r.name == "werkzeug" for r in caplog.records) < len(requests):
            assert time.monotonic() < deadline, "the server logged too few lines"
            time.sleep(0.05)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    lines = "\n".join(r.getMessage() for r in caplog.records if r.name == "werkzeug")
    assert "Bad request" in lines and lines.count(REDACTED) >= len(requests) - 2, lines
    assert not holds_code(lines, CODE) and not holds_code(lines, OTHER), lines
