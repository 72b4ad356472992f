"""A closed round of the sample file with paper ballots, for the outputs' 纸质票 / 废票 wording.

Built through the real operations: phone ballots as rows (``tests.helpers.tally.cast``), paper
ballots printed (``issue_paper``), entered twice by two clerks with identical readings
(``save_entry``, which puts the agreed stack in the box), then the round closed (shuffle, seal).

* 班子成员: 3 phone ballots, no paper;
* 中层干部: 10 phone ballots; 3 paper ballots printed, 2 entered: 1 valid, 1 空白票 (废票);
* 一般干部: rates only 市局领导班子 and 市局纪检组; paper only: 8 printed, 7 entered:
  5 valid (one with 多选 on its first question, counted 弃权), 1 方框外有标记 and 1 空白票.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.codes.paper import issue_paper
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.paper.entry import (
    Entry,
    clean_entry,
    create_batch,
    entry_questions,
    invalid_rules,
    save_entry,
)
from evaluation.rounds.operations import set_stratum_subjects
from tests.helpers.tally import (
    INTEGRITY,
    MEMBER,
    ORGAN,
    PRINCIPAL,
    TEAM,
    cast,
    close_round,
    open_round,
    stratum,
    subject,
)

CLERKS = ("clerk1", "clerk2")
LIMITED = "一般干部"


@dataclass(frozen=True)
class Expected:
    """What the outputs must say about the round's paper ballots."""

    # 实参评 per stratum and the note beside it
    used: tuple[tuple[str, int, str], ...] = (
        ("班子成员", 3, ""),
        ("中层干部", 12, "（含纸质票 2 张，其中废票 1 张）"),
        ("一般干部", 7, "（含纸质票 7 张，其中废票 2 张）"),
    )
    total_used: int = 22
    rules: str = "废票认定：空白票 2 张、方框外有标记 1 张；按弃权计 1 处（多选 1 处）。"
    # a subject every stratum rates / one that 一般干部 does not rate
    team_line: str = "实参评 22 人，含纸质票 9 张，其中废票 3 张"
    principal_line: str = (
        "评价本对象的类别（班子成员、中层干部）实参评 15 人，含纸质票 2 张，其中废票 1 张"
    )


EXPECTED = Expected()


def enter_stack(rnd: Round, stratum_name: str, readings: list[tuple[str, list[str]]]) -> None:
    """One stack entered identically by both clerks: (票面 mark, keystroke per question)."""
    st = stratum(rnd, stratum_name)
    questions = entry_questions(rnd, st.id)
    rules = invalid_rules()
    entries: list[Entry] = []
    for mark, strokes in readings:
        full = strokes + ["1"] * (len(questions) - len(strokes)) if strokes else strokes
        if not strokes:
            full = [""] * len(questions)
        entries.append(clean_entry(mark, full, questions, rules))
    batch = create_batch(rnd, st, len(entries), actor=CLERKS[0])
    results = []
    for clerk in CLERKS:
        for position, entry in enumerate(entries, 1):
            results.append(save_entry(rnd, batch, clerk, position, entry, actor=clerk))
    assert results[-1] is not None, "the stack must go in the box once both clerks agree"


def paper_round(rnd: Round) -> Round:
    """Close the sample round as the module docstring says; return it."""
    limited = stratum(rnd, LIMITED)
    set_stratum_subjects(
        rnd, limited, [subject(rnd, TEAM).id, subject(rnd, ORGAN).id], actor="test"
    )
    db.session.commit()
    open_round(rnd)
    every = {TEAM: "优秀", ORGAN: "合格", PRINCIPAL: "称职", MEMBER: "称职", INTEGRITY: "好"}
    cast(rnd, "班子成员", every, times=3)
    cast(rnd, "中层干部", every, times=10)
    issue_paper(rnd, stratum(rnd, "中层干部"), 3, actor="test")
    issue_paper(rnd, limited, 8, actor="test")
    db.session.commit()
    enter_stack(rnd, "中层干部", [("", ["1"]), ("", [])])
    enter_stack(
        rnd,
        LIMITED,
        [("", ["1", "1"]), ("", ["2", "1"]), ("", ["1", "2"]), ("", ["*", "1"]), ("", ["1"])]
        + [("w", []), ("", [])],
    )
    db.session.commit()
    close_round(rnd)
    return rnd
