"""A stratum limited to some subjects votes on those only (issue 16 item 4).

服务对象 rates only 市局领导班子: its phones show that subject alone and it can vote; a forged
POST that also answers 市局纪检组 is refused with nothing stored and the code still unused;
its sealed ballots are padded to the same length as everyone else's; the organiser's preview
shows each stratum's ballot.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from evaluation.extensions import db
from evaluation.models import Answer, CodeState
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from evaluation.voting import box
from evaluation.voting.ballot import field_name
from tests.helpers.strata import (
    CADRES,
    ORGAN,
    SERVED,
    TEAM,
    answers_for,
    limited_round,
    vote_as,
)
from tests.helpers.voters import Voter, ballots_cast, code_state, issue, voted
from tests.helpers.web import AuthActions


def _legends(page: str) -> list[str]:
    return re.findall(r'<span class="subject-name">([^<]+)</span>', page)


def _opened() -> tuple[Any, dict[str, list[str]]]:
    rnd = limited_round()
    issued = {CADRES: issue(rnd, CADRES, 3), SERVED: issue(rnd, SERVED, 3)}
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    return rnd, issued


def test_a_served_voter_sees_only_the_team_and_votes(app: Flask) -> None:
    rnd, issued = _opened()
    served = Voter(app.test_client())
    page = served.scan(issued[SERVED][0]).get_data(as_text=True)
    assert _legends(page) == [TEAM]
    assert f"测评人员类别：<strong>{SERVED}</strong> · 共 1 个测评对象" in page
    assert ORGAN not in page
    response = served.submit(answers_for(rnd, SERVED, {TEAM: "合格"}))
    assert voted(response), response.get_data(as_text=True)

    cadre = Voter(app.test_client())
    page = cadre.scan(issued[CADRES][0]).get_data(as_text=True)
    assert _legends(page) == [TEAM, ORGAN]  # the page cache is per stratum
    assert voted(cadre.submit(answers_for(rnd, CADRES, {TEAM: "优秀", ORGAN: "合格"})))

    # Every ballot of the round is padded to one length, whatever its stratum rates.
    table = box.box_table(rnd.id)
    sizes = db.session.execute(
        db.select(db.func.length(table.c.sealed)).where(table.c.digest != box.KEY_ROW)
    ).scalars()
    assert len(set(sizes)) == 1

    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()
    served_id = next(s.id for s in rnd.strata if s.name == SERVED)
    rows = db.session.execute(
        db.select(Answer.subject_id, Answer.grade).where(Answer.stratum_id == served_id)
    ).all()
    assert rows == [(rnd.subjects[0].id, "qualified")]  # no answer (not even 弃权) for 纪检组


def test_a_forged_answer_for_another_subject_is_refused_and_nothing_stored(app: Flask) -> None:
    rnd, issued = _opened()
    code = issued[SERVED][0]
    voter = Voter(app.test_client())
    assert voter.scan(code).status_code == 200
    forged = {
        **answers_for(rnd, SERVED, {TEAM: "优秀"}),
        field_name(rnd.subjects[1].id): "unqualified",
    }
    response = voter.submit(forged)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f"这张选票含有您所在类别（{SERVED}）不评价的测评对象：{ORGAN}" in page
    assert "选票没有被记录，测评码仍可使用" in page
    assert ballots_cast(rnd.id) == 0
    assert code_state(code) == CodeState.UNUSED
    # the same phone can then vote properly with the same code
    assert voted(voter.submit(answers_for(rnd, SERVED, {TEAM: "优秀"})))
    assert ballots_cast(rnd.id) == 1


def test_every_code_of_the_served_stratum_votes(app: Flask) -> None:
    rnd, issued = _opened()
    for code in issued[SERVED]:
        vote_as(app, rnd, code, SERVED, {TEAM: "优秀"})
    assert ballots_cast(rnd.id) == 3


def test_the_preview_shows_each_stratums_ballot(
    client: FlaskClient, auth: AuthActions, users: Any, app: Flask
) -> None:
    rnd = limited_round()
    assert auth.login("organiser").status_code == 302
    page = client.get(f"/rounds/{rnd.id}/preview").get_data(as_text=True)
    assert _legends(page) == [TEAM, ORGAN]
    served_id = next(s.id for s in rnd.strata if s.name == SERVED)
    assert f'href="/rounds/{rnd.id}/preview?stratum={served_id}">{SERVED}</a>' in page
    page = client.get(f"/rounds/{rnd.id}/preview?stratum={served_id}").get_data(as_text=True)
    assert _legends(page) == [TEAM]
    assert f"测评人员类别：<strong>{SERVED}</strong>" in page
    assert f'<strong aria-current="page">{SERVED}</strong>' in page
