"""Strata limited to some subjects (issue 16 item 4): the round file, the draft page, open.

服务对象 may rate only the leadership team. In the round file that is ``subjects = [...]``
under ``[[strata]]`` (names of the file's subjects; every wrong name is reported in one pass,
naming the stratum); on the round page, checkboxes of the round's subjects (all by default).
Removing a subject takes it off the strata that rated it; a stratum left rating nothing keeps
the round from opening, with a Chinese message.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Round, RoundState
from evaluation.rounds import lifecycle, operations
from evaluation.rounds.round_file import export_round, import_round, parse_round_text
from tests.helpers.strata import CADRES, LIMITED_ROUND, ORGAN, SERVED, TEAM, limited_round
from tests.helpers.web import SAMPLE_ROUND, AuthActions, csrf_token


def _fresh(round_id: int) -> Round:
    db.session.expire_all()
    rnd = db.session.get(Round, round_id)
    assert rnd is not None
    return rnd


def _stratum(rnd: Round, name: str) -> Any:
    return next(s for s in rnd.strata if s.name == name)


def _audit(action: str) -> list[AuditEntry]:
    query = db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    return list(db.session.execute(query).scalars())


# --- the round file ------------------------------------------------------------------------------


def test_round_file_limits_a_stratum_and_exports_it_back(app: Any) -> None:
    rnd = limited_round()
    cadres, served = _stratum(rnd, CADRES), _stratum(rnd, SERVED)
    assert cadres.rates_all and cadres.rated == []
    assert not served.rates_all and [s.name for s in served.rated] == [TEAM]
    assert [s.name for s in operations.rated_subjects(rnd, served)] == [TEAM]
    assert [s.name for s in operations.rated_subjects(rnd, cadres)] == [TEAM, ORGAN]
    assert _audit("stratum.subjects")[-1].details["subjects"] == [TEAM]

    text = export_round(rnd)
    served_block = text.split(f'name = "{SERVED}"', 1)[1].split("[[", 1)[0]
    assert f'subjects = ["{TEAM}"]' in served_block
    cadres_block = text.split(f'name = "{CADRES}"', 1)[1].split("[[", 1)[0]
    assert "subjects" not in cadres_block  # all subjects: nothing written

    copy = import_round(parse_round_text(text.replace("year = 2026", "year = 2027")), actor="t")
    db.session.commit()
    assert [(s.name, s.rates_all, [x.name for x in s.rated]) for s in copy.strata] == [
        (CADRES, True, []),
        (SERVED, False, [TEAM]),
    ]


def test_listing_every_subject_is_the_same_as_all(app: Any) -> None:
    text = LIMITED_ROUND.replace(f'subjects = ["{TEAM}"]', f'subjects = ["{ORGAN}", "{TEAM}"]')
    rnd = import_round(parse_round_text(text), actor="test")
    assert _stratum(rnd, SERVED).rates_all


def test_round_file_problems_with_subjects_are_listed_in_one_pass(app: Any) -> None:
    text = (
        SAMPLE_ROUND.replace(
            'name = "中层干部"\ncodes = 20',
            'name = "中层干部"\ncodes = 20\nsubjects = ["市局领导班子", "王五", "局纪委"]',
        )
        .replace('name = "一般干部"\ncodes = 40', 'name = "一般干部"\ncodes = 40\nsubjects = []')
        .replace('name = "班子成员"\ncodes = 7', 'name = "班子成员"\ncodes = 7\nsubjects = "张三"')
        .replace('form = "gansu-team"', 'form = "no-such-form"')
    )
    with pytest.raises(InputError) as info:
        import_round(parse_round_text(text), actor="test")
    problems = info.value.problems
    assert "有 5 处错误，未导入任何内容" in info.value.message, problems
    assert (
        "第 2 个 [[strata]]（中层干部）：subjects 中的“王五”不是本文件 [[subjects]] 中的测评对象"
        in problems
    )
    assert (
        "第 2 个 [[strata]]（中层干部）：subjects 中的“局纪委”不是本文件 [[subjects]] 中的测评对象"
        in problems
    )
    assert any(p.startswith("第 3 个 [[strata]]（一般干部）：subjects 不能为空") for p in problems)
    assert any(
        p.startswith("第 1 个 [[strata]]（班子成员）：subjects 应为测评对象名称的列表")
        for p in problems
    )
    assert any("no-such-form" in p for p in problems)  # the other problems come in the same pass
    db.session.rollback()
    assert db.session.execute(db.select(Round)).first() is None


# --- the round page (draft) ---------------------------------------------------------------------


def _login(auth: AuthActions, client: FlaskClient) -> str:
    assert auth.login("organiser").status_code == 302
    return csrf_token(client, "/")


def test_the_page_adds_and_edits_a_stratums_subjects(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    page = client.get(f"/rounds/{rid}").get_data(as_text=True)
    assert page.count("评价：全部测评对象") == 3
    team, organ = sample_round.subjects[0], sample_round.subjects[1]
    # the add form's checkboxes are all ticked by default
    add_form = page.split("<h3>添加类别</h3>", 1)[1].split("</form>", 1)[0]
    assert add_form.count('type="checkbox" name="subjects"') == 5
    assert add_form.count(" checked>") == 5

    response = client.post(
        f"/rounds/{rid}/strata",
        data={
            "csrf_token": token,
            "name": SERVED,
            "planned": "9",
            "subjects_shown": "1",
            "subjects": [str(team.id)],
        },
    )
    assert response.status_code == 303
    served = _stratum(_fresh(rid), SERVED)
    assert not served.rates_all and [s.name for s in served.rated] == ["市局领导班子"]
    assert _audit("stratum.subjects")[-1].details == {
        "round_id": rid,
        "name": SERVED,
        "subjects": ["市局领导班子"],
    }
    page = client.get(f"/rounds/{rid}").get_data(as_text=True)
    row = page.split(f'<td data-label="类别" class="name">{SERVED}</td>', 1)[1].split("</tr>", 1)[0]
    assert "评价：市局领导班子" in row and "修改评价对象" in row

    # edit: team and organ; then every subject again (= all)
    url = f"/rounds/{rid}/strata/{served.id}/subjects"
    data = {"csrf_token": token, "subjects_shown": "1", "subjects": [str(team.id), str(organ.id)]}
    assert client.post(url, data=data).status_code == 303
    assert [s.name for s in _stratum(_fresh(rid), SERVED).rated] == ["市局领导班子", "市局纪检组"]
    every = [str(s.id) for s in _fresh(rid).subjects]
    data = {"csrf_token": token, "subjects_shown": "1", "subjects": every}
    assert client.post(url, data=data).status_code == 303
    served = _stratum(_fresh(rid), SERVED)
    assert served.rates_all and served.rated == []
    assert _audit("stratum.subjects")[-1].details["subjects"] == "全部"

    # nothing ticked is refused, and nothing changes
    before = len(_audit("stratum.subjects"))
    response = client.post(url, data={"csrf_token": token, "subjects_shown": "1"})
    assert response.status_code == 400
    assert "请至少选择一个要评价的测评对象" in response.get_data(as_text=True)
    assert _stratum(_fresh(rid), SERVED).rates_all
    assert len(_audit("stratum.subjects")) == before


def test_removing_the_only_rated_subject_keeps_the_round_from_opening(
    client: FlaskClient, auth: AuthActions, users: Any, app: Any
) -> None:
    rnd = limited_round()
    token = _login(auth, client)
    rid = rnd.id
    team = rnd.subjects[0]
    response = client.post(f"/rounds/{rid}/subjects/{team.id}/remove", data={"csrf_token": token})
    assert response.status_code == 303
    served = _stratum(_fresh(rid), SERVED)
    assert not served.rates_all and served.rated == []  # limited, to nothing
    page = client.get(f"/rounds/{rid}").get_data(as_text=True)
    assert "评价：无（所选测评对象已删除，请重新选择）" in page

    response = client.post(f"/rounds/{rid}/open", data={"csrf_token": token})
    assert response.status_code == 303
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"测评人员类别“{SERVED}”没有要评价的测评对象" in shown
    assert _fresh(rid).state == RoundState.DRAFT
    with pytest.raises(InputError, match="没有要评价的测评对象"):
        lifecycle.open_round(_fresh(rid), actor="test")
    db.session.rollback()
    assert _audit("round.open") == []


def test_a_subject_no_stratum_rates_keeps_the_round_from_opening(app: Any) -> None:
    text = LIMITED_ROUND.replace('weight = "0.6"', f'weight = "0.6"\nsubjects = ["{TEAM}"]')
    rnd = import_round(parse_round_text(text), actor="test")
    db.session.commit()
    with pytest.raises(InputError, match=f"测评对象“{ORGAN}”没有任何测评人员类别评价"):
        lifecycle.open_round(rnd, actor="test")


def test_subjects_of_a_stratum_change_only_in_draft(
    client: FlaskClient, auth: AuthActions, users: Any, app: Any
) -> None:
    rnd = limited_round()
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    token = _login(auth, client)
    served = _stratum(rnd, SERVED)
    response = client.post(
        f"/rounds/{rnd.id}/strata/{served.id}/subjects",
        data={"csrf_token": token, "subjects_shown": "1", "subjects": [str(rnd.subjects[1].id)]},
    )
    assert response.status_code == 409
    assert "当前为进行中状态" in response.get_data(as_text=True)
    with pytest.raises(StateError):
        operations.set_stratum_subjects(rnd, served, None, actor="test")
    assert [s.name for s in _stratum(_fresh(rnd.id), SERVED).rated] == [TEAM]
