"""Issue 18's province history at test size, built once per engine and session, and what every
page of it costs in SQL statements at two sizes.

The history is ``benchmarks.history``'s (the same operations: import, issue codes, open, cast
sealed ballots, close, archive), small: ``SHAPES`` grows both the number of county units and
the number of years, so a statement repeated per unit, per city, per year or per entry shows
as a count that grows. It lives in a database of its own (an SQLite file, or a PostgreSQL
database beside TEST_DATABASE_URL), so the per-test emptying of the shared one never touches it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.history import (
    Built,
    Shape,
    Statement,
    analyze,
    ensure_admin,
    grow,
    pages,
    repeated,
    statement_counts,
)
from evaluation import create_app
from evaluation.extensions import db
from evaluation.models import ArchiveEntry
from tests.helpers.databases import app_config, fresh_side_database, migrate

# 8 rounds → 90 rounds (48 → 540 archive entries): more units, more cities, more years, and
# past 500 entries, where an eager load (selectinload) splits its IN list into batches.
SHAPES = (Shape(4, 2), Shape(9, 10))
VOTERS = 3

# The pages whose archive queries PostgreSQL's plans are checked for: the archive filters.
FILTERED = ("/archive/unit/<县局>", "/archive/flags?unit=<县局>", "/archive/person/<id>")


@dataclass
class PageCounts:
    """One page's SQL statements at the small and at the large size."""

    small: int
    large: int
    repeats: list[tuple[int, str]]


@dataclass
class History:
    """Statement counts per page label; PostgreSQL plans of the filtered pages' archive reads."""

    engine: str
    counts: dict[str, PageCounts]
    entries: list[int]  # archive entries at each size
    plans: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)


def database_url(engine: str, tmp: Path) -> str:
    """An empty database for the history on ``engine``."""
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'history.db'}"
    return fresh_side_database("history")


def _plans(statements: list[Statement]) -> list[tuple[str, dict[str, Any]]]:
    """EXPLAIN (FORMAT JSON) of every statement that reads archive_entry, sequential scans
    priced out (``enable_seqscan = off``) so that the plan uses an index wherever one serves,
    however few rows the test history has."""
    out = []
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for sql, _origin, params in statements:
            if "archive_entry" not in sql.split(" WHERE ", 1)[0] or not sql.startswith("SELECT"):
                continue
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params).scalar_one()
            if isinstance(plan, str):
                plan = json.loads(plan)
            out.append((sql, plan[0]["Plan"]))
        conn.rollback()
    return out


def build_and_count(engine: str, tmp: Path) -> History:
    """Build ``SHAPES`` in turn in a fresh database; count every page's statements at each."""
    url = database_url(engine, tmp)
    migrate(url, tmp)
    app = create_app(app_config(url, tmp))
    built = Built()
    measured = []
    entries = []
    for shape in SHAPES:
        with app.app_context():
            grow(shape, built, voters=VOTERS)
            ensure_admin()
            analyze()
            paths = pages()
            entries.append(
                db.session.execute(select(func.count()).select_from(ArchiveEntry)).scalar_one()
            )
            db.session.remove()
        measured.append(statement_counts(app, paths))
    small, large = measured
    history = History(
        engine=engine,
        entries=entries,
        counts={
            label: PageCounts(small[label][0], large[label][0], repeated(large[label][1]))
            for label in large
        },
    )
    if engine == "postgresql":
        with app.app_context():
            for label in FILTERED:
                history.plans[label] = _plans(large[label][1])
            db.engine.dispose()
    else:
        with app.app_context():
            db.engine.dispose()
    return history


def scans_of(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    """Every node of ``plan`` that reads ``relation`` (a heap scan, or an index scan of it)."""
    found = []
    if plan.get("Relation Name") == relation:
        found.append(plan)
    for child in plan.get("Plans", []):
        found += scans_of(child, relation)
    return found


def served_by_index(plan: dict[str, Any], relation: str) -> bool:
    """True when every read of ``relation`` in ``plan`` is an index (or bitmap) scan with an
    index condition: rows found through an index, not every row read and filtered."""
    for node in scans_of(plan, relation):
        kind = node["Node Type"]
        if kind in ("Index Scan", "Index Only Scan"):
            if "Index Cond" not in node:
                return False
        elif kind == "Bitmap Heap Scan":
            # Its bitmap: one index scan, or several combined (BitmapOr / BitmapAnd).
            scans = _bitmap_scans(node)
            if not scans or not all("Index Cond" in scan for scan in scans):
                return False
        else:  # Seq Scan, or anything else that reads the whole table
            return False
    return True


def _bitmap_scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The Bitmap Index Scans beneath ``node``, through any BitmapOr and BitmapAnd."""
    found = []
    for child in node.get("Plans", []):
        if child["Node Type"] == "Bitmap Index Scan":
            found.append(child)
        elif child["Node Type"] in ("BitmapOr", "BitmapAnd"):
            found += _bitmap_scans(child)
    return found
