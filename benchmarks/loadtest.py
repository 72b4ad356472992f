"""Load test (`make loadtest`): a hall of 500 phones voting within the same two minutes.

For each engine (SQLite; PostgreSQL when BENCH_DATABASE_URL names a dedicated database) it
builds a fresh database, issues the codes with ``evaluation.codes.codes``, starts gunicorn with the
project's settings on a loopback port, and drives every voter through the real pages
(scan → ballot → submit, answered with the thanks page), ``--concurrency`` at a time. Then it
checks them. Then (``--hall``, default 30 s) as many voters again come in at a hall's own
pace: each arrives at a random moment within those seconds, scans, takes 1–4 s to fill in the
ballot and submits (500 in 30 s is four times the rate of 500 phones in two minutes). The
checks cover both parts:

* zero errors: every voter saw the thanks page with a receipt;
* ballots == used codes == receipts == thanks pages seen, and no receipt a voter saw is missing;
* every ballot has all its answers;
* no code appears in the server's access log;
* after close, the round is sealed and ``flask verify`` passes.

It prints throughput and p50/p95/p99 per step, and exits non-zero if any check fails. Bounded:
``--deadline`` seconds per engine (default 120), one request per step per voter, loopback only,
the server's process group killed in ``finally``.

    python -m benchmarks.loadtest [--voters 500] [--concurrency 64] [--hall 30]
                                  [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import harness

STEPS = ("scan", "ballot", "submit")


@dataclass
class EngineReport:
    """One engine's figures and the checks that failed (empty = passed)."""

    engine: str
    voters: int
    concurrency: int
    seconds: float
    thanked: int
    ledger: harness.Ledger | None
    latencies: dict[str, dict[str, float]]
    failures: list[str]
    verify: str
    hall_seconds: float = 0.0
    hall_voters: int = 0
    hall_latencies: dict[str, dict[str, float]] | None = None
    hall_thanked: int = 0

    @property
    def voters_per_second(self) -> float:
        """Completed voters (three requests each) per second of wall time."""
        return self.thanked / self.seconds if self.seconds else 0.0


def run_engine(
    engine: str, voters: int, concurrency: int, deadline: float, hall: float = 0.0
) -> EngineReport:
    """The whole load test on one engine: the burst, then (``hall`` > 0) the hall's pace."""
    workdir = Path(tempfile.mkdtemp(prefix=f"loadtest-{engine}-"))
    failures: list[str] = []
    try:
        url = harness.fresh_database(engine, workdir)
        hall_voters = voters if hall > 0 else 0
        round_id, plaintexts = harness.open_hall_round(url, workdir, voters + hall_voters)
        burst_codes, hall_codes = plaintexts[:voters], plaintexts[voters:]
        paced: harness.LoadResult | None = None
        server = harness.Server(url, workdir)
        try:
            server.start()
            result = harness.drive_voters(
                server.port, burst_codes, concurrency=concurrency, deadline_seconds=deadline
            )
            if hall_voters:
                paced = harness.drive_hall(
                    server.port, hall_codes, spread_seconds=hall, deadline_seconds=deadline + hall
                )
            log = server.log_text()
        finally:
            server.stop()
        receipts = [o.receipt for o in result.thanked if o.receipt]
        failures += _unfinished(result, "")
        if paced is not None:
            receipts += [o.receipt for o in paced.thanked if o.receipt]
            failures += _unfinished(paced, "大厅节奏：")
        book = harness.ledger(url, workdir, round_id, receipts)
        if not (book.ballots == book.used_codes == book.receipts == len(receipts)):
            failures.append(
                f"选票 {book.ballots}、已用测评码 {book.used_codes}、回执 {book.receipts}、"
                f"感谢页 {len(receipts)} 不相等"
            )
        if book.receipts_missing:
            failures.append(f"{book.receipts_missing} 张测评人看到的回执不在数据库中")
        if book.answers != book.ballots * book.questions_per_ballot:
            failures.append(
                f"答案 {book.answers} ≠ 选票 {book.ballots} × 每票 {book.questions_per_ballot} 题"
            )
        leaked = harness.codes_in_log(log, plaintexts)
        if leaked:
            failures.append(f"访问日志中出现了 {leaked} 个测评码")
        if "Traceback" in log:
            failures.append("服务器日志中有 Python 调用栈")
        verified, verify = harness.close_and_verify(url, workdir, round_id)
        if not verified:
            failures.append(f"结束后核验未通过：{verify}")
        return EngineReport(
            engine,
            voters,
            concurrency,
            result.seconds,
            len(result.thanked),
            book,
            _latencies(result),
            failures,
            verify,
            hall,
            hall_voters,
            _latencies(paced) if paced is not None else None,
            len(paced.thanked) if paced is not None else 0,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _unfinished(result: harness.LoadResult, part: str) -> list[str]:
    """A failure line if any voter of ``result`` did not see the thanks page."""
    if not result.errors:
        return []
    sample = "；".join(f"{o.code[:4]}…: {o.error}" for o in result.errors[:3])
    return [f"{part}{len(result.errors)} 位测评人未看到感谢页（{sample}）"]


def _latencies(result: harness.LoadResult) -> dict[str, dict[str, float]]:
    """p50/p95/p99/max of each step and of the whole vote."""
    latencies = {step: harness.latency_summary(result.step_latencies(step)) for step in STEPS}
    latencies["whole"] = harness.latency_summary(result.flow_latencies())
    return latencies


def print_report(report: EngineReport) -> None:
    """The figures of one engine, in Chinese."""
    print(f"\n== {report.engine}：{report.voters} 位测评人，并发 {report.concurrency} ==")
    print(
        f"用时 {report.seconds:.1f} 秒；完成 {report.thanked} 人；"
        f"吞吐 {report.voters_per_second:.1f} 人/秒（{report.voters_per_second * 3:.0f} 请求/秒）"
    )
    if report.ledger is not None:
        book = report.ledger
        print(
            f"选票 {book.ballots} = 已用测评码 {book.used_codes} = 回执 {book.receipts} = "
            f"感谢页 {report.thanked + report.hall_thanked}；未用 {book.unused_codes}；"
            f"答案 {book.answers}"
        )
    _print_latencies(report.latencies)
    if report.hall_latencies is not None:
        low, high = harness.HALL_THINK_SECONDS
        print(
            f"大厅节奏：另 {report.hall_voters} 人在 {report.hall_seconds:.0f} 秒内陆续扫码，"
            f"每人填写 {low:.0f}–{high:.0f} 秒后提交；完成 {report.hall_thanked} 人"
        )
        _print_latencies(report.hall_latencies)
    print(report.verify)
    if report.failures:
        for failure in report.failures:
            print(f"失败：{failure}")
    else:
        print("通过：零错误，选票数 = 已用测评码数 = 看到感谢页的人数")


def _print_latencies(latencies: dict[str, dict[str, float]]) -> None:
    print(f"{'步骤':<8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for step, figures in latencies.items():
        print(
            f"{step:<10}{figures['p50']:>10.1f}{figures['p95']:>10.1f}"
            f"{figures['p99']:>10.1f}{figures['max']:>10.1f}"
        )


def engines_from(arg: str | None) -> list[str]:
    """The engines to run: as asked, else SQLite plus PostgreSQL when BENCH_DATABASE_URL is set."""
    if arg:
        return [e.strip() for e in arg.split(",") if e.strip()]
    engines = ["sqlite"]
    if harness.bench_postgres_url():
        engines.append("postgresql")
    else:
        print("未设置 BENCH_DATABASE_URL：只测 SQLite（PostgreSQL 需要一个专用库，它会被清空）")
    return engines


def main(argv: list[str] | None = None) -> int:
    """Run the load test; exit status 1 if any check failed."""
    parser = argparse.ArgumentParser(description="500 位测评人同时投票的压力测试")
    parser.add_argument("--voters", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--deadline", type=float, default=120.0, help="每种数据库的时限（秒）")
    parser.add_argument(
        "--hall",
        type=float,
        default=30.0,
        help="再让同样多的测评人在这么多秒内陆续到场（大厅节奏）；0 = 不测",
    )
    parser.add_argument("--engines", default=None, help="sqlite,postgresql")
    args = parser.parse_args(argv)
    reports: list[Any] = []
    for engine in engines_from(args.engines):
        report = run_engine(engine, args.voters, args.concurrency, args.deadline, args.hall)
        print_report(report)
        reports.append(report)
    failed = [r for r in reports if r.failures]
    print("\n压力测试" + ("未通过" if failed else "通过"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
