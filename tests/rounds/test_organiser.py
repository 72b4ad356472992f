"""Organiser pages: the round list, creating and importing rounds, a round's structure, states.

Every POST goes through the real pages with CSRF on; every change is checked in the database
and in the audit log, and every refusal is checked to have stored nothing.
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.extensions import db
from evaluation.models import ArchiveEntry, AuditEntry, Round, RoundState, Stratum, Subject, Unit
from evaluation.rounds import lifecycle, state
from tests.helpers.web import SAMPLE_ROUND, AuthActions, csrf_token


def _actions(action: str) -> list[AuditEntry]:
    return list(
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action)).scalars()
    )


def _rounds() -> list[Round]:
    db.session.expire_all()
    return list(db.session.execute(db.select(Round).order_by(Round.id)).scalars())


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


NEW_ROUND = {
    "title": "2026年度党风廉政建设责任制民主测评",
    "year": "2026",
    "mode": "集中",
    "kind": "本级自测",
    "min_turnout": "2/3",
    "opens_at": "",
    "closes_at": "",
}


# --- the round list ----------------------------------------------------------------------------


def test_round_list_needs_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_round_list_shows_buttons_and_badges_to_organisers_only(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client, "organiser")
    page = _page(client.get("/"))
    assert "新建测评活动" in page and "从测评文件导入" in page
    assert sample_round.title in page
    assert 'class="badge state-draft">草稿<' in page
    auth.logout()
    _login(auth, client, "viewer")
    page = _page(client.get("/"))
    assert sample_round.title in page
    assert "新建测评活动" not in page and "从测评文件导入" not in page


def test_round_list_is_scoped_to_the_users_units(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client, "other")  # 甘肃省局/天水市局
    page = _page(client.get("/"))
    assert sample_round.title not in page
    assert "还没有测评活动" in page
    auth.logout()
    _login(auth, client, "admin")
    assert sample_round.title in _page(client.get("/"))


# --- creating a round --------------------------------------------------------------------------


def test_create_round_through_the_page(client: FlaskClient, auth: AuthActions, users: Any) -> None:
    token = _login(auth, client)
    form = _page(client.get("/rounds/new"))
    assert "甘肃省局/兰州市局" in form and "甘肃省局/天水市局" not in form
    unit_id = users["organiser"].unit_id
    data = {
        **NEW_ROUND,
        "csrf_token": token,
        "unit_id": str(unit_id),
        "mode": "分散",
        "kind": "上级抽测",
        "min_turnout": "0.8",
        "opens_at": "2026-12-01T09:00",
        "closes_at": "2026-12-03T17:30",
    }
    response = client.post("/rounds/new", data=data)
    assert response.status_code == 303
    [rnd] = _rounds()
    assert response.headers["Location"] == f"/rounds/{rnd.id}"
    assert (rnd.title, rnd.year, rnd.mode, rnd.kind) == (
        NEW_ROUND["title"],
        2026,
        "分散",
        "上级抽测",
    )
    assert rnd.min_turnout == "4/5"
    assert rnd.state == RoundState.DRAFT
    # 09:00 Beijing time is 01:00 UTC
    assert rnd.opens_at is not None
    opens = rnd.opens_at if rnd.opens_at.tzinfo else rnd.opens_at.replace(tzinfo=UTC)
    assert opens == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    [entry] = _actions("round.create")
    assert entry.actor == "organiser" and entry.details["round_id"] == rnd.id
    page = _page(client.get(f"/rounds/{rnd.id}"))
    assert "已创建测评活动" in page
    assert "2026年12月1日 09:00" in page and "2026年12月3日 17:30" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": ""}, "请填写测评活动名称"),
        ({"year": "二〇二六"}, "不是有效的整数"),
        ({"year": "1900"}, "年度应为 1990 到 2100 之间的四位数字"),
        ({"min_turnout": "三分之二"}, "不是有效的比例"),
        ({"min_turnout": "3/2"}, "应在 0 到 1 之间"),
        ({"mode": "线上"}, "不是有效的选择"),
        (
            {"opens_at": "2026-12-03T09:00", "closes_at": "2026-12-01T09:00"},
            "计划结束时间应晚于计划开始时间",
        ),
        ({"opens_at": "明天"}, "不是有效的日期与时间值"),
    ],
)
def test_create_round_refuses_bad_input(
    client: FlaskClient, auth: AuthActions, users: Any, change: dict[str, str], message: str
) -> None:
    token = _login(auth, client)
    data = {**NEW_ROUND, "csrf_token": token, "unit_id": str(users["organiser"].unit_id)}
    response = client.post("/rounds/new", data={**data, **change})
    assert response.status_code == 400
    assert message in _page(response)
    assert _rounds() == []
    assert _actions("round.create") == []


def test_organiser_cannot_create_a_round_for_another_unit(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client)
    other_unit = users["other"].unit_id
    data = {**NEW_ROUND, "csrf_token": token, "unit_id": str(other_unit)}
    response = client.post("/rounds/new", data=data)
    assert response.status_code == 400
    assert "不是有效的选择" in _page(response)
    assert _rounds() == []


def test_the_round_form_picks_units_and_never_creates_one(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client, "admin")
    page = _page(client.get("/rounds/new"))
    assert 'name="new_unit"' not in page and "甘肃省局/天水市局" in page
    units = len(db.session.execute(db.select(Unit)).all())
    data = {**NEW_ROUND, "csrf_token": token, "unit_id": "0", "new_unit": "甘肃省局/酒泉市局"}
    response = client.post("/rounds/new", data=data)
    assert response.status_code == 400 and "请选择所属单位" in _page(response)
    assert len(db.session.execute(db.select(Unit)).all()) == units
    assert _rounds() == []
    data = {**data, "unit_id": str(users["other"].unit_id)}
    assert client.post("/rounds/new", data=data).status_code == 303
    [rnd] = _rounds()
    assert rnd.unit.path == "甘肃省局/天水市局"


def test_viewer_cannot_create_or_edit(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client, "viewer")
    for url in ("/rounds/new", "/rounds/import", f"/rounds/{sample_round.id}/edit"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "您的账号没有执行此操作的权限" in _page(response)
    data = {**NEW_ROUND, "csrf_token": token, "unit_id": str(users["viewer"].unit_id)}
    assert client.post("/rounds/new", data=data).status_code == 403
    response = client.post(
        f"/rounds/{sample_round.id}/strata",
        data={"csrf_token": token, "name": "服务对象", "planned": "5"},
    )
    assert response.status_code == 403
    assert len(_round(sample_round.id).strata) == 3
    page = _page(client.get(f"/rounds/{sample_round.id}"))
    assert sample_round.title in page
    rid = sample_round.id
    for control in ("/open", "/strata", "/subjects", "/edit", "/void", "/subjects/import"):
        assert f'action="/rounds/{rid}{control}"' not in page, control
        assert f'href="/rounds/{rid}{control}"' not in page, control
    assert "添加类别" not in page and "修改设置" not in page and "作废原因" not in page


# --- importing a round file --------------------------------------------------------------------


def _upload(text: str | bytes, name: str = "round.toml") -> tuple[Any, str]:
    import io

    raw = text.encode("utf-8") if isinstance(text, str) else text
    return (io.BytesIO(raw), name)


def test_import_round_file_through_the_page(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client)
    response = client.post(
        "/rounds/import",
        data={"csrf_token": token, "file": _upload(SAMPLE_ROUND, "2026.toml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    [rnd] = _rounds()
    assert len(rnd.strata) == 3 and len(rnd.subjects) == 5
    [entry] = _actions("round.import")
    assert entry.actor == "organiser" and entry.details["source"] == "2026.toml"
    assert "3 个类别，5 个测评对象" in _page(client.get(response.headers["Location"]))


def test_import_round_file_lists_every_problem_and_imports_nothing(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client)
    bad = SAMPLE_ROUND.replace('form = "gansu-discipline"', 'form = "gansu-nothing"').replace(
        "codes = 20", "codes = -1"
    )
    response = client.post(
        "/rounds/import",
        data={"csrf_token": token, "file": _upload(bad)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = _page(response)
    assert "2 处错误，未导入任何内容" in page
    assert "第 2 个 [[strata]]：codes 应为非负整数" in page
    assert "测评表“gansu-nothing”不存在" in page
    assert _rounds() == []
    for content, message in (
        ("title = [", "不是有效的 TOML"),
        ("\xff\xfe".encode("latin-1"), "不是 UTF-8 编码"),
    ):
        response = client.post(
            "/rounds/import",
            data={"csrf_token": token, "file": _upload(content)},
            content_type="multipart/form-data",
        )
        assert response.status_code == 400 and message in _page(response)
    response = client.post("/rounds/import", data={"csrf_token": token})
    assert response.status_code == 400 and "请选择测评文件" in _page(response)
    assert _rounds() == []


def test_import_round_file_for_another_unit_is_refused(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client, "other")  # 天水市局; the file is for 兰州市局
    response = client.post(
        "/rounds/import",
        data={"csrf_token": token, "file": _upload(SAMPLE_ROUND)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "不在您的管辖范围内" in _page(response)
    assert _rounds() == []


# --- a round's page ----------------------------------------------------------------------------


def test_round_detail_shows_the_whole_draft(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client)
    page = _page(client.get(f"/rounds/{sample_round.id}"))
    for text in (
        "班子成员",
        "中层干部",
        "应参加 67 人",
        "市局领导班子",
        "领导班子执行党风廉政建设责任制情况民主测评表",
        "A001",
        "本次测评内容：领导干部遵守廉洁自律规定情况民主测评表",
        "严格执行中央八项规定精神\n管好配偶子女和身边工作人员",
        "开始测评",
        "添加类别",
        "添加测评对象",
        "从 Excel 导入",
        "修改设置",
        "下载测评文件",
        "作废原因",
    ):
        assert text in page, text


def test_round_of_another_unit_is_not_found(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client, "other")
    for url in (f"/rounds/{sample_round.id}", f"/rounds/{sample_round.id}/export.toml"):
        response = client.get(url)
        assert response.status_code == 404
        assert "不存在或不在您的管辖范围内" in _page(response)
    response = client.post(f"/rounds/{sample_round.id}/open", data={"csrf_token": token})
    assert response.status_code == 404
    assert _round(sample_round.id).state == RoundState.DRAFT
    assert client.get("/rounds/99999").status_code == 404


def test_edit_settings_in_draft(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    url = f"/rounds/{sample_round.id}/edit"
    assert sample_round.title in _page(client.get(url))
    data = {**NEW_ROUND, "csrf_token": token, "title": "改过的名称", "year": "2027"}
    response = client.post(url, data=data)
    assert response.status_code == 303
    rnd = _round(sample_round.id)
    assert (rnd.title, rnd.year) == ("改过的名称", 2027)
    assert _actions("round.update")[0].details["title"] == "改过的名称"


# --- strata, subjects, items -------------------------------------------------------------------


def test_add_and_remove_strata(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    response = client.post(
        f"/rounds/{rid}/strata",
        data={"csrf_token": token, "name": "服务对象", "planned": "12", "weight": "1/4"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/rounds/{rid}#strata"
    rnd = _round(rid)
    added = rnd.strata[-1]
    assert (added.name, added.planned, added.weight) == ("服务对象", 12, "1/4")
    assert _actions("stratum.add")[-1].details["name"] == "服务对象"
    response = client.post(f"/rounds/{rid}/strata/{added.id}/remove", data={"csrf_token": token})
    assert response.status_code == 303
    assert [s.name for s in _round(rid).strata] == ["班子成员", "中层干部", "一般干部"]
    assert _actions("stratum.remove")[-1].details["name"] == "服务对象"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "班子成员", "planned": "3"}, "测评人员类别“班子成员”已存在"),
        ({"name": "", "planned": "3"}, "请填写类别名称"),
        ({"name": "服务对象", "planned": "-2"}, "应为非负整数"),
        ({"name": "服务对象", "planned": "很多"}, "不是有效的整数"),
        ({"name": "服务对象", "planned": "3", "weight": "abc"}, "不是有效的比例"),
        ({"name": "服务对象", "planned": "3", "weight": "0"}, "权重应大于 0"),
    ],
)
def test_bad_stratum_is_refused_with_a_message(
    client: FlaskClient,
    auth: AuthActions,
    users: Any,
    sample_round: Round,
    data: dict[str, str],
    message: str,
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    response = client.post(f"/rounds/{rid}/strata", data={"csrf_token": token, **data})
    assert response.status_code == 400
    page = _page(response)
    assert message in page
    # the page comes back with what was typed, and the other forms stay empty
    [typed] = re.findall(r'<input id="stratum-name"[^>]*value="([^"]*)"', page)
    assert typed == data["name"]
    assert re.findall(r'<input id="subject-name"[^>]*value="([^"]*)"', page) == [""]
    assert len(_round(rid).strata) == 3
    assert len(_actions("stratum.add")) == 3  # only the import's three


def test_add_subjects_and_per_round_items(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client)
    unit_id = users["organiser"].unit_id
    client.post("/rounds/new", data={**NEW_ROUND, "csrf_token": token, "unit_id": str(unit_id)})
    [rnd] = _rounds()
    rid = rnd.id
    response = client.post(
        f"/rounds/{rid}/subjects",
        data={
            "csrf_token": token,
            "name": "王五",
            "form_id": "gansu-integrity",
            "post": "副局长",
            "staff_no": "B007",
        },
    )
    assert response.status_code == 303
    page = _page(client.get(f"/rounds/{rid}"))
    assert "已添加测评对象“王五”" in page
    assert "还没有填写测评内容" in page
    response = client.post(
        f"/rounds/{rid}/forms/gansu-integrity/items",
        data={"csrf_token": token, "gansu-integrity-items": "廉洁用权\n\n  家风建设  \n"},
    )
    assert response.status_code == 303
    rnd = _round(rid)
    [subject] = rnd.subjects
    assert subject.person is not None and subject.person.staff_no == "B007"
    assert [i["text"] for i in rnd.forms["gansu-integrity"]["items"]] == ["廉洁用权", "家风建设"]
    assert _actions("subject.add")[-1].details == {
        "round_id": rid,
        "name": "王五",
        "form": "gansu-integrity",
    }
    assert _actions("form.items")[-1].details["items"] == 2
    # a form without per-round items has no such page
    response = client.post(
        f"/rounds/{rid}/forms/gansu-team/items",
        data={"csrf_token": token, "gansu-team-items": "x"},
    )
    assert response.status_code == 404
    # duplicates and unknown forms are refused
    for data, message in (
        ({"name": "王五", "form_id": "gansu-team"}, "测评对象“王五”重复"),
        ({"name": "赵六", "form_id": "gansu-nothing"}, "不是有效的选择"),
        ({"name": "", "form_id": "gansu-team"}, "请填写测评对象"),
    ):
        response = client.post(f"/rounds/{rid}/subjects", data={"csrf_token": token, **data})
        assert response.status_code == 400
        assert message in _page(response), message
    assert len(_round(rid).subjects) == 1
    response = client.post(
        f"/rounds/{rid}/subjects/{subject.id}/remove", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert _round(rid).subjects == []
    assert _actions("subject.remove")[-1].details["name"] == "王五"


def test_structure_edits_outside_draft_are_refused(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    assert client.post(f"/rounds/{rid}/open", data={"csrf_token": token}).status_code == 303
    stratum_id = sample_round.strata[0].id
    subject_id = sample_round.subjects[0].id
    attempts = [
        (f"/rounds/{rid}/strata", {"name": "服务对象", "planned": "3"}),
        (f"/rounds/{rid}/strata/{stratum_id}/remove", {}),
        (f"/rounds/{rid}/subjects", {"name": "赵六", "form_id": "gansu-team"}),
        (f"/rounds/{rid}/subjects/{subject_id}/remove", {}),
        (f"/rounds/{rid}/forms/gansu-integrity/items", {"gansu-integrity-items": "新内容"}),
        (f"/rounds/{rid}/edit", {**NEW_ROUND, "title": "改名"}),
        (f"/rounds/{rid}/open", {}),
        (f"/rounds/{rid}/archive", {}),
    ]
    before = len(db.session.execute(db.select(AuditEntry)).all())
    for url, data in attempts:
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 409, url
        page = _page(response)
        assert "当前为进行中状态" in page, url
    assert client.get(f"/rounds/{rid}/edit").status_code == 409
    assert client.get(f"/rounds/{rid}/subjects/import").status_code == 409
    rnd = _round(rid)
    assert rnd.title == sample_round.title
    assert len(rnd.strata) == 3 and len(rnd.subjects) == 5
    assert len(db.session.execute(db.select(AuditEntry)).all()) == before
    page = _page(client.get(f"/rounds/{rid}"))
    assert "添加类别" not in page and "删除" not in page and "结束测评" in page


# --- states ------------------------------------------------------------------------------------


def test_open_needs_strata_and_subjects(client: FlaskClient, auth: AuthActions, users: Any) -> None:
    token = _login(auth, client)
    data = {**NEW_ROUND, "csrf_token": token, "unit_id": str(users["organiser"].unit_id)}
    client.post("/rounds/new", data=data)
    [rnd] = _rounds()
    response = client.post(f"/rounds/{rnd.id}/open", data={"csrf_token": token})
    assert response.status_code == 303
    assert "请先添加至少一个测评人员类别" in _page(client.get(response.headers["Location"]))
    assert _round(rnd.id).state == RoundState.DRAFT
    assert _actions("round.open") == []


def test_open_close_archive_through_the_pages(
    client: FlaskClient,
    auth: AuthActions,
    users: Any,
    sample_round: Round,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    response = client.post(f"/rounds/{rid}/open", data={"csrf_token": token})
    assert response.status_code == 303
    assert "已开始" in _page(client.get(f"/rounds/{rid}"))
    assert _round(rid).state == RoundState.OPEN
    assert _actions("round.open")[0].actor == "organiser"
    confirm = _page(client.get(f"/rounds/{rid}/close"))
    assert "确认结束测评" in confirm and "结束不可撤销" in confirm
    assert _round(rid).state == RoundState.OPEN  # the GET only asks
    scrubbed: list[bool] = []
    real_scrub = lifecycle.scrub_dead_rows

    def scrub() -> None:
        # runs after the close has committed
        assert db.session.get(Round, rid) is not None
        scrubbed.append(True)
        real_scrub()

    monkeypatch.setattr(lifecycle, "scrub_dead_rows", scrub)
    response = client.post(f"/rounds/{rid}/close", data={"csrf_token": token})
    assert response.status_code == 303
    assert scrubbed == [True]
    rnd = _round(rid)
    assert rnd.state == RoundState.CLOSED and rnd.closed_at is not None
    assert _actions("round.close")[0].actor == "organiser"
    page = _page(client.get(f"/rounds/{rid}"))
    assert "已结束" in page and "归档" in page
    response = client.post(f"/rounds/{rid}/archive", data={"csrf_token": token})
    assert response.status_code == 303
    entries = db.session.execute(db.select(ArchiveEntry).where(ArchiveEntry.round_id == rid)).all()
    assert len(entries) == 5  # one 廉政档案 entry per subject
    assert _round(rid).state == RoundState.ARCHIVED
    assert _actions("round.archive")[0].actor == "organiser"
    assert "作废" not in _page(client.get(f"/rounds/{rid}")).split("</header>")[1]


def test_void_needs_a_reason(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    response = client.post(f"/rounds/{rid}/void", data={"csrf_token": token, "reason": "  "})
    assert response.status_code == 400
    assert "作废必须填写原因" in _page(response)
    assert _round(rid).state == RoundState.DRAFT
    response = client.post(
        f"/rounds/{rid}/void", data={"csrf_token": token, "reason": "测评对象名单有误"}
    )
    assert response.status_code == 303
    rnd = _round(rid)
    assert rnd.state == RoundState.VOID and rnd.void_reason == "测评对象名单有误"
    assert _actions("round.void")[0].details["reason"] == "测评对象名单有误"
    assert "原因：测评对象名单有误" in _page(client.get(f"/rounds/{rid}"))
    response = client.post(f"/rounds/{rid}/void", data={"csrf_token": token, "reason": "再次"})
    assert response.status_code == 409


def test_export_round_file_round_trips(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    response = client.get(f"/rounds/{sample_round.id}/export.toml")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = tomllib.loads(response.get_data(as_text=True))
    assert data["title"] == sample_round.title and data["unit"] == "甘肃省局/兰州市局"
    assert [s["name"] for s in data["subjects"]][-1] == "张三（廉洁自律）"
    # copy to next year through the import page
    text = response.get_data(as_text=True).replace("year = 2026", "year = 2027")
    response = client.post(
        "/rounds/import",
        data={"csrf_token": token, "file": _upload(text, "copy.toml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    copy = _rounds()[-1]
    assert copy.year == 2027 and len(copy.subjects) == 5
    assert copy.forms["gansu-integrity"]["items"] == sample_round.forms["gansu-integrity"]["items"]


def test_links_to_other_areas_follow_the_state(
    app: Flask, client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    rid = sample_round.id
    installed = set(app.view_functions)

    def shown(page: str) -> set[str]:
        links = {
            "voting.preview": f'href="/rounds/{rid}/preview"',
            "codes.codes_page": f'href="/rounds/{rid}/codes"',
            "codes.turnout": f'href="/rounds/{rid}/turnout"',
            "reports.round_results": f'href="/rounds/{rid}/results"',
        }
        return {endpoint for endpoint, href in links.items() if href in page}

    draft = _page(client.get(f"/rounds/{rid}"))
    assert shown(draft) == {"voting.preview", "codes.codes_page"} & installed
    client.post(f"/rounds/{rid}/open", data={"csrf_token": token})
    opened = _page(client.get(f"/rounds/{rid}"))
    assert shown(opened) == {"voting.preview", "codes.codes_page", "codes.turnout"} & installed
    client.post(f"/rounds/{rid}/close", data={"csrf_token": token})
    closed = _page(client.get(f"/rounds/{rid}"))
    assert shown(closed) == {"voting.preview", "codes.turnout", "reports.round_results"} & installed


# --- CSRF and error pages ----------------------------------------------------------------------


def test_post_without_csrf_token_is_refused(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    _login(auth, client)
    rid = sample_round.id
    before = len(db.session.execute(db.select(AuditEntry)).all())
    for url, data in (
        (f"/rounds/{rid}/strata", {"name": "服务对象", "planned": "3"}),
        (f"/rounds/{rid}/open", {}),
        ("/rounds/new", {**NEW_ROUND, "unit_id": str(users["organiser"].unit_id)}),
        (f"/rounds/{rid}/void", {"reason": "x"}),
    ):
        response = client.post(url, data=data)
        assert response.status_code == 400, url
        assert "CSRF 校验失败" in _page(response)
    rnd = _round(rid)
    assert rnd.state == RoundState.DRAFT and len(rnd.strata) == 3
    assert len(_rounds()) == 1
    assert len(db.session.execute(db.select(AuditEntry)).all()) == before


def test_error_pages_are_chinese(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    def boom() -> str:
        raise RuntimeError("deliberate failure for the test")

    app.add_url_rule("/test-boom", "test_boom", boom)
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "页面不存在" in _page(response)
    response = client.get("/test-boom")
    assert response.status_code == 500 and "系统出现错误" in _page(response)
    assert "RuntimeError" not in _page(response) and "Traceback" not in _page(response)


def test_forbidden_page_is_chinese(client: FlaskClient, auth: AuthActions, users: Any) -> None:
    _login(auth, client, "organiser")
    response = client.get("/users")
    assert response.status_code == 403
    assert "无权操作" in _page(response) and "没有执行此操作的权限" in _page(response)


def test_removing_a_stratum_of_another_round_is_not_found(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    from evaluation.rounds.round_file import import_round, parse_round_text

    second = import_round(parse_round_text(SAMPLE_ROUND), actor="test")
    db.session.commit()
    token = _login(auth, client)
    foreign: Stratum = second.strata[0]
    foreign_subject: Subject = second.subjects[0]
    rid = sample_round.id
    r1 = client.post(f"/rounds/{rid}/strata/{foreign.id}/remove", data={"csrf_token": token})
    r2 = client.post(
        f"/rounds/{rid}/subjects/{foreign_subject.id}/remove", data={"csrf_token": token}
    )
    assert r1.status_code == 404 and r2.status_code == 404
    assert len(_round(second.id).strata) == 3 and len(_round(second.id).subjects) == 5
    assert state.state_label(_round(rid).state) == "草稿"
