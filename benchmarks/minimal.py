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
from sqlalchemy import insert, update

from benchmarks import harness

bp = Blueprint("bench_minimal", __name__)


@bp.post("/bench/minimal")
def minimal_vote() -> tuple[str, int]:
    """Mark the code used and insert one ballot row (the baseline route)."""
    from evaluation import codes
    from evaluation.extensions import db
    from evaluation.models import Ballot, Code, CodeState
    from evaluation.transactions import begin_write

    digest = codes.code_digest(request.form.get("code", ""))
    begin_write()
    try:
        marked = db.session.execute(
            update(Code)
            .where(Code.digest == digest, Code.state == CodeState.UNUSED)
            .values(state=CodeState.USED)
            .returning(Code.round_id, Code.stratum_id)
        ).first()
        if marked is None:
            db.session.rollback()
            return "used", 409
        db.session.execute(
            insert(Ballot),
            [{"id": uuid.uuid4(), "round_id": marked.round_id, "stratum_id": marked.stratum_id}],
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return "ok", 200


def create_bench_app() -> Flask:
    """The real application plus the baseline route (benchmarks only)."""
    from evaluation import create_app
    from evaluation.extensions import csrf

    app = create_app()
    csrf.exempt(bp)
    app.register_blueprint(bp)
    return app


def measure_minimal(
    port: int, codes: list[str], *, concurrency: int, deadline_seconds: float
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
        list(pool.map(one, codes))
    return latencies, errors, time.perf_counter() - started


def compare_on_server(
    engine: str,
    *,
    voters: int = 400,
    minimal_requests: int = 1600,
    concurrency: int = 64,
    passes: int = 2,
    deadline_seconds: float = 240.0,
    workers: int | None = None,
) -> dict[str, Any]:
    """Whole voting path vs the baseline route, interleaved on one gunicorn, one database.

    ``passes`` alternations of (baseline, voters) so a neighbour's load on a shared machine
    falls on both sides. Returns throughputs, latency percentiles (ms) and error counts.
    """
    import shutil
    import tempfile
    from pathlib import Path

    workdir = Path(tempfile.mkdtemp(prefix=f"bench-submission-{engine}-"))
    warm = 2 * concurrency
    try:
        url = harness.fresh_database(engine, workdir)
        _round_id, plaintexts = harness.open_hall_round(
            url, workdir, voters + minimal_requests + 2 * warm
        )
        voter_codes = plaintexts[:voters]
        minimal_codes = plaintexts[voters : voters + minimal_requests]
        warm_codes = plaintexts[voters + minimal_requests :]
        minimal_lat: list[float] = []
        minimal_err: list[str] = []
        minimal_s = 0.0
        # The load generator shares the machine: its own CPU time is reported beside.
        minimal_cpu = flow_cpu = 0.0
        flows: list[harness.LoadResult] = []
        server = harness.Server(url, workdir, app="benchmarks.bench_wsgi:app", workers=workers)
        try:
            server.start()
            stop_at = time.monotonic() + deadline_seconds
            # Warm every worker up (templates compiled, connections open); not measured.
            harness.drive_voters(
                server.port, warm_codes[:warm], concurrency=concurrency, deadline_seconds=60
            )
            measure_minimal(
                server.port, warm_codes[warm:], concurrency=concurrency, deadline_seconds=60
            )
            for step in range(passes):
                left = max(1.0, stop_at - time.monotonic())
                m_part = minimal_codes[step::passes]
                cpu = time.process_time()
                lat, err, secs = measure_minimal(
                    server.port, m_part, concurrency=concurrency, deadline_seconds=left
                )
                minimal_cpu += time.process_time() - cpu
                minimal_lat += lat
                minimal_err += err
                minimal_s += secs
                left = max(1.0, stop_at - time.monotonic())
                cpu = time.process_time()
                flows.append(
                    harness.drive_voters(
                        server.port,
                        voter_codes[step::passes],
                        concurrency=concurrency,
                        deadline_seconds=left,
                    )
                )
                flow_cpu += time.process_time() - cpu
        finally:
            server.stop()
        thanked = sum(len(f.thanked) for f in flows)
        flow_s = sum(f.seconds for f in flows)
        submit: list[float] = []
        whole: list[float] = []
        every: list[float] = []
        for f in flows:
            submit += f.step_latencies("submit")
            whole += f.flow_latencies()
            for step_name in ("scan", "ballot", "submit", "thanks"):
                every += f.step_latencies(step_name)
        minimal_rps = len(minimal_lat) / minimal_s if minimal_s else 0.0
        voters_ps = thanked / flow_s if flow_s else 0.0
        return {
            "engine": engine,
            "concurrency": concurrency,
            "minimal_rps": minimal_rps,
            "minimal": harness.latency_summary(minimal_lat),
            "minimal_errors": len(minimal_err),
            "voters_ps": voters_ps,
            "requests_ps": 4 * voters_ps,
            "submit": harness.latency_summary(submit),
            "request": harness.latency_summary(every),
            "whole": harness.latency_summary(whole),
            "voter_errors": sum(len(f.errors) for f in flows),
            "ratio": voters_ps / minimal_rps if minimal_rps else 0.0,
            "client_cpu_share_minimal": minimal_cpu / minimal_s if minimal_s else 0.0,
            "client_cpu_share_voters": flow_cpu / flow_s if flow_s else 0.0,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
