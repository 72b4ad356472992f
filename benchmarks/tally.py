"""Tally benchmark: 10⁴, 10⁵ and 10⁶ answers on SQLite and PostgreSQL (`make bench`).

For each size the round's answers are tallied by ``evaluation.tally.aggregate.tally_round`` (one
GROUP BY over the covering index, then the pure core). Beside it, in the same run and on the
same rows, a baseline: a bare ``SELECT count(*)`` over the round's answers — the least any
tally must do. Peak Python memory of the tally (tracemalloc) is shown to stay flat as the
number of ballots grows. The seal (a streamed pass over every ballot, done once at close) is
timed too, for information.

PostgreSQL runs when ``BENCH_DATABASE_URL`` names a database used only for benchmarks (its
name must contain "bench"; it is wiped), e.g. postgresql+psycopg://postgres@127.0.0.1/bench.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from benchmarks.harness import app_context, bench_postgres_url, fresh_database, hall_round

SIZES = (10_000, 100_000, 1_000_000)
STRATA = ("班子成员", "中层干部", "一般干部")


def _round_data() -> dict[str, Any]:
    """The hall round with the sample round's three strata (one planned code each)."""
    data = hall_round(1)
    data["strata"] = [{"name": name, "codes": 1} for name in STRATA]
    return data


def _grow(rnd: Any, ballots: int, rng: random.Random) -> None:
    """Add ``ballots`` ballots (every subject answered, some 弃权) and as many used codes."""
    from sqlalchemy import insert

    from evaluation.extensions import db
    from evaluation.models import Answer, Ballot, Code, CodeBatch, CodeState
    from evaluation.rounds import state

    forms = state.round_forms(rnd)
    subjects = [(s.id, list(forms[s.form_id].grade_keys) + [None]) for s in rnd.subjects]
    strata = [s.id for s in rnd.strata]
    chunk = 20_000
    for start in range(0, ballots, chunk):
        n = min(chunk, ballots - start)
        ballot_rows, answer_rows = [], []
        per_stratum: dict[int, int] = {}
        for _ in range(n):
            bid = uuid.uuid4()
            stratum = rng.choice(strata)
            per_stratum[stratum] = per_stratum.get(stratum, 0) + 1
            ballot_rows.append({"id": bid, "round_id": rnd.id, "stratum_id": stratum})
            for subject_id, keys in subjects:
                answer_rows.append(
                    {
                        "ballot_id": bid,
                        "subject_id": subject_id,
                        "item": "",
                        "stratum_id": stratum,
                        "grade": rng.choice(keys),
                    }
                )
        db.session.execute(insert(Ballot), ballot_rows)
        db.session.execute(insert(Answer), answer_rows)
        for stratum, count in per_stratum.items():
            batch = CodeBatch(round_id=rnd.id, stratum_id=stratum, count=count, issued_by="bench")
            db.session.add(batch)
            db.session.flush()
            db.session.execute(
                insert(Code),
                [
                    {
                        "round_id": rnd.id,
                        "stratum_id": stratum,
                        "batch_id": batch.id,
                        "digest": uuid.uuid4().hex,
                        "state": CodeState.USED,
                    }
                    for _ in range(count)
                ],
            )
        db.session.commit()


def _analyze() -> None:
    from sqlalchemy import text

    from evaluation.extensions import db

    engine = db.engine
    if engine.dialect.name == "postgresql":
        # What scrub_dead_rows does after a close: also sets the visibility map, so the
        # GROUP BY can be an index-only scan.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE answer, ballot, code"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_kib(fn: Any) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1024


def run_engine(engine: str, sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    """Tally the growing round at each size on one engine; return the measured rows."""
    from sqlalchemy import func

    from evaluation.extensions import db
    from evaluation.models import Answer, RoundState
    from evaluation.rounds.round_file import import_round
    from evaluation.tally.aggregate import compute_seal, tally_round

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = fresh_database(engine, workdir)
        with app_context(url, workdir):
            rnd = import_round(_round_data(), actor="bench")
            rnd.state = RoundState.CLOSED
            db.session.commit()
            subject_ids = [s.id for s in rnd.subjects]
            rng = random.Random(2026)
            answers = 0
            for size in sizes:
                ballots = (size - answers) // len(subject_ids)
                t0 = time.perf_counter()
                _grow(rnd, ballots, rng)
                _analyze()
                load = time.perf_counter() - t0
                answers = db.session.execute(
                    db.select(func.count())
                    .select_from(Answer)
                    .where(Answer.subject_id.in_(subject_ids))
                ).scalar_one()

                def baseline() -> None:
                    db.session.execute(
                        db.select(func.count())
                        .select_from(Answer)
                        .where(Answer.subject_id.in_(subject_ids))
                    ).scalar_one()

                def tally() -> None:
                    tally_round(rnd)

                result = tally_round(rnd)
                assert sum(s.figures.ballots for s in result.subjects) == answers
                rows.append(
                    {
                        "engine": engine,
                        "answers": answers,
                        "ballots": answers // len(subject_ids),
                        "baseline_s": _best(baseline),
                        "tally_s": _best(tally),
                        "tally_peak_kib": _peak_kib(tally),
                        "seal_s": _best(lambda: compute_seal(rnd), repeat=1),
                        "load_s": load,
                    }
                )
                _print_row(rows[-1])
    return rows


def _print_row(r: dict[str, Any]) -> None:
    print(
        f"{r['engine']:<10} {r['answers']:>9,} {r['ballots']:>8,}  "
        f"{r['baseline_s']:>8.3f}  {r['tally_s']:>8.3f}  {r['tally_peak_kib']:>10.0f}  "
        f"{r['seal_s']:>7.2f}  ({r['load_s']:.0f} s 写入)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    """Run on SQLite, and on PostgreSQL when BENCH_DATABASE_URL is set."""
    import logging

    logging.disable(logging.INFO)  # the migrations' INFO lines
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tally")
    parser.add_argument("answers", nargs="*", type=int, help=f"答案数（默认 {SIZES}）")
    sizes = tuple(parser.parse_args(argv or []).answers) or SIZES
    print("计票基准：5 个测评对象、3 个类别，每张选票 5 条答案；时间取 3 次最好值")
    print(
        f"{'引擎':<8} {'答案数':>9} {'选票数':>7}  {'count(*)':>8}  {'计票 s':>7}  "
        f"{'计票峰值KiB':>9}  {'封存 s':>6}"
    )
    engines = ["sqlite"] + (["postgresql"] if bench_postgres_url() else [])
    for engine in engines:
        run_engine(engine, sizes)
    if len(engines) == 1:
        print("（未设置 BENCH_DATABASE_URL：PostgreSQL 部分未运行）")


if __name__ == "__main__":
    main(sys.argv[1:])
