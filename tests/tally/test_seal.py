"""The seal: canonical form, and ``flask verify`` failing, naming the difference, on tampering."""

from __future__ import annotations

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import delete, select, update

from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Round
from evaluation.tally.seal import ballot_line, seal_digest
from tests.helpers import tally as th
from tests.helpers.tally import MEMBER, PRINCIPAL, TEAM, vote


def test_canonical_form_ignores_storage_order() -> None:
    a = ballot_line(1, [(5, "", 1, "excellent"), (3, "", 1, None), (3, "2", 1, "good")])
    b = ballot_line(1, [(3, "2", 1, "good"), (3, "", 1, None), (5, "", 1, "excellent")])
    assert a == b == '[1,[[3,"",1,null],[3,"2",1,"good"],[5,"",1,"excellent"]]]'
    other = ballot_line(2, [(5, "", 2, "excellent")])
    assert seal_digest(7, [a, other]) == seal_digest(7, [other, a])
    assert seal_digest(7, [a, other]) != seal_digest(8, [a, other])  # bound to the round
    assert seal_digest(7, [a, other]) != seal_digest(7, [a])
    changed = ballot_line(1, [(5, "", 1, "qualified"), (3, "", 1, None), (3, "2", 1, "good")])
    assert seal_digest(7, [changed, other]) != seal_digest(7, [a, other])


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
    assert "分类别 “中层干部” 选票数：封存值 10，重算值 9" in output


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
