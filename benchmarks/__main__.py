"""`make bench`: every benchmark, then one table with a SQLite and a PostgreSQL column.

Each figure stands beside a baseline measured in the same run, on the same machine, so the
ratio means something even on a shared machine whose absolute speed varies:

* ballot submission (``benchmarks.submission``) — the whole path a voter takes (scan → ballot
  → submit, answered with the thanks page; the real pages on gunicorn) against a route that
  only marks a code used and inserts one row (``benchmarks.minimal``) and an empty route,
  interleaved on the same server; 64 concurrent voters; with the CPU milliseconds each took
  (app server, database), which leave out queueing;
* closing a round of 100,000 sealed ballots (``benchmarks.close``), with another open round's
  voters casting ballots all along: how long the close takes and how long they waited;
* tally of 10⁴/10⁵/10⁶ answers (``benchmarks.tally``) against a bare ``count(*)`` of the rows;
* 5,000 codes with their PDF (``benchmarks.codes``) against drawing the bare QR codes;
* the workbook of a 100,000-ballot round against openpyxl writing as many plain cells, with
  peak memory at 10,000 and 100,000 ballots;
* a province's history (``benchmarks.history``, issue 18): 200 county units × 10 years built
  through the product's operations, every archive page and the dashboard timed on gunicorn at
  250 and at 2,000 rounds, beside the data's growth, with each page's SQL statement count.

PostgreSQL needs BENCH_DATABASE_URL (a database used only for benchmarks: it is wiped).

    python -m benchmarks [--quick] [--only submission,close,tally,codes,workbook,history]
                         [--markdown FILE]
"""

from __future__ import annotations

import argparse
import functools
import logging
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import harness

SECTIONS = ("submission", "close", "tally", "codes", "workbook", "history")


@dataclass
class Row:
    """One line of the table: what, the target, and a cell per engine."""

    label: str
    target: str
    cells: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, bool | None] = field(default_factory=dict)


@dataclass
class Sizes:
    """How big each benchmark is (``--quick`` shrinks them for a smoke run)."""

    voters: int = 400
    minimal_requests: int = 1600
    bare_requests: int = 4000
    concurrency: int = 64
    tally: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    codes: int = 5_000
    qr_sample: int = 1_000
    workbook: tuple[int, ...] = (10_000, 100_000)
    close: int = 100_000
    # Province histories, units × years, each containing the last (one database grows).
    history: tuple[str, ...] = ("25x10", "200x10")


QUICK = Sizes(
    voters=100,
    minimal_requests=400,
    bare_requests=800,
    concurrency=16,
    tally=(10_000, 100_000),
    codes=1_000,
    qr_sample=200,
    workbook=(1_000, 10_000),
    close=3_000,
    history=("10x2", "10x4"),
)


def _say(text: str) -> None:
    print(text, flush=True)


# --- submission ------------------------------------------------------------------------------


def submission_rows(engines: list[str], sizes: Sizes) -> list[Row]:
    """Whole voting path vs the minimal route (``benchmarks.submission``), and its latency."""
    from benchmarks import submission

    # The old "vote ÷ minimal route ≥ 0.6×" target is withdrawn (a vote is three requests); the
    # target is the CPU a vote costs against the minimal route plus two empty requests.
    throughput = Row("投票吞吐：整条路径（扫码→选票→提交，应答即感谢页）÷ 最简路由", "—")
    requests = Row("　同上，按 HTTP 请求计（每张选票 3 个请求）÷ 最简路由", "—")
    ceiling = Row("　估计上限：扫码、选票页与空路由一样快，提交与最简路由一样快", "—")
    bare = Row("　参考：空路由 GET /healthz（同一服务器、同一轮）", "—")
    cpu = Row(
        "CPU 毫秒（应用服务器 + 数据库）：投票 ÷ (最简路由 + 2 × 空路由)",
        "≤ 1.5×",
    )
    submit = Row(f"提交 POST /ballot 延迟（{sizes.concurrency} 人同时）", "p99 < 150 ms")
    whole = Row(f"一次完整投票（3 个请求）延迟（{sizes.concurrency} 人同时）", "—")
    checks = Row("错误 / 选票数 = 已用测评码数 / 访问日志中的测评码", "0 / 是 / 0")
    for engine in engines:
        _say(f"[投票] {engine}：{sizes.voters} 位测评人 + {sizes.minimal_requests} 次最简路由 …")
        r = submission.run_engine(
            engine,
            voters=sizes.voters,
            bare_requests=sizes.bare_requests,
            minimal_requests=sizes.minimal_requests,
            concurrency=sizes.concurrency,
            passes=2,
            deadline_seconds=300.0,
        )
        base = r["minimal_rps"]
        throughput.cells[engine] = (
            f"{r['ballots_ps']:.0f} 张/秒 ÷ 基线 {base:.0f} 张/秒 = **{r['ratio_minimal']:.2f}×**"
        )
        requests.cells[engine] = (
            f"{r['requests_ps']:.0f} 请求/秒 ÷ {base:.0f} = {r['requests_ps'] / base:.2f}×"
            if base
            else "—"
        )
        ceiling.cells[engine] = (
            f"1 ÷ (1/{base:.0f} + 2/{r['bare_rps']:.0f}) = {r['ceiling_ps']:.0f} 张/秒 = "
            f"{r['ratio_ceiling']:.2f}×；实测为估计上限的 "
            f"{r['share_of_ceiling']:.0%}"
        )
        bare.cells[engine] = (
            f"{r['bare_rps']:.0f} 请求/秒（p99 {r['bare']['p99']:.0f} ms）；"
            f"投票请求 ÷ 空路由 = {r['ratio_requests_bare']:.2f}×"
        )
        if r["cpu_ms"]:
            ms = submission.app_and_db_ms(r["cpu_ms"])
            budget = ms["minimal"] + 2 * ms["bare"]
            ratio = ms["vote"] / budget if budget else 0.0
            cpu.cells[engine] = (
                f"{ms['vote']:.1f} ÷ ({ms['minimal']:.1f} + 2 × {ms['bare']:.2f}) = "
                f"**{ratio:.2f}×**；投票 ÷ 最简路由 "
                f"{submission.cpu_ratio(r['cpu_ms'], 'minimal'):.1f}×"
            )
            cpu.verdicts[engine] = ratio <= 1.5
        else:
            cpu.cells[engine] = "—（无 /proc）"
        submit.cells[engine] = (
            f"p50 {r['submit']['p50']:.0f} / p95 {r['submit']['p95']:.0f} / "
            f"**p99 {r['submit']['p99']:.0f} ms**（空路由 p99 {r['bare']['p99']:.0f} ms）"
        )
        submit.verdicts[engine] = r["submit"]["p99"] < 150
        whole.cells[engine] = f"p50 {r['whole']['p50']:.0f} / p99 {r['whole']['p99']:.0f} ms"
        errors = r["voter_errors"] + r["minimal_errors"] + r["bare_errors"]
        consistent = r["ballots_equal_used"] and r["receipts_missing"] == 0
        checks.cells[engine] = f"{errors} / {'是' if consistent else '否'} / {r['codes_in_log']}"
        checks.verdicts[engine] = errors == 0 and consistent and r["codes_in_log"] == 0
        _say(f"    {throughput.cells[engine]}；{submit.cells[engine]}")
    return [throughput, requests, ceiling, bare, cpu, submit, whole, checks]


# --- tally -----------------------------------------------------------------------------------


def tally_rows(engines: list[str], sizes: Sizes) -> list[Row]:
    """Tally time and peak memory per size, beside a bare count(*) of the same rows."""
    from benchmarks import tally

    rows = {n: Row(f"计票 {n:,} 条答案", "< 2 s（10⁶）") for n in sizes.tally}
    memory = Row("计票峰值内存（Python，tracemalloc）随选票数", "不随选票增长")
    for engine in engines:
        _say(f"[计票] {engine}：{', '.join(f'{n:,}' for n in sizes.tally)} 条答案 …")
        measured = tally.run_engine(engine, sizes.tally)
        peaks = []
        for target, r in zip(sizes.tally, measured, strict=True):
            rows[target].cells[engine] = (
                f"**{r['tally_s']:.3f} s**（基线 count(*) {r['baseline_s']:.3f} s；"
                f"{r['ballots']:,} 张选票；封存 {r['seal_s']:.1f} s）"
            )
            rows[target].verdicts[engine] = r["tally_s"] < 2.0 if target >= 1_000_000 else None
            peaks.append(f"{r['tally_peak_kib']:.0f}")
        memory.cells[engine] = " → ".join(peaks) + " KiB"
        grow = measured[-1]["tally_peak_kib"] / max(1.0, measured[0]["tally_peak_kib"])
        memory.verdicts[engine] = grow < 2.0
    return [*rows.values(), memory]


# --- codes -----------------------------------------------------------------------------------


def codes_rows(engines: list[str], sizes: Sizes) -> list[Row]:
    """Issuing codes with their PDF vs drawing the bare QR codes."""
    from benchmarks import codes

    row = Row(f"发放 {sizes.codes:,} 个测评码并生成 PDF ÷ 只画二维码", "≤ 1.5×")
    for engine in engines:
        _say(f"[测评码] {engine}：{sizes.codes:,} 个 …")
        r = codes.run_engine(engine, sizes.codes, baseline_sample=sizes.qr_sample)
        row.cells[engine] = (
            f"{r['total_s']:.2f} s（发放 {r['issue_s']:.2f} + PDF {r['pdf_s']:.2f}）÷ "
            f"基线 {r['baseline_s']:.1f} s = **{r['ratio']:.2f}×**"
        )
        row.verdicts[engine] = r["ratio"] <= 1.5
    return [row]


# --- workbook --------------------------------------------------------------------------------


def _bare_workbook(rows: int, columns: int) -> None:
    """The baseline: openpyxl (write_only) writing the cells of 原始选票 as plain values.

    ``rows`` ballots of ``columns`` answers each: one line of four cells per answer (测评对象,
    测评内容, 测评人员类别, 等次), as the round's 原始选票 sheet lists them.
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    sheet = wb.create_sheet("原始选票")
    sheet.append(["测评对象", "测评内容", "测评人员类别", "等次"])
    line = ["优秀", "称职", "合格", "弃权", "好"]
    for c in range(columns):
        for number in range(rows):
            sheet.append([f"第{c}列", "总体", "中层干部", line[(number + c) % 5]])
    with tempfile.TemporaryFile() as out:
        wb.save(out)


def _workbook_to_file(write: Callable[..., Any], rnd: Any, result: Any, images: Any) -> None:
    # To a file, as `flask report` does: an in-memory buffer would count the output itself
    # (megabytes) as working memory.
    with tempfile.TemporaryFile() as out:
        write(rnd, result, out, images=images)


def workbook_rows(engines: list[str], sizes: Sizes) -> list[Row]:
    """The round's workbook at each size: time and peak memory, beside bare openpyxl."""
    from benchmarks.tally import _analyze, _grow, _round_data
    from benchmarks.workbook import timed_peak
    from evaluation.extensions import db
    from evaluation.models import RoundState
    from evaluation.reports.workbook import chart_images, write_workbook
    from evaluation.rounds.round_file import import_round
    from evaluation.tally.aggregate import tally_round
    from evaluation.voting.ballot import ballot_layout

    biggest = max(sizes.workbook)
    time_row = Row(f"工作簿：{biggest:,} 张选票的活动（含原始选票）", "—")
    memory = Row("工作簿峰值内存（Python）随选票数", "不随选票增长")
    for engine in engines:
        _say(f"[工作簿] {engine}：{', '.join(f'{n:,}' for n in sizes.workbook)} 张选票 …")
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-workbook-{engine}-"))
        try:
            url = harness.fresh_database(engine, workdir)
            with harness.app_context(url, workdir):
                rnd = import_round(_round_data(), actor="bench")
                rnd.state = RoundState.CLOSED
                rnd.seal = "0" * 64
                db.session.commit()
                columns = sum(len(s.questions) for s in ballot_layout(rnd))
                rng = random.Random(7)
                done = 0
                peaks: list[float] = []
                seconds = baseline = 0.0
                for n in sizes.workbook:
                    _grow(rnd, n - done, rng)
                    _analyze()
                    done = n
                    result = tally_round(rnd)
                    images = chart_images(result, rnd.seal)
                    seconds, peak = timed_peak(
                        functools.partial(_workbook_to_file, write_workbook, rnd, result, images)
                    )
                    peaks.append(peak)
                    started = time.perf_counter()
                    _bare_workbook(n, columns)
                    baseline = time.perf_counter() - started
                    _say(
                        f"    {n:,} 张：{seconds:.2f} s，峰值 {peak:.1f} MiB；基线 {baseline:.2f} s"
                    )
            time_row.cells[engine] = (
                f"**{seconds:.1f} s**（基线 openpyxl 只写同样多的单元格 {baseline:.1f} s，"
                f"{seconds / baseline:.2f}×）"
            )
            memory.cells[engine] = " → ".join(f"{p:.1f}" for p in peaks) + " MiB"
            memory.verdicts[engine] = peaks[-1] < 2 * max(peaks[0], 1.0)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return [time_row, memory]


# --- the table -------------------------------------------------------------------------------


def machine() -> list[str]:
    """What the figures were measured on."""
    import sqlite3

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def run(*command: str) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10)
            return done.stdout.strip()
        except OSError:
            return "?"

    memory = run("free", "-h").splitlines()
    pg = "—"
    url = harness.bench_postgres_url()
    if url:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            pg = str(conn.execute(text("SHOW server_version")).scalar())
        engine.dispose()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return [
        f"- 日期：{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU：{cpu}；`nproc` = {run('nproc')}；开始时负载 {' '.join(load)}",
        f"- 内存（`free -h`）：{memory[1] if len(memory) > 1 else '?'}",
        f"- Python {platform.python_version()}；SQLite {sqlite3.sqlite_version}；PostgreSQL {pg}",
    ]


def render(rows: list[Row], engines: list[str]) -> str:
    """The table in Markdown (it goes into docs/performance.md as is)."""
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    lines = [
        "| 基准 | 目标 | " + " | ".join(names.get(e, e) for e in engines) + " |",
        "| --- | --- | " + " | ".join("---" for _ in engines) + " |",
    ]
    marks = {True: " ✓", False: " ✗", None: ""}
    for row in rows:
        cells = [row.cells.get(e, "—") + marks[row.verdicts.get(e)] for e in engines]
        lines.append(f"| {row.label} | {row.target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def close_rows(engines: list[str], sizes: Sizes) -> list[Row]:
    """Closing a round of many sealed ballots, and the other open round's voters meanwhile."""
    from benchmarks import close

    took = Row(f"结束测评：{sizes.close:,} 张选票（开箱、打乱写入、重写测评码、封存）", "—")
    other = Row("　其间另一进行中活动的投票：最长等待（结束前中位数）", "≤ 1 s（PostgreSQL）")
    for engine in engines:
        _say(f"[结束测评] {engine}：{sizes.close:,} 张选票，另一活动同时投票 …")
        r = close.run_engine(engine, sizes.close)
        took.cells[engine] = (
            f"**{r['close_s']:.1f} s**（计入 {r['counted']:,} 张；填充 {r['fill_s']:.0f} s）"
        )
        took.verdicts[engine] = r["counted"] == sizes.close
        wait = r["other_max_wait_s"]
        other.cells[engine] = (
            f"**{wait * 1000:.0f} ms**（{r['other_median_before_s'] * 1000:.1f} ms），"
            f"其间 {r['other_votes_during']} 张"
            + (f"；错误 {', '.join(r['other_errors'])}" if r["other_errors"] else "")
            + ("（SQLite 只有一个写者：等结束提交）" if engine == "sqlite" else "")
        )
        if engine == "postgresql":
            other.verdicts[engine] = wait <= 1.0 and not r["other_errors"]
    return [took, other]


# --- a province's history (issue 18) ----------------------------------------------------------


def history_rows(engines: list[str], sizes: Sizes) -> list[Row]:
    """Each page at the first and the last history size: time, growth beside the data's, and
    SQL statements; ``flask archive export``; worker memory; the cost of a close."""
    from benchmarks import history

    shapes = [history.Shape.parse(s) for s in sizes.history]
    span = f"{shapes[0].rounds:,} → {shapes[-1].rounds:,} 轮"
    rows: dict[str, Row] = {}
    export = Row(f"`flask archive export`（{span}）：时间，峰值内存", "< 5 s，内存不随记录增长")
    memory = Row("gunicorn 每个工作进程内存（服务各页之后）", "有界")
    closes = Row("结束测评一轮：最早 10 % → 最近 10 % 的中位数", "不随历史增长")
    for engine in engines:
        _say(f"[历史] {engine}：{', '.join(s.label for s in shapes)} …")
        measured = history.run_engine(engine, shapes, say=_say)
        _say("\n" + history.table(engine, measured) + "\n\n" + history.repeats_text(measured))
        first, last = measured[0], measured[-1]
        data = last.entries / max(1, first.entries)
        for label in first.times:
            row = rows.setdefault(label, Row(f"`{label}`（{span}）", "< 300 ms，语句数不增长"))
            a, b = first.times[label], last.times[label]
            row.cells[engine] = (
                f"{a.median * 1000:.0f} → **{b.median * 1000:.0f} ms**"
                f"（{b.median / max(a.median, 1e-6):.1f}×，数据 {data:.1f}×）；"
                f"语句 {first.statements[label]} → {last.statements[label]}"
                + ("" if b.status == 200 else f"；HTTP {b.status or '连接断开'}")
            )
            row.verdicts[engine] = (
                b.status == 200
                and b.median < 0.3
                and last.statements[label] <= first.statements[label]
            )
        export.cells[engine] = (
            f"{first.export_s:.1f} → **{last.export_s:.1f} s**；"
            f"{first.export_rss_mib:.0f} → {last.export_rss_mib:.0f} MiB"
        )
        export.verdicts[engine] = (
            last.export_s < 5.0 and last.export_rss_mib < 1.2 * first.export_rss_mib
        )
        memory.cells[engine] = (
            " → ".join("/".join(f"{r:.0f}" for r in m.worker_rss_mib) for m in measured) + " MiB"
        )
        closes.cells[engine] = f"{last.closes_ms[0]:.0f} → {last.closes_ms[1]:.0f} ms"
        closes.verdicts[engine] = last.closes_ms[1] <= 1.5 * last.closes_ms[0]
    return [*rows.values(), export, memory, closes]


BUILDERS: dict[str, Callable[[list[str], Sizes], list[Row]]] = {
    "submission": submission_rows,
    "close": close_rows,
    "tally": tally_rows,
    "codes": codes_rows,
    "workbook": workbook_rows,
    "history": history_rows,
}


def main(argv: list[str]) -> int:
    """Run the benchmarks asked for (all by default) and print the one table."""
    parser = argparse.ArgumentParser(description="性能基准：一张表，SQLite 与 PostgreSQL 两列")
    parser.add_argument("--quick", action="store_true", help="小规模试跑（数字不作结论）")
    parser.add_argument("--only", default=",".join(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument("--engines", default=None, help="sqlite,postgresql")
    parser.add_argument("--markdown", type=Path, default=None, help="另把表格写入此文件")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    sizes = QUICK if args.quick else Sizes()
    if args.engines:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    else:
        engines = ["sqlite"] + (["postgresql"] if harness.bench_postgres_url() else [])
    if "postgresql" not in engines:
        _say("未设置 BENCH_DATABASE_URL：PostgreSQL 列不运行（需要一个专用的库，它会被清空）")
    header = machine()
    harness.compile_sources()
    started = time.perf_counter()
    rows: list[Row] = []
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        if name not in BUILDERS:
            parser.error(f"没有名为 {name} 的基准（可选：{', '.join(SECTIONS)}）")
        rows += BUILDERS[name](engines, sizes)
    table = render(rows, engines)
    minutes = (time.perf_counter() - started) / 60
    text = "\n".join(
        [*header, f"- 用时 {minutes:.1f} 分钟" + ("（--quick）" if args.quick else ""), "", table]
    )
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
