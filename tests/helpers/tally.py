"""Test helpers for the tally: ballots and codes written directly as rows.

``cast`` stores ballots exactly as the voting module does (a Ballot, one Answer per subject
— item "" for the overall grade, NULL for 弃权 — and a used Code), so a test can build a round
with known votes without going through the voting pages.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Code, CodeBatch, CodeState, Round, Stratum, Subject
from evaluation.rounds import lifecycle, state
from evaluation.transactions import write_transaction


def stratum(rnd: Round, name: str) -> Stratum:
    """The round's stratum called ``name``."""
    return next(s for s in rnd.strata if s.name == name)


def subject(rnd: Round, name: str) -> Subject:
    """The round's subject called ``name``."""
    return next(s for s in rnd.subjects if s.name == name)


def _codes(rnd: Round, st: Stratum, count: int, state: CodeState) -> None:
    batch = CodeBatch(round_id=rnd.id, stratum_id=st.id, count=count, issued_by="test")
    db.session.add(batch)
    db.session.flush()
    for _ in range(count):
        db.session.add(
            Code(
                round_id=rnd.id,
                stratum_id=st.id,
                batch_id=batch.id,
                digest=uuid.uuid4().hex,
                state=state,
            )
        )
    db.session.flush()


def unused_codes(rnd: Round, stratum_name: str, count: int) -> None:
    """Issue ``count`` codes nobody used."""
    _codes(rnd, stratum(rnd, stratum_name), count, CodeState.UNUSED)


def cast(
    rnd: Round,
    stratum_name: str,
    grades: dict[str, str | None],
    *,
    times: int = 1,
    items: dict[tuple[str, str], str | None] | None = None,
) -> None:
    """Store ``times`` identical ballots: subject name → grade label (None = 弃权).

    Every subject of the round not named gets 弃权; each ballot uses up one code.
    """
    st = stratum(rnd, stratum_name)
    forms = state.round_forms(rnd)
    keys: dict[int, str | None] = {}
    for s in rnd.subjects:
        label = grades.get(s.name)
        form = forms[s.form_id]
        keys[s.id] = None if label is None else next(g.key for g in form.grades if g.label == label)
    item_keys: dict[tuple[int, str], str | None] = {}
    for (name, code), label in (items or {}).items():
        s = subject(rnd, name)
        form = forms[s.form_id]
        item_keys[(s.id, code)] = (
            None if label is None else next(g.key for g in form.grades if g.label == label)
        )
    for _ in range(times):
        ballot = Ballot(id=uuid.uuid4(), round_id=rnd.id, stratum_id=st.id)
        db.session.add(ballot)
        for subject_id, key in keys.items():
            db.session.add(
                Answer(
                    ballot_id=ballot.id,
                    subject_id=subject_id,
                    item="",
                    stratum_id=st.id,
                    grade=key,
                )
            )
        for (subject_id, code), key in item_keys.items():
            db.session.add(
                Answer(
                    ballot_id=ballot.id,
                    subject_id=subject_id,
                    item=code,
                    stratum_id=st.id,
                    grade=key,
                )
            )
    db.session.flush()
    _codes(rnd, st, times, CodeState.USED)


def open_round(rnd: Round) -> None:
    """Open a draft round."""
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()


def close_round(rnd: Round) -> None:
    """Close (shuffle and seal) an open round and commit."""
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()


# --- the votes the tally, seal and report tests share ---------------------------------------------

# The workbook's print sheets (测评汇总表) for the sample round's five forms, in order.
PRINT_SHEETS = [
    "汇总表-领导班子",
    "汇总表-班子正职",
    "汇总表-班子成员",
    "汇总表-纪检监察",
    "汇总表-廉洁自律",
]

TEAM, ORGAN, PRINCIPAL, MEMBER, INTEGRITY = (
    "市局领导班子",
    "市局纪检组",
    "张三",
    "李四",
    "张三（廉洁自律）",
)


def vote(rnd: Round, *, unused_general: int = 5) -> None:
    """The votes every test here uses (see the expected figures in each test)."""
    open_round(rnd)
    cast(
        rnd,
        "班子成员",
        {TEAM: "优秀", ORGAN: "合格", PRINCIPAL: "优秀", MEMBER: "称职", INTEGRITY: "好"},
        times=3,
    )
    unused_codes(rnd, "班子成员", 4)
    cast(
        rnd,
        "中层干部",
        {TEAM: "优秀", ORGAN: "优秀", PRINCIPAL: "称职", MEMBER: "基本称职", INTEGRITY: "好"},
        times=6,
    )
    cast(
        rnd,
        "中层干部",
        {TEAM: "不合格", ORGAN: "合格", PRINCIPAL: "不称职", MEMBER: "称职", INTEGRITY: "差"},
        times=4,
    )
    unused_codes(rnd, "中层干部", 10)
    cast(
        rnd,
        "一般干部",
        {TEAM: "合格", ORGAN: "优秀", PRINCIPAL: "优秀", MEMBER: "优秀", INTEGRITY: "中"},
        times=20,
    )
    cast(
        rnd,
        "一般干部",
        {TEAM: None, ORGAN: "不合格", PRINCIPAL: "基本称职", MEMBER: None, INTEGRITY: "好"},
        times=10,
    )
    unused_codes(rnd, "一般干部", unused_general)
    db.session.commit()
    close_round(rnd)


def change_one_answer(rnd: Round, subject_name: str, grade: str, to: str) -> None:
    """After close, as someone with the database would: one stored answer's grade changed."""
    subject_id = subject(rnd, subject_name).id
    target = (
        db.session.execute(
            select(Answer.ballot_id).where(Answer.subject_id == subject_id, Answer.grade == grade)
        )
        .scalars()
        .first()
    )
    db.session.execute(
        update(Answer)
        .where(Answer.ballot_id == target, Answer.subject_id == subject_id)
        .values(grade=to)
    )
    db.session.commit()


SMALL = "班子成员"  # casts 4 ballots in ``vote_with_small_stratum``: below MIN_GROUP_SIZE 5
POOL = "其他类别（含：班子成员、中层干部）"


def vote_with_small_stratum(rnd: Round, *, weights: tuple[str, str, str] | None = None) -> None:
    """Close a round where 班子成员 casts 4 ballots, 中层干部 7 and 一般干部 20.

    The team's form is graded item by item (so 分项 has per-stratum cells too). Every subject
    pools 班子成员 with the next smallest stratum, 中层干部: "其他类别（含：班子成员、中层干部）"
    with 11 ballots. 班子成员's own counts (4 ballots: 不合格 ×4, item 1 不合格 ×4) must appear
    in no output. ``weights``: for 班子成员, 中层干部, 一般干部.
    """
    if weights is not None:
        for name, weight in zip(("班子成员", "中层干部", "一般干部"), weights, strict=True):
            stratum(rnd, name).weight = weight
    team_form = subject(rnd, TEAM).form_id
    rnd.forms = {**rnd.forms, team_form: {**rnd.forms[team_form], "per_item": True}}
    db.session.commit()
    open_round(rnd)
    cast(
        rnd,
        SMALL,
        {TEAM: "不合格", ORGAN: "不合格", PRINCIPAL: "不称职", MEMBER: "不称职", INTEGRITY: "差"},
        items={(TEAM, "1"): "不合格"},
        times=4,
    )
    unused_codes(rnd, SMALL, 1)
    cast(
        rnd,
        "中层干部",
        {TEAM: "优秀", ORGAN: "合格", PRINCIPAL: "称职", MEMBER: "优秀", INTEGRITY: "好"},
        items={(TEAM, "1"): "合格"},
        times=5,
    )
    cast(
        rnd,
        "中层干部",
        {TEAM: "不合格", ORGAN: "优秀", PRINCIPAL: "基本称职", MEMBER: None, INTEGRITY: "中"},
        items={(TEAM, "1"): "不合格"},
        times=2,
    )
    cast(
        rnd,
        "一般干部",
        {TEAM: "合格", ORGAN: "优秀", PRINCIPAL: "优秀", MEMBER: "称职", INTEGRITY: "好"},
        items={(TEAM, "1"): "优秀"},
        times=14,
    )
    cast(
        rnd,
        "一般干部",
        {TEAM: "优秀", ORGAN: "合格", PRINCIPAL: None, MEMBER: "基本称职", INTEGRITY: "中"},
        items={(TEAM, "1"): None},
        times=6,
    )
    db.session.commit()
    close_round(rnd)
