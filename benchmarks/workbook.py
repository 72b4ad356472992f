"""Workbook benchmark: the outputs of a 1,000-voter round (`make bench`).

A closed round of the five Gansu subjects and three strata with 1,000 ballots: the time and
peak Python memory (tracemalloc) of the workbook alone, of everything ``flask report`` writes
(workbook, charts, feedback PDFs), and of the workbook for 10,000 voters to show how it grows.
Runs on SQLite (the work is Python's, not the database's).
"""

from __future__ import annotations

import argparse
import functools
import io
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.harness import app_context, fresh_database
from benchmarks.tally import _analyze, _grow, _round_data

VOTERS = (1_000, 10_000)


def timed_peak(fn: Any) -> tuple[float, float]:
    """(seconds, peak MiB under tracemalloc) of one call — timed without tracing first."""
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, peak / 2**20


def main(argv: list[str] | None = None) -> None:
    """Time the workbook and the whole report for 1,000 (and 10,000) voters."""
    import logging

    logging.disable(logging.INFO)
    from evaluation.extensions import db
    from evaluation.models import RoundState
    from evaluation.reports.outputs import write_report
    from evaluation.reports.workbook import chart_images, write_workbook
    from evaluation.rounds.round_file import import_round
    from evaluation.tally.aggregate import seal_round, tally_round

    parser = argparse.ArgumentParser(prog="python -m benchmarks.workbook")
    parser.add_argument("voters", nargs="*", type=int, help=f"选票数（默认 {VOTERS}）")
    voters = tuple(parser.parse_args(argv or []).voters) or VOTERS
    print("工作簿基准：5 个测评对象、3 个类别（SQLite）")
    print(
        f"{'选票数':>7}  {'工作簿 s':>8}  {'峰值MiB':>7}  {'全部报表 s':>9}  {'峰值MiB':>7}  文件"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = fresh_database("sqlite", workdir)
        with app_context(url, workdir):
            rnd = import_round(_round_data(), actor="bench")
            rnd.state = RoundState.CLOSED
            rnd.seal = "0" * 64
            db.session.commit()
            rng = random.Random(7)
            done = 0
            for n in voters:
                _grow(rnd, n - done, rng)
                _analyze()
                done = n
                # Sealed as a close seals it: ``flask report`` reads the sealed result.
                seal_round(rnd)
                db.session.commit()
                result = tally_round(rnd)
                images = chart_images(result, rnd.seal)

                out = workdir / f"out-{n}"
                wb_s, wb_mib = timed_peak(
                    functools.partial(write_workbook, rnd, result, io.BytesIO(), images=images)
                )
                all_s, all_mib = timed_peak(functools.partial(write_report, rnd, out))
                files = len(list(out.iterdir()))
                size = (out / "测评结果.xlsx").stat().st_size / 1024
                print(
                    f"{n:>7,}  {wb_s:>8.2f}  {wb_mib:>7.1f}  {all_s:>9.2f}  {all_mib:>7.1f}  "
                    f"{files} 个（工作簿 {size:.0f} KiB）",
                    flush=True,
                )


if __name__ == "__main__":
    main(sys.argv[1:])
