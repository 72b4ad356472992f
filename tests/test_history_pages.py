"""Issue 18: every page's SQL statement count is independent of the history it shows, and the
archive filters are served by an index (PostgreSQL).

One province history per engine and session (``tests/helpers/history.py``: the benchmark's
history at test size, built through the product's operations), measured at two sizes — 4
county units × 2 years, then 9 × 10 (48 → 540 archive entries). A page whose count grows runs a
statement per unit, year, cadre or entry (an N+1): the failure names the statements that
repeat. The filtered archive pages' reads of ``archive_entry`` are EXPLAINed on PostgreSQL with
sequential scans priced out: each must find its rows through an index (docs/performance.md
names which).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.databases import BACKENDS
from tests.helpers.history import FILTERED, SHAPES, History, build_and_count, served_by_index

pytestmark = pytest.mark.slow  # about half a minute per engine to build the history

# Page labels as in ``benchmarks.history.pages``.
PAGES = [
    "/ 首页（测评活动）",
    "/archive/flags",
    "/archive/unit/<根> 甘肃省局",
    "/archive/unit/<县局>",
    "/archive/flags?unit=<县局>",
    "/archive/person/<id>",
    "/archive/export.xlsx",
    "/archive?q=县局",
    "/archive?q=H（工号）",
    "/units 单位",
    "/rounds/<id> 最近的测评活动",
]


@pytest.fixture(scope="session", params=BACKENDS)
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> History:
    """The history of ``SHAPES`` on each engine, built and counted once per session."""
    tmp: Path = tmp_path_factory.mktemp(f"history-{request.param}")
    return build_and_count(request.param, tmp)


def test_the_history_grows_between_the_two_sizes(history: History) -> None:
    small, large = history.entries
    rounds = [s.rounds for s in SHAPES]
    assert (small, large) == (rounds[0] * 6, rounds[1] * 6)  # six subjects a round
    assert set(history.counts) == set(PAGES)


@pytest.mark.parametrize("label", PAGES)
def test_a_page_runs_as_many_statements_however_long_the_history(
    history: History, label: str
) -> None:
    page = history.counts[label]
    repeats = "\n".join(f"×{n}: {s[:400]}" for n, s in page.repeats[:3])
    assert page.large <= page.small, (
        f"{label}: {page.small} statements at {SHAPES[0].label}, {page.large} at "
        f"{SHAPES[1].label}; repeated:\n{repeats}"
    )


@pytest.mark.parametrize("label", FILTERED)
def test_the_archive_filters_read_entries_through_an_index(history: History, label: str) -> None:
    if history.engine != "postgresql":
        pytest.skip("EXPLAIN 检查只在 PostgreSQL 上进行")
    plans = history.plans[label]
    assert plans, f"{label} read no archive entries"
    unserved = [sql for sql, plan in plans if not served_by_index(plan, "archive_entry")]
    assert not unserved, f"{label}: archive_entry read without an index by\n" + "\n".join(
        s[:600] for s in unserved
    )


def test_the_plan_check_refuses_a_scan_of_every_row() -> None:
    """The EXPLAIN check above can fail: a sequential scan, or an index read end to end with no
    condition, is not a read through an index; a bitmap built from index conditions is."""
    seq = {"Node Type": "Seq Scan", "Relation Name": "archive_entry"}
    whole_index = {"Node Type": "Index Scan", "Relation Name": "archive_entry"}
    by_unit = {"Node Type": "Bitmap Index Scan", "Index Cond": "(unit_id = 5)"}
    by_person = {"Node Type": "Bitmap Index Scan", "Index Cond": "(person_id = ANY (…))"}
    bitmap = {
        "Node Type": "Bitmap Heap Scan",
        "Relation Name": "archive_entry",
        "Plans": [{"Node Type": "BitmapOr", "Plans": [by_unit, by_person]}],
    }
    assert not served_by_index({"Node Type": "Sort", "Plans": [seq]}, "archive_entry")
    assert not served_by_index(whole_index, "archive_entry")
    assert served_by_index({"Node Type": "Sort", "Plans": [bitmap]}, "archive_entry")
    unindexed = {**bitmap, "Plans": [{"Node Type": "BitmapOr", "Plans": [by_unit, seq]}]}
    assert not served_by_index(unindexed, "archive_entry")
