"""gunicorn as ``make run`` and ``make serve`` start it (``gunicorn.conf.py``) writes no voting
code to its access log or its error log (SPEC §5.4), whatever the request looks like.

Raw requests over a socket: every shape of a code in a path or query, codes in headers, and
malformed request lines that gunicorn refuses and reports as "Invalid request" errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import harness
from tests.helpers.leaks import ORDINARY_TARGETS, holds_code, raw_requests, send_raw


@pytest.mark.slow
def test_gunicorn_logs_hold_no_code_in_any_shape(tmp_path: Path) -> None:
    url = harness.fresh_database("sqlite", tmp_path)
    _round_id, codes = harness.open_hall_round(url, tmp_path, 2)
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    # Command-line settings override gunicorn.conf.py's, its logger class included; these do not.
    files = {"GUNICORN_CMD_ARGS": f"--access-logfile {access} --error-logfile {errors}"}
    requests = raw_requests(codes[0], codes[1], harness.LOOPBACK)
    with harness.Server(url, tmp_path, workers=1, env=files) as server:
        answers = [send_raw(server.port, request) for request in requests]
        for target in ORDINARY_TARGETS:
            send_raw(server.port, f"GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    assert all(answer.startswith(b"HTTP/1.1 ") for answer in answers)
    logs = {
        "access": access.read_text(errors="replace"),
        "error": errors.read_text(errors="replace"),
        "output": server.log_text(),
    }
    # The requests were logged (so the check below is not vacuous), the codes hidden …
    assert logs["access"].count("[已隐藏]") >= len(requests) - 6, logs["access"]
    assert logs["error"].count("Invalid request from ip=") >= 6, logs["error"]
    assert "[已隐藏]" in logs["error"]
    leaked = {name for name, text in logs.items() for code in codes if holds_code(text, code)}
    assert not leaked, f"a voting code reached gunicorn's {sorted(leaked)} log: {logs}"
    # … and ordinary paths kept as they were.
    for target in ORDINARY_TARGETS:
        assert f'"GET {target} HTTP/1.1"' in logs["access"]
