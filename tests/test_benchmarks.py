"""The submission benchmark's baseline route does what it says, and only in the benchmark app."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from benchmarks.minimal import create_bench_app
from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Ballot, Code, CodeState
from tests.helpers.voters import open_with_codes


def test_the_baseline_marks_a_code_used_once_and_inserts_one_ballot(
    app: Flask, sample_round
) -> None:
    issued = open_with_codes(sample_round, per_stratum=2)
    first, second = next(iter(issued.values()))
    bench = create_bench_app(dict(app.config))
    try:
        client = bench.test_client()
        assert client.post("/bench/minimal", data={"code": first}).status_code == 200
        assert client.post("/bench/minimal", data={"code": first}).status_code == 409
        assert client.post("/bench/minimal", data={"code": "NOT-A-CODE"}).status_code == 409
    finally:
        with bench.app_context():
            db.engine.dispose()
    db.session.rollback()  # see the other app's commits
    states = dict(
        db.session.execute(
            select(Code.digest, Code.state).where(
                Code.digest.in_([codes.code_digest(first), codes.code_digest(second)])
            )
        ).all()
    )
    assert states == {
        codes.code_digest(first): CodeState.USED,
        codes.code_digest(second): CodeState.UNUSED,
    }
    ballots = db.session.execute(
        select(func.count()).select_from(Ballot).where(Ballot.round_id == sample_round.id)
    ).scalar_one()
    assert ballots == 1


def test_the_production_app_has_no_baseline_route(client) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/bench/minimal", data={"code": "X"}).status_code in (400, 404)


def test_cpu_use_counts_the_servers_workers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The benchmark's CPU figures come from the server's children (gunicorn's workers)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from benchmarks import harness

    if not Path("/proc/self/stat").exists():
        pytest.skip("没有 /proc：CPU 计量只在 Linux 上进行")
    busy = (
        "import time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.4: pass\n"
        "time.sleep(30)\n"
    )
    server = harness.Server("sqlite://", tmp_path)
    # A master whose one child burns 0.4 s of CPU and then idles, as a worker between loads.
    server.process = subprocess.Popen(
        ["sh", "-c", f'"{sys.executable}" -c "{busy}"; sleep 30'], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # the child started with nothing used: its whole use is what we see
            used = harness.cpu_use(server)
            assert used is not None
            if used.server >= 0.35 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert 0.35 <= used.server < 0.6
        assert used.per(2)["server"] == pytest.approx(used.server * 500)
    finally:
        server.kill()


@pytest.mark.slow
def test_the_load_test_counts_the_burst_and_the_hall_pace() -> None:
    """`make loadtest` in small: a burst, then voters arriving at random and pausing to fill in."""
    from benchmarks import loadtest

    report = loadtest.run_engine("sqlite", voters=6, concurrency=3, deadline=60, hall=2.0)
    assert report.failures == []
    assert report.thanked == 6 and report.hall_thanked == 6
    assert report.ledger is not None
    assert report.ledger.ballots == report.ledger.used_codes == report.ledger.receipts == 12
    assert report.hall_latencies is not None
    # The pause to fill in the ballot is a person's, not the server's: not in the latencies.
    assert report.hall_latencies["whole"]["max"] < 1000


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_close_benchmark_counts_every_sealed_ballot_while_another_round_votes(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make bench`'s close in small: every ballot counted, the other round's voters served."""
    from benchmarks import close
    from tests.helpers.databases import PG_URL, fresh_side_database

    if engine == "postgresql":
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL 未设置：跳过 PostgreSQL")
        monkeypatch.setenv("BENCH_DATABASE_URL", fresh_side_database("close_bench"))
    r = close.run_engine(engine, 300)
    assert r["sealed_box"] and r["counted"] == 300
    assert r["other_errors"] == []
    assert r["other_median_before_s"] > 0  # the other round was voting before the close


def test_the_workbook_benchmark_runs_on_its_own() -> None:
    """``python -m benchmarks.workbook N`` writes the round's whole report, as ``flask report``
    does after a close (it reads the sealed result, so the benchmark seals its round)."""
    import subprocess
    import sys

    from benchmarks import harness

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.workbook", "20"],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1].split()
    assert last[0] == "20" and "个（工作簿" in done.stdout
