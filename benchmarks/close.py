"""结束测评: closing a round of many ballots, and what a close does to another round's voters.

A round of ``ballots`` ballots (default 100,000; five subjects each, the sample round) is filled
as a hall would leave it — through the product's own sealing when the code has a sealed ballot
box (``evaluation.voting.box``), as clear rows otherwise, so the same file measures the code
before the box too (run it from a checkout of that commit) — and then closed with
``rounds.lifecycle.close_round``, the one close every path uses. While it closes, a thread
keeps casting ballots in a second open round, each with ``voting.views.cast_ballot`` in its
own transaction, and records how long each took: the longest is how long a close made another
round's voters wait.

    python -m benchmarks.close [--ballots N] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import inspect
import multiprocessing
import random
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import harness

CHUNK = 5000


def _has_box() -> bool:
    try:
        from evaluation.voting import box  # noqa: F401
    except ImportError:
        return False
    return True


def _answers(layout: list[Any], rng: random.Random) -> list[tuple[int, str, str | None]]:
    out = []
    for s in layout:
        for q in s.questions:
            value = rng.choice(q.choices).value
            out.append((s.subject_id, q.item, None if value == "abstain" else value))
    return out


def _fill(rnd: Any, ballots: int, rng: random.Random) -> None:
    """Codes for ``ballots`` voters, all of whom voted: sealed in the box, or in clear."""
    from sqlalchemy import insert

    from evaluation.extensions import db
    from evaluation.models import Answer, Ballot, Code, CodeBatch, CodeState, Receipt
    from evaluation.voting.ballot import ballot_layout, grade_choices

    layout = ballot_layout(rnd)
    strata = [s.id for s in rnd.strata]
    batches = {}
    for stratum_id in strata:
        batch = CodeBatch(round_id=rnd.id, stratum_id=stratum_id, count=0, issued_by="bench")
        db.session.add(batch)
        db.session.flush()
        batches[stratum_id] = batch.id
    sealed = _has_box()
    if sealed:
        from evaluation.voting import box

        public = bytes(rnd.box_public_key)
        size = box.plaintext_size(grade_choices(layout))
        table = box.box_table(rnd.id)
    state = CodeState.UNUSED if sealed else CodeState.USED
    for start in range(0, ballots, CHUNK):
        codes: list[dict[str, Any]] = []
        boxed: list[dict[str, Any]] = []
        clear: list[dict[str, Any]] = []
        answers: list[dict[str, Any]] = []
        receipts: list[dict[str, Any]] = []
        for _ in range(min(CHUNK, ballots - start)):
            stratum_id = rng.choice(strata)
            digest = secrets.token_hex(32)
            codes.append(
                {
                    "round_id": rnd.id,
                    "stratum_id": stratum_id,
                    "batch_id": batches[stratum_id],
                    "digest": digest,
                    "state": state,
                }
            )
            chosen = _answers(layout, rng)
            receipt = secrets.token_hex(32)
            if sealed:
                boxed.append(
                    {
                        "digest": digest,
                        "stratum_id": stratum_id,
                        "sealed": box.seal_ballot(public, rnd.id, stratum_id, chosen, size),
                        "receipt": receipt,
                    }
                )
            else:
                ballot_id = uuid.uuid4()
                clear.append({"id": ballot_id, "round_id": rnd.id, "stratum_id": stratum_id})
                answers.extend(
                    {
                        "ballot_id": ballot_id,
                        "subject_id": subject_id,
                        "item": item,
                        "stratum_id": stratum_id,
                        "grade": grade,
                    }
                    for subject_id, item, grade in chosen
                )
                receipts.append({"digest": receipt, "round_id": rnd.id})
        db.session.execute(insert(Code), codes)
        if sealed:
            db.session.execute(insert(table), boxed)
        else:
            db.session.execute(insert(Ballot), clear)
            db.session.execute(insert(Answer), answers)
            db.session.execute(insert(Receipt), receipts)
        db.session.commit()


def _open_round(title: str, ballots: int, rng: random.Random) -> Any:
    from evaluation.extensions import db
    from evaluation.rounds import lifecycle
    from evaluation.rounds.round_file import import_round, parse_round_text, sample_round_text

    data = parse_round_text(sample_round_text())
    data["title"] = title
    rnd = import_round(data, actor="bench")
    lifecycle.open_round(rnd, actor="bench")
    db.session.commit()
    if ballots:
        _fill(rnd, ballots, rng)
    return rnd


def _cast(held: Any, stratum_id: int, layout: list[Any], code: str) -> None:
    from evaluation.codes import codes
    from evaluation.voting.views import cast_ballot

    answers = _answers(layout, random.Random(code))
    cast: Any = cast_ballot
    if "layout" in inspect.signature(cast).parameters:
        cast(codes.code_digest(code), held, stratum_id, layout, answers)
    else:  # the code before the sealed box
        cast(codes.code_digest(code), held.id, stratum_id, answers)


def _other_round_voters(
    url: str, workdir: str, round_id: int, codes: list[str], ready: Any, stop: Any, out: Any
) -> None:
    """In a process of its own (no shared interpreter lock with the close): cast ballots one
    after another until told to stop; send back (start, seconds) of each and the errors."""
    from types import SimpleNamespace

    from evaluation.extensions import db
    from evaluation.models import Round
    from evaluation.voting.ballot import ballot_layout

    latencies: list[tuple[float, float]] = []
    errors: set[str] = set()
    try:
        with harness.app_context(url, Path(workdir)):
            rnd = db.session.get_one(Round, round_id)
            held = SimpleNamespace(id=rnd.id, created_at=rnd.created_at)
            stratum_id = rnd.strata[0].id
            layout = ballot_layout(rnd)
            db.session.remove()
            for code in codes:
                if stop.is_set():
                    break
                t0 = time.perf_counter()
                try:
                    _cast(held, stratum_id, layout, code)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    errors.add(type(exc).__name__)
                latencies.append((t0, time.perf_counter() - t0))
                db.session.remove()
                if len(latencies) == 20:
                    ready.set()
    except Exception as exc:  # noqa: BLE001 - the parent reports it instead of waiting forever
        errors.add(f"{type(exc).__name__}: {exc}")
    finally:
        ready.set()
        out.send((latencies, sorted(errors)))


def run_engine(engine: str, ballots: int) -> dict[str, Any]:
    """Fill a round with ``ballots`` ballots, close it while another round votes; figures."""
    from evaluation.codes import codes as code_ops
    from evaluation.extensions import db
    from evaluation.models import Round
    from evaluation.rounds import lifecycle
    from evaluation.transactions import write_transaction

    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = harness.fresh_database(engine, workdir)
        with harness.app_context(url, workdir):
            t0 = time.perf_counter()
            big = _open_round("结束测评基准：大会", ballots, rng)
            fill_s = time.perf_counter() - t0
            other = _open_round("结束测评基准：另一个进行中的活动", 0, rng)
            issued = code_ops.issue_batch(other, other.strata[0], 20000, actor="bench")
            db.session.commit()
            big_id, other_id = big.id, other.id
            db.session.remove()
            spawn = multiprocessing.get_context("spawn")
            stop, ready = spawn.Event(), spawn.Event()
            receive, send = spawn.Pipe(duplex=False)
            voters = spawn.Process(
                target=_other_round_voters,
                args=(url, str(workdir), other_id, list(issued.codes), ready, stop, send),
            )
            voters.start()
            ready.wait(timeout=300)  # the other round's voters are under way
            start = time.perf_counter()
            with write_transaction():
                lifecycle.close_round(db.session.get_one(Round, big_id), actor="bench")
            end = time.perf_counter()
            time.sleep(1.0)
            stop.set()
            # Never wait forever: a voter process that died sends nothing.
            if not receive.poll(timeout=600):
                voters.kill()
                raise RuntimeError(f"投票进程没有返回结果（退出码 {voters.exitcode}）")
            latencies, errors = receive.recv()
            voters.join(timeout=60)
            closed = db.session.get_one(Round, big_id)
            during = [s for t, s in latencies if t <= end and t + s >= start]
            before = sorted(s for t, s in latencies if t + s < start)
            return {
                "engine": engine,
                "ballots": ballots,
                "sealed_box": _has_box(),
                "fill_s": fill_s,
                "close_s": end - start,
                "counted": int((closed.sealed_result or {}).get("ballots", -1)),
                "other_votes_during": len(during),
                "other_max_wait_s": max(during, default=0.0),
                "other_median_before_s": before[len(before) // 2] if before else 0.0,
                "other_errors": errors,
            }


def main() -> None:
    """Print one line per engine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        if engine == "postgresql" and harness.bench_postgres_url() is None:
            print("postgresql: 跳过（未设置 BENCH_DATABASE_URL）")
            continue
        r = run_engine(engine, args.ballots)
        print(
            f"{engine}：{'密封投票箱' if r['sealed_box'] else '明文选票（改动前）'}，"
            f"{r['ballots']} 张选票（计入 {r['counted']}）；填充 {r['fill_s']:.1f} s；"
            f"结束测评 {r['close_s']:.2f} s；其间另一活动投票 {r['other_votes_during']} 张，"
            f"最长等待 {r['other_max_wait_s'] * 1000:.0f} ms（结束前中位数 "
            f"{r['other_median_before_s'] * 1000:.1f} ms）；错误 {r['other_errors'] or '无'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
