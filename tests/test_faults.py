"""Faults: gunicorn killed with SIGKILL in the middle of a hall's load, then restarted.

Voters behave like people: a page that fails is tried again (scan the code again). Afterwards:

* every voter who saw the thanks page has a counted ballot (their receipt is stored);
* no code is used without a ballot, no ballot exists without a used code, no ballot is partial;
* every voter ends either thanked or told "already used" (their ballot went in just before the
  crash) — nobody is lost and nobody votes twice;
* the round closes, is sealed, and ``flask verify`` and the audit chain pass.

Runs on SQLite and on PostgreSQL (a database beside TEST_DATABASE_URL, wiped each run).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from benchmarks import harness
from tests.helpers.databases import BACKENDS, fresh_side_database

VOTERS = int(os.environ.get("FAULT_VOTERS", "150"))
CONCURRENCY = 16


@pytest.mark.slow
@pytest.mark.parametrize("engine", BACKENDS)
def test_sigkill_mid_load_loses_nothing_and_counts_nothing_twice(
    engine: str, tmp_path: Path
) -> None:
    pg_url = fresh_side_database("faults") if engine == "postgresql" else None
    url = harness.fresh_database(engine, tmp_path, pg_url)
    round_id, codes = harness.open_hall_round(url, tmp_path, VOTERS)

    enough = threading.Event()
    finished: list[harness.LoadResult] = []

    def progress(done: int) -> None:
        if done >= VOTERS // 4:
            enough.set()

    server = harness.Server(url, tmp_path, workers=3)
    restarted: harness.Server | None = None
    try:
        server.start()
        load = threading.Thread(
            target=lambda: finished.append(
                harness.drive_voters(
                    server.port,
                    codes,
                    concurrency=CONCURRENCY,
                    deadline_seconds=240,
                    retry_until=time.monotonic() + 200,
                    on_progress=progress,
                )
            ),
            daemon=True,
        )
        load.start()
        assert enough.wait(timeout=180), "the load never got going"
        server.kill()  # master and workers, mid-transaction for some voters
        killed_at = harness.ledger(url, tmp_path, round_id, [])
        restarted = harness.Server(url, tmp_path, workers=3, port=server.port).start()
        load.join(timeout=260)
        assert not load.is_alive(), "the load did not finish within its deadline"
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()

    result = finished[0]
    # The crash really happened in the middle: some ballots before it, some after it.
    assert 0 < killed_at.ballots < VOTERS
    assert any(o.attempts > 1 for o in result.outcomes), "no voter noticed the crash"

    receipts = [o.receipt for o in result.thanked if o.receipt]
    book = harness.ledger(url, tmp_path, round_id, receipts)
    told_used = [o for o in result.outcomes if not o.receipt and o.already_used]
    lost = [o for o in result.outcomes if not o.receipt and not o.already_used]
    assert book.receipts_missing == 0  # every thanks page is a counted ballot
    assert book.ballots == book.used_codes == book.receipts
    assert book.answers == book.ballots * book.questions_per_ballot
    assert lost == [], [o.error for o in lost[:5]]
    assert book.used_codes == len(receipts) + len(told_used) == VOTERS
    assert book.unused_codes == 0

    verified, detail = harness.close_and_verify(url, tmp_path, round_id)
    assert verified, detail
    from evaluation import audit

    with harness.app_context(url, tmp_path):
        checked, problem = audit.verify_chain()
        assert problem is None and checked > 0
