"""Submission benchmark: concurrent voters against gunicorn, beside a bare route in the same run.

For each engine (SQLite; PostgreSQL when BENCH_DATABASE_URL names a dedicated database) it
builds a fresh database with a round and enough codes, starts gunicorn with the project's
``gunicorn.conf.py`` on a loopback port (the benchmark app: the real application plus the
minimal-vote route of ``benchmarks.minimal``), warms it up, and then alternates, ``--passes``
times, three loads at the same concurrency so a neighbour's load falls on all of them:

* the bare route ``GET /healthz`` (what the server does with no work at all: the baseline);
* the minimal vote ``POST /bench/minimal`` (mark a code used + insert one ballot row);
* voters through the real pages: ``GET /v/<code>`` → ``GET /ballot`` → ``POST /ballot`` (CSRF
  token from the page), answered with the thanks page and its receipt.

It prints ballots per second, p50/p99 of ``POST /ballot`` and of a whole vote, requests per
second of the bare route, the ratios, and the CPU milliseconds per request or ballot that each
load took in the app server's workers, the database server and this load client (from /proc).
Bounded: ``--deadline`` seconds per engine, loopback only, the server's process group killed in
``finally``.

    python -m benchmarks.submission [--voters 400] [--concurrency 32] [--passes 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.minimal import measure_minimal


def measure_bare(
    port: int, requests: int, *, concurrency: int, deadline_seconds: float
) -> tuple[list[float], int, float]:
    """``GET /healthz`` ``requests`` times; (latencies, errors, wall seconds)."""
    stop_at = time.monotonic() + deadline_seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(_index: int) -> None:
        nonlocal errors
        if time.monotonic() > stop_at:
            with lock:
                errors += 1
            return
        try:
            reply = harness.request("GET", harness.LOOPBACK, port, "/healthz")
            ok = reply.status == 200 and reply.body == "ok"
        except OSError:
            ok = False
            reply = None
        with lock:
            if ok and reply is not None:
                latencies.append(reply.seconds)
            else:
                errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    return latencies, errors, time.perf_counter() - started


def _metered(
    server: harness.Server,
    used: dict[str, harness.CpuUse],
    kind: str,
    load: Any,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Run ``load(*args, **kwargs)``; add the CPU it took (server, database, client) to ``used``."""
    before = harness.cpu_use(server)
    result = load(*args, **kwargs)
    after = harness.cpu_use(server)
    if before is not None and after is not None:
        spent = after - before
        used[kind] = used[kind] + spent if kind in used else spent
    return result


def run_engine(
    engine: str,
    *,
    voters: int,
    bare_requests: int,
    minimal_requests: int,
    concurrency: int,
    passes: int,
    deadline_seconds: float,
) -> dict[str, Any]:
    """All three loads on one gunicorn and one database; figures as a dict."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-submission-{engine}-"))
    warm = 2 * concurrency
    try:
        url = harness.fresh_database(engine, workdir)
        round_id, plain = harness.open_hall_round(url, workdir, voters + minimal_requests + warm)
        voter_codes = plain[:voters]
        minimal_codes = plain[voters : voters + minimal_requests]
        warm_codes = plain[voters + minimal_requests :]
        bare_lat: list[float] = []
        bare_err = 0
        bare_s = 0.0
        minimal_lat: list[float] = []
        minimal_s = 0.0
        minimal_err = 0
        flows: list[harness.LoadResult] = []
        cpu: dict[str, harness.CpuUse] = {}
        server = harness.Server(url, workdir, app="benchmarks.bench_wsgi:app")
        try:
            server.start()
            stop_at = time.monotonic() + deadline_seconds
            # Warm-up, not measured: every worker compiles its templates and opens connections.
            harness.drive_voters(
                server.port, warm_codes, concurrency=concurrency, deadline_seconds=60
            )
            measure_bare(server.port, warm, concurrency=concurrency, deadline_seconds=30)
            for step in range(passes):
                left = max(1.0, stop_at - time.monotonic())
                lat, err, secs = _metered(
                    server,
                    cpu,
                    "bare",
                    measure_bare,
                    server.port,
                    bare_requests // passes,
                    concurrency=concurrency,
                    deadline_seconds=left,
                )
                bare_lat += lat
                bare_err += err
                bare_s += secs
                left = max(1.0, stop_at - time.monotonic())
                m_lat, m_err, m_secs = _metered(
                    server,
                    cpu,
                    "minimal",
                    measure_minimal,
                    server.port,
                    minimal_codes[step::passes],
                    concurrency=concurrency,
                    deadline_seconds=left,
                )
                minimal_lat += m_lat
                minimal_err += len(m_err)
                minimal_s += m_secs
                left = max(1.0, stop_at - time.monotonic())
                flows.append(
                    _metered(
                        server,
                        cpu,
                        "vote",
                        harness.drive_voters,
                        server.port,
                        voter_codes[step::passes],
                        concurrency=concurrency,
                        deadline_seconds=left,
                    )
                )
            log = server.log_text()
        finally:
            server.stop()
        thanked = [o for f in flows for o in f.thanked]
        ledger = harness.ledger(url, workdir, round_id, [o.receipt for o in thanked if o.receipt])
        flow_s = sum(f.seconds for f in flows)
        submit = [s for f in flows for s in f.step_latencies("submit")]
        whole = [s for f in flows for s in f.flow_latencies()]
        ballots_ps = len(thanked) / flow_s if flow_s else 0.0
        bare_rps = len(bare_lat) / bare_s if bare_s else 0.0
        minimal_rps = len(minimal_lat) / minimal_s if minimal_s else 0.0
        # The most a 3-request vote could do on this server in this run: scan and ballot page as
        # cheap as the empty route, the submit as cheap as the minimal route.
        ceiling_ps = 1.0 / (1.0 / minimal_rps + 2.0 / bare_rps) if minimal_rps and bare_rps else 0.0
        leaked = sum(code in log for code in voter_codes)
        # CPU milliseconds per empty request, per minimal vote and per whole vote (None where
        # /proc is missing): where the machine's cores went, whatever the throughput.
        units = {"bare": len(bare_lat), "minimal": len(minimal_lat), "vote": len(thanked)}
        cpu_ms = {kind: cpu[kind].per(units[kind]) for kind in units if kind in cpu} or None
        return {
            "engine": engine,
            "concurrency": concurrency,
            "voters": len(voter_codes),
            "ballots": len(thanked),
            "voter_errors": sum(len(f.errors) for f in flows),
            "ballots_ps": ballots_ps,
            "requests_ps": 3 * ballots_ps,
            "submit": harness.latency_summary(submit),
            "whole": harness.latency_summary(whole),
            "bare_rps": bare_rps,
            "bare": harness.latency_summary(bare_lat),
            "bare_errors": bare_err,
            "minimal_rps": minimal_rps,
            "minimal_errors": minimal_err,
            "ratio_bare": ballots_ps / bare_rps if bare_rps else 0.0,
            "ratio_requests_bare": 3 * ballots_ps / bare_rps if bare_rps else 0.0,
            "ratio_minimal": ballots_ps / minimal_rps if minimal_rps else 0.0,
            "ceiling_ps": ceiling_ps,
            "ratio_ceiling": ceiling_ps / minimal_rps if minimal_rps else 0.0,
            "share_of_ceiling": ballots_ps / ceiling_ps if ceiling_ps else 0.0,
            "cpu_ms": cpu_ms,
            "ballots_equal_used": ledger.ballots == ledger.used_codes,
            "receipts_missing": ledger.receipts_missing,
            "codes_in_log": leaked,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


CPU_UNITS = (("bare", "空路由/请求"), ("minimal", "最小投票/张"), ("vote", "投票/张"))


def app_and_db_ms(cpu: dict[str, dict[str, float]]) -> dict[str, float]:
    """App-server + database CPU milliseconds of each unit (``bare``, ``minimal``, ``vote``)."""
    return {kind: parts["server"] + parts["database"] for kind, parts in cpu.items()}


def cpu_ratio(cpu: dict[str, dict[str, float]], baseline: str) -> float:
    """A vote's app-server + database CPU over ``baseline``'s (``minimal`` or ``bare``)."""
    ms = app_and_db_ms(cpu)
    return ms["vote"] / ms[baseline] if ms[baseline] else 0.0


def report(r: dict[str, Any]) -> None:
    """Print one engine's figures."""
    print(
        f"[{r['engine']}] 并发 {r['concurrency']}，测评人 {r['voters']}，"
        f"成功投票 {r['ballots']}，失败 {r['voter_errors']}"
    )
    print(
        f"  投票：{r['ballots_ps']:.1f} 张/秒（每张 3 个请求：{r['requests_ps']:.0f} 请求/秒）；"
        f"POST /ballot p50 {r['submit']['p50']:.0f} ms、p99 {r['submit']['p99']:.0f} ms；"
        f"整次投票 p50 {r['whole']['p50']:.0f} ms、p99 {r['whole']['p99']:.0f} ms"
    )
    print(
        f"  基线（同一服务器、同一轮）：GET /healthz {r['bare_rps']:.0f} 请求/秒"
        f"（p50 {r['bare']['p50']:.0f} ms、p99 {r['bare']['p99']:.0f} ms，"
        f"失败 {r['bare_errors']}）；"
        f"最小投票路由 {r['minimal_rps']:.0f} 张/秒（失败 {r['minimal_errors']}）"
    )
    print(
        f"  比值：投票张数/裸路由请求 = {r['ratio_bare']:.3f}；"
        f"投票请求/裸路由请求 = {r['ratio_requests_bare']:.2f}；"
        f"投票张数/最小投票路由 = {r['ratio_minimal']:.2f}"
    )
    print(
        "  估计上限（扫码、选票页与空路由一样快，提交与最小投票路由一样快）："
        f"{r['ceiling_ps']:.1f} 张/秒 = 最小投票路由的 {r['ratio_ceiling']:.2f}×；"
        f"实测达到估计上限的 {r['share_of_ceiling']:.0%}"
    )
    cpu = r.get("cpu_ms")
    if cpu:
        parts = "；".join(
            f"{label} {cpu[kind]['server']:.2f} + {cpu[kind]['database']:.2f} + "
            f"{cpu[kind]['client']:.2f}"
            for kind, label in (
                ("bare", "空路由/请求"),
                ("minimal", "最小投票/张"),
                ("vote", "投票/张"),
            )
        )
        print(f"  CPU 毫秒（应用服务器 + 数据库 + 压测客户端）：{parts}")
        print(
            "  投票的 CPU（应用服务器 + 数据库）"
            f"= 最小投票路由的 {cpu_ratio(cpu, 'minimal'):.1f} 倍"
            f" = 空路由请求的 {cpu_ratio(cpu, 'bare'):.1f} 倍"
        )
    print(
        f"  核对：选票数 = 已用测评码数：{'是' if r['ballots_equal_used'] else '否'}；"
        f"回执缺失 {r['receipts_missing']}；访问日志中出现的测评码 {r['codes_in_log']}"
    )


def main(argv: list[str] | None = None) -> None:
    """Run on SQLite, and on PostgreSQL when BENCH_DATABASE_URL names a bench database."""
    import logging

    parser = argparse.ArgumentParser(prog="python -m benchmarks.submission")
    parser.add_argument("--voters", type=int, default=400)
    parser.add_argument("--bare", type=int, default=4000, help="GET /healthz 请求数")
    parser.add_argument("--minimal", type=int, default=1200, help="最小投票路由请求数")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=240.0)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args(argv if argv is not None else [])
    logging.getLogger("alembic").setLevel(logging.WARNING)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "postgresql" in engines and harness.bench_postgres_url() is None:
        print("（未设置 BENCH_DATABASE_URL：跳过 PostgreSQL）")
        engines.remove("postgresql")
    for engine in engines:
        report(
            run_engine(
                engine,
                voters=args.voters,
                bare_requests=args.bare,
                minimal_requests=args.minimal,
                concurrency=args.concurrency,
                passes=args.passes,
                deadline_seconds=args.deadline,
            )
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
