"""The seal: canonical form over the lines of 原始选票, and ``flask verify`` failing, naming the
difference, on tampering; rounds sealed in the old formats still verify."""

from __future__ import annotations

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import delete, select, update

from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Round
from evaluation.tally.aggregate import compute_legacy_seal, tally_round
from evaluation.tally.core import to_json
from evaluation.tally.seal import (
    RawLine,
    legacy_ballot_line,
    legacy_seal_digest,
    seal_digest,
    shuffled,
)
from tests.helpers import tally as th
from tests.helpers.tally import MEMBER, PRINCIPAL, TEAM, vote


def test_seal_is_a_multiset_digest_of_the_raw_lines() -> None:
    a = RawLine("局领导班子", "总体", "一般干部", "优秀")
    b = RawLine("局领导班子", "总体", "其他类别（含：班子成员、中层干部）", "弃权")
    c = RawLine("张三", "第1项", "一般干部", "称职")
    assert a.canonical() == '["局领导班子","总体","一般干部","优秀"]'
    digest = seal_digest(7, [a, a, b, c])
    assert digest == seal_digest(7, [c, a, b, a]) == seal_digest(7, [(a, 2), (b, 1), (c, 1)])
    assert digest != seal_digest(8, [a, a, b, c])  # bound to the round
    assert digest != seal_digest(7, [a, b, c])  # a line fewer
    assert digest != seal_digest(7, [a, a, b, RawLine("张三", "第1项", "一般干部", "优秀")])
    # the header and lines, as anyone can recompute them by hand
    import hashlib

    lines = sorted(line.canonical() for line in (a, a, b, c))
    text = "\n".join(["民主测评封存 v2 round=7 lines=4", *lines])
    assert digest == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_shuffled_lists_each_line_as_often_as_counted() -> None:
    a, b = RawLine("甲", "总体", "一般干部", "优秀"), RawLine("甲", "总体", "一般干部", "合格")
    drawn = list(shuffled({a: 30, b: 20}))
    assert drawn.count(a) == 30 and drawn.count(b) == 20
    orders = {tuple(shuffled({a: 30, b: 20})) for _ in range(5)}
    assert len(orders) > 1  # drawn anew each time


def test_legacy_canonical_form_ignores_storage_order() -> None:
    a = legacy_ballot_line(1, [(5, "", 1, "excellent"), (3, "", 1, None), (3, "2", 1, "good")])
    b = legacy_ballot_line(1, [(3, "2", 1, "good"), (3, "", 1, None), (5, "", 1, "excellent")])
    assert a == b == '[1,[[3,"",1,null],[3,"2",1,"good"],[5,"",1,"excellent"]]]'
    other = legacy_ballot_line(2, [(5, "", 2, "excellent")])
    assert legacy_seal_digest(7, [a, other]) == legacy_seal_digest(7, [other, a])
    assert legacy_seal_digest(7, [a, other]) != legacy_seal_digest(8, [a, other])


@pytest.fixture
def voted(sample_round: Round) -> Round:
    """A closed, sealed round."""
    vote(sample_round)
    return sample_round


def _verify(runner: FlaskCliRunner, rnd: Round) -> tuple[int, str]:
    db.session.expire_all()
    res = runner.invoke(args=["verify", str(rnd.id)])
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def test_verify_passes_on_an_untouched_round(runner: FlaskCliRunner, voted: Round) -> None:
    code, output = _verify(runner, voted)
    assert code == 0, output
    assert "核验通过" in output and voted.seal is not None and voted.seal in output


def test_changed_answer_is_found(runner: FlaskCliRunner, voted: Round) -> None:
    th.change_one_answer(voted, PRINCIPAL, "basic", to="excellent")
    code, output = _verify(runner, voted)
    assert code != 0
    assert "封存码不一致" in output
    assert f"测评对象 “{PRINCIPAL}” 票数 excellent：封存值 23，重算值 24" in output
    assert f"“{PRINCIPAL}” 满意率：封存值 29/43，重算值 30/43" in output


def test_moved_answer_stratum_is_found(runner: FlaskCliRunner, voted: Round) -> None:
    team = th.subject(voted, TEAM)
    middle, general = th.stratum(voted, "中层干部"), th.stratum(voted, "一般干部")
    target = (
        db.session.execute(
            select(Answer.ballot_id).where(
                Answer.subject_id == team.id, Answer.stratum_id == middle.id
            )
        )
        .scalars()
        .first()
    )
    db.session.execute(
        update(Answer)
        .where(Answer.ballot_id == target, Answer.subject_id == team.id)
        .values(stratum_id=general.id)
    )
    db.session.commit()
    code, output = _verify(runner, voted)
    assert code != 0 and "封存码不一致" in output
    assert "分类别 “一般干部” 选票数：封存值 30，重算值 31" in output


def test_removed_ballot_is_found(runner: FlaskCliRunner, voted: Round) -> None:
    victim = db.session.execute(select(Ballot.id).where(Ballot.round_id == voted.id)).scalar()
    db.session.execute(delete(Answer).where(Answer.ballot_id == victim))
    db.session.execute(delete(Ballot).where(Ballot.id == victim))
    db.session.commit()
    code, output = _verify(runner, voted)
    assert code != 0
    assert "封存码不一致" in output
    assert "选票数：封存值 43，重算值 42" in output
    assert "选票数 42 与已使用的测评码数 43 不一致" in output


def test_altered_sealed_result_is_found(runner: FlaskCliRunner, voted: Round) -> None:
    assert voted.sealed_result is not None
    sealed = dict(voted.sealed_result)
    subjects = [dict(s) for s in sealed["subjects"]]
    for s in subjects:
        if s["name"] == MEMBER:
            s["grade"], s["grade_label"] = "incompetent", "不称职"
    sealed["subjects"] = subjects
    voted.sealed_result = sealed
    db.session.commit()
    code, output = _verify(runner, voted)
    assert code != 0
    assert "封存码不一致" not in output  # the ballots are intact
    assert f"“{MEMBER}” 测评等次：封存值 incompetent，重算值 excellent" in output
    assert f"“{MEMBER}” 测评等次名称：封存值 不称职，重算值 优秀" in output


def test_altered_seal_is_found(runner: FlaskCliRunner, voted: Round) -> None:
    voted.seal = "0" * 64
    db.session.commit()
    code, output = _verify(runner, voted)
    assert code != 0 and "封存码不一致：封存 0000" in output


def test_verify_refuses_open_or_unknown_rounds(runner: FlaskCliRunner, sample_round: Round) -> None:
    th.open_round(sample_round)
    code, output = _verify(runner, sample_round)
    assert code != 0 and "测评结束后" in output
    code, output = _verify(runner, Round(id=424242, title="x"))
    assert code != 0 and "不存在" in output


def test_a_round_sealed_in_the_old_formats_still_verifies(
    runner: FlaskCliRunner, voted: Round
) -> None:
    # As a round closed before pooling was sealed: result version 2, seal v1 over whole ballots.
    voted.sealed_result = to_json(tally_round(voted, pooling=False))
    voted.seal = compute_legacy_seal(voted)
    db.session.commit()
    code, output = _verify(runner, voted)
    assert code == 0, output
    assert "封存码为旧格式 v1" in output and "计票结果为旧格式（版本 2" in output
    th.change_one_answer(voted, PRINCIPAL, "basic", to="excellent")
    code, output = _verify(runner, voted)
    assert code != 0 and "封存码不一致" in output and "旧格式" in output
