"""The baseline of the submission benchmark: the least a vote can cost on this server.

``POST /bench/minimal`` with ``code=…`` marks that code used (a conditional UPDATE) and inserts
one ballot row, in one write transaction, and nothing else: no session, no CSRF, no form, no
template. It is registered only in the benchmark app (``benchmarks.bench_wsgi:app``, which is
the real application plus this route) — never in production (``wsgi:app``).

``measure_minimal`` drives it with the same HTTP client, concurrency and server as the voters
of ``benchmarks.harness``, so the two figures are comparable in one run.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Blueprint, Flask, request
from sqlalchemy import bindparam, insert, update

from benchmarks import harness
from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Ballot, Code, CodeState
from evaluation.transactions import begin_write

bp = Blueprint("bench_minimal", __name__)

# Built once, run as Core statements on the session's connection: the way the voting path
# runs its own (``evaluation.voting.views``), so the baseline pays no more per request than a vote.
_MARK_USED = (
    update(Code)
    .where(Code.digest == bindparam("b_digest"), Code.state == CodeState.UNUSED)
    .values(state=CodeState.USED)
    .returning(Code.round_id, Code.stratum_id)
)
_INSERT_BALLOT = insert(Ballot)


@bp.post("/bench/minimal")
def minimal_vote() -> tuple[str, int]:
    """Mark the code used and insert one ballot row (the baseline route)."""
    digest = codes.code_digest(request.form.get("code", ""))
    begin_write()
    conn = db.session.connection()
    try:
        marked = conn.execute(_MARK_USED, {"b_digest": digest}).first()
        if marked is None:
            db.session.rollback()
            return "used", 409
        conn.execute(
            _INSERT_BALLOT,
            [{"id": uuid.uuid4(), "round_id": marked.round_id, "stratum_id": marked.stratum_id}],
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return "ok", 200


def create_bench_app(config: dict[str, Any] | None = None) -> Flask:
    """The real application plus the baseline route (benchmarks only)."""
    from evaluation import create_app
    from evaluation.extensions import csrf

    app = create_app(config)
    csrf.exempt(bp)
    app.register_blueprint(bp)
    return app


def measure_minimal(
    port: int, plaintexts: list[str], *, concurrency: int, deadline_seconds: float
) -> tuple[list[float], list[str], float]:
    """POST every code to the baseline route; (latencies, errors, wall seconds)."""
    stop_at = time.monotonic() + deadline_seconds
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(code: str) -> None:
        if time.monotonic() > stop_at:
            with lock:
                errors.append("deadline")
            return
        try:
            reply = harness.request(
                "POST",
                harness.LOOPBACK,
                port,
                "/bench/minimal",
                body=urllib.parse.urlencode({"code": code}),
            )
        except OSError as exc:
            with lock:
                errors.append(type(exc).__name__)
            return
        with lock:
            if reply.status == 200:
                latencies.append(reply.seconds)
            else:
                errors.append(f"HTTP {reply.status}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, plaintexts))
    return latencies, errors, time.perf_counter() - started
