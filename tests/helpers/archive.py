"""The three-year 廉政档案 history that ``tests/archive/test_archive.py`` describes, built
through the real operations (import, issue, cast, close, archive) by ``build_history``.
"""

from __future__ import annotations

import secrets
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask

from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import (
    Answer,
    Ballot,
    Code,
    CodeBatch,
    CodeState,
    Person,
    Round,
)
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import import_round
from evaluation.transactions import write_transaction
from evaluation.voting.anonymity import scrub_dead_rows

LANZHOU = "甘肃省局/兰州市局"
TIANSHUI = "甘肃省局/天水市局"

# Vote lists by grade key; None = 弃权. All subjects of a round get the same number of ballots.
G, F, P = "good", "fair", "poor"  # integrity: 好 / 中 / 差
EX, QU, UN = "excellent", "qualified", "unqualified"  # team
CO, BA, IN = "competent", "basic", "incompetent"  # principal / member

# Vote lists by grade key; None = 弃权. All subjects of a round get the same number of ballots.
G, F, P = "good", "fair", "poor"  # integrity: 好 / 中 / 差
EX, QU, UN = "excellent", "qualified", "unqualified"  # team
CO, BA, IN = "competent", "basic", "incompetent"  # principal / member

LOW_INTEGRITY = [G, F, F, F, None, None]  # 满意率 1/4, 信任率 1, grade 中
THIRD_INTEGRITY = [G, F, F, None, None, None]  # exactly 1/3
FINE_INTEGRITY = [G, G, G, F, None, None]  # 3/4
FAILING_TEAM = [EX, QU, UN, None, None, None]  # 不合格 exactly 1/3 → 不合格
PASSING_TEAM = [EX, EX, QU, QU, QU, None]


def subject(name: str, form: str, staff_no: str | None = None, post: str = "") -> dict[str, Any]:
    """A [[subjects]] table."""
    data: dict[str, Any] = {"name": name, "form": form}
    if staff_no:
        data["staff_no"] = staff_no
    if post:
        data["post"] = post
    return data


def run_round(
    *,
    title: str,
    unit: str,
    year: int,
    votes: dict[str, list[str | None]],
    subjects: list[dict[str, Any]],
    issued: int | None = None,
    closed_at: datetime,
    strata: list[tuple[str, str | None, int]] | None = None,
) -> Round:
    """Import, issue codes, vote, close (seal) and archive a round; return it.

    ``strata`` lists (name, weight, ballots); the votes are taken in that order. Without it,
    one stratum casts every ballot, with ``issued`` codes (default: one per ballot).
    """
    ballots = len(next(iter(votes.values())))
    strata = strata or [("全体干部", None, ballots)]
    data = {
        "title": title,
        "unit": unit,
        "year": year,
        "min_turnout": "2/3",
        "strata": [
            {"name": name, "codes": n, **({"weight": w} if w else {})} for name, w, n in strata
        ],
        "subjects": subjects,
        "forms": {"gansu-integrity": {"items": ["严格执行中央八项规定精神"]}},
    }
    rnd = import_round(data, actor="test")
    voters = []  # the stratum of each ballot, in the order of the vote lists
    for stratum, (_, _, cast) in zip(rnd.strata, strata, strict=True):
        codes = issued if issued is not None and len(strata) == 1 else cast
        batch = CodeBatch(round_id=rnd.id, stratum_id=stratum.id, count=codes)
        db.session.add(batch)
        db.session.flush()
        for i in range(codes):
            db.session.add(
                Code(
                    round_id=rnd.id,
                    stratum_id=stratum.id,
                    batch_id=batch.id,
                    digest=secrets.token_hex(32),
                    state=CodeState.USED if i < cast else CodeState.UNUSED,
                )
            )
        voters += [stratum.id] * cast
    assert len(voters) == ballots
    lifecycle.open_round(rnd, actor="test")
    by_name = {s.name: s for s in rnd.subjects}
    for i, stratum_id in enumerate(voters):
        ballot = Ballot(id=uuid.uuid4(), round_id=rnd.id, stratum_id=stratum_id)
        db.session.add(ballot)
        for name, grades in votes.items():
            db.session.add(
                Answer(
                    ballot_id=ballot.id,
                    subject_id=by_name[name].id,
                    item="",
                    stratum_id=stratum_id,
                    grade=grades[i],
                )
            )
    db.session.flush()
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    rnd.closed_at = closed_at
    db.session.commit()
    scrub_dead_rows()
    assert rnd.seal and rnd.sealed_result, "closing must seal the round"
    lifecycle.archive_round(rnd, actor="test")
    db.session.commit()
    return rnd


def build_history() -> dict[str, Any]:
    """The three years of the module docstring."""
    ensure_unit(TIANSHUI)
    r1 = run_round(
        title="2024年度党风廉政建设责任制民主测评",
        unit=LANZHOU,
        year=2024,
        closed_at=datetime(2024, 12, 20, tzinfo=UTC),
        subjects=[
            subject("市局领导班子", "gansu-team"),
            subject("张三", "gansu-principal", "A001", "局长"),
            subject("张三（廉洁自律）", "gansu-integrity", "A001"),
            subject("李四", "gansu-member", "A002", "副局长"),
            subject("李四（廉洁自律）", "gansu-integrity", "A002"),
            subject("王五", "gansu-member", "A003", "副局长"),
            subject("王五（廉洁自律）", "gansu-integrity", "A003"),
        ],
        votes={
            "市局领导班子": FAILING_TEAM,
            "王五": [EX, EX, CO, CO, None, None],
            "张三": [EX, IN, IN, CO, None, None],  # trust 2/4 = exactly 1/2
            "张三（廉洁自律）": LOW_INTEGRITY,
            "李四": [CO, IN, IN, None, None, None],  # trust 1/3
            "李四（廉洁自律）": LOW_INTEGRITY,
            "王五（廉洁自律）": LOW_INTEGRITY,
        },
    )
    r2 = run_round(
        title="2025年度党风廉政建设责任制民主测评",
        unit=LANZHOU,
        year=2025,
        closed_at=datetime(2025, 6, 30, tzinfo=UTC),
        subjects=[
            subject("市局领导班子", "gansu-team"),
            subject("张三（廉洁自律）", "gansu-integrity", "A001"),
            subject("王五（廉洁自律）", "gansu-integrity", "A003"),
        ],
        votes={
            "市局领导班子": FAILING_TEAM,
            "张三（廉洁自律）": LOW_INTEGRITY,
            "王五（廉洁自律）": LOW_INTEGRITY,
        },
    )
    r2x = run_round(
        title="2025年度补充测评（参测不足）",
        unit=LANZHOU,
        year=2025,
        closed_at=datetime(2025, 9, 1, tzinfo=UTC),
        issued=10,
        subjects=[
            subject("市局领导班子", "gansu-team"),
            subject("李四（廉洁自律）", "gansu-integrity", "A002"),
        ],
        votes={"市局领导班子": [EX, QU, QU], "李四（廉洁自律）": [G, F, F]},
    )
    r3 = run_round(
        title="2025年度上级抽测",
        unit=LANZHOU,
        year=2025,
        closed_at=datetime(2025, 12, 15, tzinfo=UTC),
        subjects=[subject("王五（廉洁自律）", "gansu-integrity", "A003")],
        votes={"王五（廉洁自律）": FINE_INTEGRITY},
    )
    zhang = db.session.execute(db.select(Person).where(Person.staff_no == "A001")).scalar_one()
    zhang.unit = ensure_unit(TIANSHUI)  # 调动: the person keeps their row and archive
    db.session.commit()
    r4 = run_round(
        title="2026年度党风廉政建设责任制民主测评",
        unit=LANZHOU,
        year=2026,
        closed_at=datetime(2026, 12, 18, tzinfo=UTC),
        subjects=[
            subject("市局领导班子", "gansu-team"),
            subject("李四（廉洁自律）", "gansu-integrity", "A002"),
            subject("王五（廉洁自律）", "gansu-integrity", "A003"),
            subject("赵六", "gansu-member", "A004", "纪检组长"),
            subject("赵六（廉洁自律）", "gansu-integrity", "A004"),
            subject("=SUM(1,2)", "gansu-member", "A005"),
        ],
        votes={
            "市局领导班子": FAILING_TEAM,
            "李四（廉洁自律）": LOW_INTEGRITY,
            "王五（廉洁自律）": LOW_INTEGRITY,
            "赵六": [EX, EX, EX, CO, CO, None],
            "赵六（廉洁自律）": THIRD_INTEGRITY,
            "=SUM(1,2)": [EX, CO, CO, CO, CO, CO],
        },
    )
    r5 = run_round(
        title="2026年度天水市局民主测评",
        unit=TIANSHUI,
        year=2026,
        closed_at=datetime(2026, 12, 20, tzinfo=UTC),
        subjects=[subject("张三（廉洁自律）", "gansu-integrity", "A001")],
        votes={"张三（廉洁自律）": [F, F, F, G, F, None]},  # 1/5
    )
    people = {p.staff_no: p for p in db.session.execute(db.select(Person)).scalars() if p.staff_no}
    return {"rounds": [r1, r2, r2x, r3, r4, r5], "people": people}


# A second accountability rule set, stricter than 000 §五, written for the tests only.
STRICT = """\
id = "strict"
name = "测试用从严规则集"
source = "本测试自拟，非任何文件"

[integrity]
source = "测试规则 第一条"
forms = ["gansu-integrity"]
below = "1/2"
steps = [
  { years = 1, label = "提醒谈话", action = "由纪检组长进行提醒谈话" },
  { years = 2, label = "诫勉谈话", action = "由主要领导进行诫勉谈话" },
]

[team]
source = "测试规则 第二条"
forms = ["gansu-team"]
grade = "不合格"
steps = [{ years = 2, label = "通报批评", action = "在全系统通报批评" }]

[trust]
source = "测试规则 第三条"
forms = ["gansu-principal", "gansu-member", "gansu-integrity"]
below = "3/5"
label = "信任度审查"
action = "由上级党组审查"
"""


def with_strict_set(app: Flask, tmp_path: Path) -> Path:
    """Point BALLOTS_DIR at a copy of the ballots holding ``STRICT`` as ``strict.toml``."""
    ballots = tmp_path / "ballots-with-strict"
    shutil.copytree(app.config["BALLOTS_DIR"], ballots)
    (ballots / "accountability" / "strict.toml").write_text(STRICT, encoding="utf-8")
    app.config["BALLOTS_DIR"] = str(ballots)
    return ballots
