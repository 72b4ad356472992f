"""The organiser's year in the browser (issue 17, items 1–3): confirmation pages for 开始测评,
结束测评 and 归档; strata and subjects edited in place; drafts deleted; 复制为新活动.

Every POST goes through the real pages with CSRF on; every change is checked in the database
and the audit log, every refusal to have stored nothing.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import (
    AuditEntry,
    Code,
    Person,
    Round,
    RoundState,
    Stratum,
    Subject,
)
from evaluation.rounds import copying, lifecycle, operations
from evaluation.transactions import write_transaction
from tests.helpers.voters import Voter, full_answers, issue, open_with_codes, voted
from tests.helpers.web import AuthActions, csrf_token


def _actions(action: str) -> list[AuditEntry]:
    return list(
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action)).scalars()
    )


def _round(round_id: int) -> Round:
    db.session.expire_all()
    rnd = db.session.get(Round, round_id)
    assert rnd is not None
    return rnd


def _login(auth: AuthActions, client: FlaskClient, who: str = "organiser") -> str:
    response = auth.login(who)
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client, "/")


def _page(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _text(response: Any) -> str:
    """The page's visible words (tags dropped), for phrases that span markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", _page(response)))


def _close(rnd: Round) -> None:
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")


# --- 1. confirmation pages ---------------------------------------------------------------------


def test_open_goes_through_a_confirmation_page(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client)
    rid = sample_round.id
    detail = _page(client.get(f"/rounds/{rid}"))
    # The round page's button only leads to the confirmation (a GET form carrying the custody).
    form = re.search(
        rf'<form method="(\w+)" action="/rounds/{rid}/open" class="open-form">', detail
    )
    assert form and form.group(1) == "get"
    page = client.get(f"/rounds/{rid}/open?custody=scrutineer")
    assert page.status_code == 200
    text = _text(page)
    for words in (
        "确认开始测评？",
        "结构锁定，不能再修改",
        "测评人员类别",
        "等次规则",
        "已经发放的测评码继续有效",
        "开始不可撤销",
    ):
        assert words in text, words
    assert re.search(r'value="scrutineer"[^>]*checked|checked[^>]*value="scrutineer"', _page(page))
    assert _round(rid).state == RoundState.DRAFT and _actions("round.open") == []  # GET only asks
    token = csrf_token(client, f"/rounds/{rid}/open")
    response = client.post(f"/rounds/{rid}/open", data={"csrf_token": token, "custody": "server"})
    assert response.status_code == 303
    assert _round(rid).state == RoundState.OPEN
    assert _actions("round.open")[0].actor == "organiser"
    # An open round has no confirmation page to open it again, and no delete.
    assert client.get(f"/rounds/{rid}/open").status_code == 409
    assert client.get(f"/rounds/{rid}/delete").status_code == 409


def test_viewers_get_no_confirmation_pages(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client, "viewer")
    rid = sample_round.id
    for url in (f"/rounds/{rid}/open", f"/rounds/{rid}/delete", f"/rounds/{rid}/copy"):
        assert client.get(url).status_code == 403, url
    auth.logout()
    _login(auth, client, "other")
    for url in (f"/rounds/{rid}/open", f"/rounds/{rid}/delete", f"/rounds/{rid}/copy"):
        assert client.get(url).status_code == 404, url


def test_close_confirmation_shows_turnout_and_warns_below_the_minimum(
    app: Flask, client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    codes = open_with_codes(sample_round, 3)  # 9 codes, minimum 2/3
    voter = Voter(app.test_client())
    assert voted(voter.vote(codes["班子成员"][0], full_answers(sample_round)))
    assert voted(voter.vote(codes["中层干部"][0], full_answers(sample_round)))
    _login(auth, client)
    rid = sample_round.id
    page = client.get(f"/rounds/{rid}/close")
    text = _text(page)
    rows = re.findall(r"<tr>\s*<td[^>]*>([^<]+)</td>(.*?)</tr>", _page(page), re.S)
    figures = {
        name: re.findall(r'class="num">([^<]+)<', cells) for name, cells in rows if "num" in cells
    }
    assert figures["班子成员"] == ["7", "3", "1", "33.33%"]
    assert figures["中层干部"] == ["20", "3", "1", "33.33%"]
    assert figures["一般干部"] == ["40", "3", "0", "0.00%"]
    assert "合计 67 9 2 22.22%" in text
    assert "总参测率 22.22% 低于最低参测率 2/3（66.7%）" in text
    assert "本次测评将无效" in text
    # Enough votes: the same page says the round will be valid, with no warning.
    for code in codes["一般干部"] + codes["班子成员"][1:]:
        assert voted(voter.vote(code, full_answers(sample_round)))
    text = _text(client.get(f"/rounds/{rid}/close"))
    assert "合计 67 9 7 77.78%" in text
    assert "达到最低参测率 2/3（66.7%）：结束后本次测评有效" in text
    assert "将无效" not in text
    assert _round(rid).state == RoundState.OPEN


def test_close_confirmation_before_any_code_is_issued_warns(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    lifecycle.open_round(sample_round, actor="test")
    db.session.commit()
    _login(auth, client)
    text = _text(client.get(f"/rounds/{sample_round.id}/close"))
    assert "还没有发放测评码，现在结束，本次测评将无效" in text


def test_archive_goes_through_a_confirmation_page(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    open_with_codes(sample_round, 1)
    _close(sample_round)
    token = _login(auth, client)
    rid = sample_round.id
    detail = _page(client.get(f"/rounds/{rid}"))
    assert f'href="/rounds/{rid}/archive">归档…</a>' in detail
    assert f'action="/rounds/{rid}/archive"' not in detail  # no one-click archive
    page = client.get(f"/rounds/{rid}/archive")
    assert page.status_code == 200
    text = _text(page)
    for words in (
        "确认归档？",
        "归档是永久的",
        "5 个测评对象的结果",
        "记入本人的廉政档案",
        "责任追究",
        "廉洁自律测评满意率低于 1/3（33.3%）",
        "领导班子测评等次为不合格",
        "黄牌管理",
        # no one voted: the page says the round is invalid, and what that means in the archive
        "测评无效：参测率 0.00%（0/3）",
        "档案记录标明“无效”，不计入责任追究",
    ):
        assert words in text, words
    assert _round(rid).state == RoundState.CLOSED  # the GET only asks
    response = client.post(f"/rounds/{rid}/archive", data={"csrf_token": token})
    assert response.status_code == 303
    assert _round(rid).state == RoundState.ARCHIVED
    assert len(_actions("round.archive")) == 1
    assert client.get(f"/rounds/{rid}/archive").status_code == 409


# --- 2. editing in place, deleting drafts ------------------------------------------------------


def test_edit_a_stratum_in_place(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    middle = sample_round.strata[1]
    sid = middle.id
    assert f'href="/rounds/{rid}/strata/{sid}/edit"' in _page(client.get(f"/rounds/{rid}"))
    form = _page(client.get(f"/rounds/{rid}/strata/{sid}/edit"))
    assert 'value="中层干部"' in form and 'value="20"' in form
    response = client.post(
        f"/rounds/{rid}/strata/{sid}/edit",
        data={"csrf_token": token, "name": "中层正职", "planned": "18", "weight": "0.3"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/rounds/{rid}#strata"
    rnd = _round(rid)
    assert [(s.name, s.planned, s.weight) for s in rnd.strata] == [
        ("班子成员", 7, None),
        ("中层正职", 18, "3/10"),
        ("一般干部", 40, None),
    ]
    assert rnd.strata[1].id == sid
    [entry] = _actions("stratum.edit")
    assert entry.actor == "organiser"
    assert entry.details["before"] == {"name": "中层干部", "planned": 20, "weight": None}
    assert entry.details["after"] == {"name": "中层正职", "planned": 18, "weight": "3/10"}
    assert "中层正职" in _page(client.get(f"/rounds/{rid}"))
    # A name another stratum has is refused, with the page again and nothing stored.
    response = client.post(
        f"/rounds/{rid}/strata/{sid}/edit",
        data={"csrf_token": token, "name": "班子成员", "planned": "18"},
    )
    assert response.status_code == 400
    assert "测评人员类别“班子成员”已存在" in _page(response)
    assert _round(rid).strata[1].name == "中层正职"
    assert len(_actions("stratum.edit")) == 1


def test_edit_a_subject_in_place(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    li = sample_round.subjects[3]  # 李四, 副局长, A002
    person_id = li.person_id
    url = f"/rounds/{rid}/subjects/{li.id}/edit"
    assert f'href="{url}"' in _page(client.get(f"/rounds/{rid}"))
    form = _page(client.get(url))
    assert 'value="李四"' in form and 'value="副局长"' in form and 'value="A002"' in form
    data = {
        "csrf_token": token,
        "name": "李四",
        "form_id": "gansu-member",
        "post": "副局长（正处级）",
        "staff_no": "A002",
        "unit_id": str(li.unit_id),
    }
    response = client.post(url, data=data)
    assert response.status_code == 303
    rnd = _round(rid)
    assert [s.name for s in rnd.subjects] == [
        "市局领导班子",
        "市局纪检组",
        "张三",
        "李四",
        "张三（廉洁自律）",
    ]
    assert rnd.subjects[3].post == "副局长（正处级）"
    assert rnd.subjects[3].person_id == person_id  # the same cadre
    [entry] = _actions("subject.edit")
    assert entry.details["before"]["post"] == "副局长"
    assert entry.details["after"]["post"] == "副局长（正处级）"
    # A typo in the name and 工号 corrected: another cadre; the one only this typo made goes.
    response = client.post(url, data={**data, "name": "李思", "staff_no": "A022"})
    assert response.status_code == 303
    typo = _round(rid).subjects[3].person
    assert typo is not None and (typo.name, typo.staff_no) == ("李思", "A022")
    assert db.session.get(Person, person_id) is None  # no round and no archive named 李四 now
    response = client.post(url, data={**data, "name": "李四", "staff_no": "A002"})
    assert response.status_code == 303
    fixed = _round(rid).subjects[3].person
    assert fixed is not None and (fixed.name, fixed.staff_no) == ("李四", "A002")
    assert db.session.get(Person, typo.id) is None
    assert db.session.execute(db.select(Person).where(Person.name == "李思")).all() == []
    # Another form: its snapshot is taken, the one no subject uses any more is dropped.
    response = client.post(url, data={**data, "form_id": "gansu-principal"})
    assert response.status_code == 303
    rnd = _round(rid)
    assert rnd.subjects[3].form_id == "gansu-principal"
    assert "gansu-member" not in rnd.forms
    # A team form: no cadre.
    team = rnd.subjects[0]
    response = client.post(
        f"/rounds/{rid}/subjects/{team.id}/edit",
        data={**data, "name": "市局党组", "form_id": "gansu-team", "post": "", "staff_no": ""},
    )
    assert response.status_code == 303
    rnd = _round(rid)
    assert (rnd.subjects[0].name, rnd.subjects[0].person_id) == ("市局党组", None)
    # A name another subject has is refused.
    response = client.post(url, data={**data, "name": "张三"})
    assert response.status_code == 400
    assert "测评对象“张三”重复" in _page(response)
    assert _round(rid).subjects[3].name == "李四"


def test_edits_are_refused_after_draft(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    stratum, subject = sample_round.strata[0], sample_round.subjects[2]
    lifecycle.open_round(sample_round, actor="test")
    db.session.commit()
    before = len(db.session.execute(db.select(AuditEntry)).all())
    for url, data in (
        (f"/rounds/{rid}/strata/{stratum.id}/edit", {"name": "改名", "planned": "1"}),
        (
            f"/rounds/{rid}/subjects/{subject.id}/edit",
            {"name": "改名", "form_id": "gansu-principal", "unit_id": str(subject.unit_id)},
        ),
        (f"/rounds/{rid}/delete", {}),
    ):
        assert client.get(url).status_code == 409, url
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 409, url
        assert "当前为进行中状态" in _page(response)
    rnd = _round(rid)
    assert rnd.strata[0].name == "班子成员" and rnd.subjects[2].name == "张三"
    assert len(db.session.execute(db.select(AuditEntry)).all()) == before
    page = _page(client.get(f"/rounds/{rid}"))
    assert "/edit" not in page and "删除草稿" not in page


def test_delete_a_draft_round(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    issue(sample_round, "班子成员", 2)  # codes issued in draft go with it
    lonely = Person(name="王五", unit=sample_round.unit, staff_no="B007", post="科长")
    db.session.add(lonely)
    db.session.flush()
    operations.add_subject(
        sample_round, actor="t", name="王五", form_id="gansu-member", staff_no="B007", scope=None
    )
    db.session.commit()
    lonely_id = lonely.id
    assert f'href="/rounds/{rid}/delete"' in _page(client.get(f"/rounds/{rid}"))
    confirm = _text(client.get(f"/rounds/{rid}/delete"))
    assert "确认删除草稿？" in confirm and "不能恢复" in confirm
    assert sample_round.title in _page(client.get("/"))
    response = client.post(f"/rounds/{rid}/delete", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    db.session.expire_all()
    assert db.session.get(Round, rid) is None
    assert db.session.execute(db.select(Stratum)).all() == []
    assert db.session.execute(db.select(Subject)).all() == []
    assert db.session.execute(db.select(Code)).all() == []
    assert db.session.get(Person, lonely_id) is None  # only this draft named them
    listing = _page(client.get("/"))
    assert "已删除草稿测评活动" in listing
    assert f'href="/rounds/{rid}"' not in listing
    [entry] = _actions("round.delete")
    assert entry.actor == "organiser"
    assert entry.details == {
        "round_id": rid,
        "title": sample_round.title,
        "year": 2026,
        "unit": "甘肃省局/兰州市局",
        "strata": 3,
        "subjects": 6,
    }
    assert client.get(f"/rounds/{rid}").status_code == 404


def test_deleting_a_draft_keeps_cadres_other_rounds_name(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    copy = copying.copy_round(sample_round, actor="t", year=2027, title="2027年度")
    db.session.commit()
    people = {s.person_id for s in copy.subjects if s.person_id}
    assert len(people) == 2
    token = _login(auth, client)
    response = client.post(f"/rounds/{copy.id}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    assert all(db.session.get(Person, pid) is not None for pid in people)
    assert len(_round(sample_round.id).subjects) == 5


def test_delete_without_the_pages_token_is_refused(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client)
    response = client.post(f"/rounds/{sample_round.id}/delete", data={})
    assert response.status_code == 400
    assert _round(sample_round.id).state == RoundState.DRAFT
    assert _actions("round.delete") == []


# --- 3. 复制为新活动 ----------------------------------------------------------------------------


def _edited_round(rnd: Round) -> Round:
    """The sample round with what a copy must carry: weights, a limited stratum, an edited
    threshold, another minimum turnout, 分散."""
    rnd.strata[0].weight = "3/10"
    rnd.strata[1].weight = "7/10"
    operations.set_stratum_subjects(
        rnd, rnd.strata[2], [rnd.subjects[0].id, rnd.subjects[1].id], actor="t"
    )
    operations.set_rule_thresholds(rnd, {("gansu-team", 0): "40%"}, actor="t")
    rnd.min_turnout = "4/5"
    rnd.mode = "分散"
    rnd.kind = "上级抽测"
    db.session.commit()
    return rnd


def test_copy_form_defaults_to_next_year(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client)
    rid = sample_round.id
    assert f'href="/rounds/{rid}/copy">复制为新活动</a>' in _page(client.get(f"/rounds/{rid}"))
    form = _page(client.get(f"/rounds/{rid}/copy"))
    assert 'value="2027"' in form
    assert 'value="2027年度党风廉政建设责任制民主测评"' in form
    assert "以下干部的职务或单位已有变动" not in form  # nobody moved
    assert copying.default_title("民主测评", 2026, 2027) == "民主测评"


def test_copy_carries_the_whole_structure(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    source = _edited_round(sample_round)
    token = _login(auth, client)
    rid = source.id
    response = client.post(
        f"/rounds/{rid}/copy",
        data={"csrf_token": token, "year": "2027", "title": "2027年度党风廉政建设测评"},
    )
    assert response.status_code == 303
    copy = db.session.execute(db.select(Round).where(Round.id != rid)).scalar_one()
    assert response.headers["Location"] == f"/rounds/{copy.id}"
    assert "已复制为新活动“2027年度党风廉政建设测评”" in _page(client.get(f"/rounds/{copy.id}"))
    source = _round(rid)
    assert (copy.title, copy.year, copy.state) == (
        "2027年度党风廉政建设测评",
        2027,
        RoundState.DRAFT,
    )
    assert (copy.unit_id, copy.mode, copy.kind, copy.min_turnout) == (
        source.unit_id,
        "分散",
        "上级抽测",
        "4/5",
    )
    assert (copy.opens_at, copy.closes_at) == (None, None)
    assert [(s.name, s.planned, s.weight, s.rates_all) for s in copy.strata] == [
        (s.name, s.planned, s.weight, s.rates_all) for s in source.strata
    ]
    assert [s.name for s in copy.strata[2].rated] == ["市局领导班子", "市局纪检组"]
    assert [(s.name, s.form_id, s.post, s.person_id, s.unit_id) for s in copy.subjects] == [
        (s.name, s.form_id, s.post, s.person_id, s.unit_id) for s in source.subjects
    ]
    assert copy.rule_set == source.rule_set
    assert copy.rule_set is not None
    assert copy.rule_set["forms"]["gansu-team"][0]["at_least"] == "2/5"
    assert copy.forms["gansu-team"]["rules"] == source.forms["gansu-team"]["rules"]
    assert copy.forms["gansu-integrity"]["items"] == source.forms["gansu-integrity"]["items"]
    assert set(copy.forms) == set(source.forms)
    [entry] = _actions("round.copy")
    assert entry.actor == "organiser"
    assert entry.details["source_round_id"] == rid and entry.details["round_id"] == copy.id
    assert entry.details["subjects"] == 5 and entry.details["took_current"] == []
    # The copy is an ordinary draft: it opens.
    lifecycle.open_round(copy, actor="t")
    db.session.commit()
    assert _round(copy.id).state == RoundState.OPEN


def test_copy_lists_moved_cadres_for_confirmation(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    rid = sample_round.id
    zhang, li = sample_round.subjects[2].person, sample_round.subjects[3].person
    assert zhang is not None and li is not None
    county = ensure_unit("甘肃省局/兰州市局/城关区局")
    operations.change_person(zhang, post="党组书记、局长", unit=zhang.unit, actor="t")
    operations.change_person(li, post="局长", unit=county, actor="t")
    db.session.commit()
    token = _login(auth, client)
    form = _page(client.get(f"/rounds/{rid}/copy"))
    assert "以下干部的职务或单位已有变动" in form
    rows = re.findall(r'name="take_current" value="(\d+)"[^>]*checked', form)
    assert sorted(int(r) for r in rows) == sorted([zhang.id, li.id])  # offered ticked
    assert "张三（廉洁自律）" in form and "甘肃省局/兰州市局/城关区局" in form
    # Take 李四's move, keep 张三's old post.
    response = client.post(
        f"/rounds/{rid}/copy",
        data={
            "csrf_token": token,
            "year": "2027",
            "title": "2027年度测评",
            "listed": [str(zhang.id), str(li.id)],
            "take_current": [str(li.id)],
        },
    )
    assert response.status_code == 303, _page(response)
    copy = db.session.execute(db.select(Round).where(Round.id != rid)).scalar_one()
    by_name = {s.name: s for s in copy.subjects}
    assert (by_name["李四"].post, by_name["李四"].unit.path) == (
        "局长",
        "甘肃省局/兰州市局/城关区局",
    )
    assert (by_name["张三"].post, by_name["张三"].unit.path) == ("局长", "甘肃省局/兰州市局")
    assert by_name["张三（廉洁自律）"].post == ""
    assert _actions("round.copy")[0].details["took_current"] == ["李四"]
    # The source round is unchanged.
    assert _round(rid).subjects[3].post == "副局长"


def test_copy_asks_again_when_someone_moved_meanwhile(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    li = sample_round.subjects[3].person
    assert li is not None
    operations.change_person(li, post="局长", unit=li.unit, actor="t")
    db.session.commit()
    # The form was shown before the move: nobody listed.
    response = client.post(
        f"/rounds/{rid}/copy", data={"csrf_token": token, "year": "2027", "title": "2027年度"}
    )
    assert response.status_code == 400
    assert "名单已更新，请重新确认" in _page(response)
    assert _actions("round.copy") == []


def test_copy_refuses_bad_input_and_works_from_any_state(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    for data, message in (
        ({"year": "27", "title": "x"}, "年度应为 1990 到 2100"),
        ({"year": "2027", "title": " "}, "请填写测评活动名称"),
    ):
        response = client.post(f"/rounds/{rid}/copy", data={"csrf_token": token, **data})
        assert response.status_code == 400
        assert message in _page(response)
    assert len(db.session.execute(db.select(Round)).all()) == 1
    with write_transaction():
        lifecycle.void_round(sample_round, actor="t", reason="测试")
    page = _page(client.get(f"/rounds/{rid}"))
    assert f'href="/rounds/{rid}/copy"' in page
    response = client.post(
        f"/rounds/{rid}/copy", data={"csrf_token": token, "year": "2026", "title": "重建"}
    )
    assert response.status_code == 303
    copy = db.session.execute(db.select(Round).where(Round.id != rid)).scalar_one()
    assert copy.state == RoundState.DRAFT and len(copy.subjects) == 5
