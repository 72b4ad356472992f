"""An organiser prepares a round in Chromium, on the desktop and on a 360 px phone."""

from __future__ import annotations

import os
from typing import Any

from evaluation.accounts.operations import create_user
from evaluation.extensions import db
from evaluation.models import Round, RoundState
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.web import PASSWORD, SAMPLE_ROUND

# Set SCREENSHOTS=/some/dir to keep pictures of the pages for a look by eye.
SCREENSHOTS = os.environ.get("SCREENSHOTS", "")


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)


def _organiser(live_app: Any) -> None:
    with live_app.app_context():
        create_user(
            actor="t",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/兰州市局",
        )
        create_user(actor="t", username="admin", password=PASSWORD, role="admin")
        db.session.commit()


def _login(page: Any, base: str, username: str = "organiser") -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def _add_stratum(page: Any, name: str, planned: str, weight: str = "") -> None:
    page.fill("#stratum-name", name)
    page.fill("#stratum-planned", planned)
    page.fill("#stratum-weight", weight)
    page.get_by_role("button", name="添加类别").click()
    page.wait_for_load_state()


def _add_subject(page: Any, name: str, form_id: str, post: str = "", staff_no: str = "") -> None:
    page.fill("#subject-name", name)
    page.select_option("#subject-form", form_id)
    page.fill("#subject-post", post)
    page.fill("#subject-staff-no", staff_no)
    page.get_by_role("button", name="添加测评对象").click()
    page.wait_for_load_state()


def test_organiser_creates_and_opens_a_round(live_app: Any, live_server: Any, page: Any) -> None:
    _organiser(live_app)
    base = live_server.url
    _login(page, base)
    assert "还没有测评活动" in page.content()

    page.get_by_role("link", name="新建测评活动").click()
    page.wait_for_url(base + "/rounds/new")
    page.fill("#title", "2026年度党风廉政建设责任制民主测评")
    assert page.input_value("#unit_id") != ""  # the organiser's own unit is preselected
    page.fill("#year", "2026")
    page.check("text=分散（各自用手机测评）")
    page.fill("#min_turnout", "2/3")
    _shot(page, "desktop-new-round")
    page.get_by_role("button", name="创建测评活动").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text().startswith("2026年度党风廉政建设责任制民主测评")
    assert page.locator("h1 .badge").inner_text() == "草稿"
    assert "已创建测评活动" in page.locator(".flash").inner_text()
    assert "分散" in page.locator("#settings").inner_text()

    _add_stratum(page, "班子成员", "7", "0.3")
    _add_stratum(page, "中层干部", "20", "0.7")
    strata = page.locator("#strata tbody tr")
    assert strata.count() == 2
    assert strata.nth(0).inner_text().split("\t")[:3] == ["班子成员", "7", "0.3"]
    assert "应参加 27 人" in page.locator("#strata h2").inner_text()

    _add_subject(page, "市局领导班子", "gansu-team")
    _add_subject(page, "张三", "gansu-principal", "局长", "A001")
    _add_subject(page, "张三（廉洁自律）", "gansu-integrity", "局长", "A001")
    subjects = page.locator("#subjects tbody tr")
    assert subjects.count() == 3
    assert "领导干部遵守廉洁自律规定情况民主测评表" in subjects.nth(2).inner_text()
    items = page.locator("#items-gansu-integrity")
    assert "还没有填写测评内容" in items.inner_text()
    page.fill("#gansu-integrity-items", "严格执行中央八项规定精神\n管好配偶子女和身边工作人员")
    page.get_by_role("button", name="保存测评内容").click()
    page.wait_for_load_state()
    assert "已保存" in page.locator(".flash").inner_text()
    assert "还没有填写测评内容" not in page.locator("#items-gansu-integrity").inner_text()
    _shot(page, "desktop-round-draft")

    page.get_by_role("button", name="开始测评").click()
    page.wait_for_load_state()
    assert "结构锁定，不能再修改" in page.locator("main").inner_text()  # what becomes fixed
    page.get_by_role("button", name="确认开始测评").click()
    page.wait_for_load_state()
    assert page.locator("h1 .badge").inner_text() == "进行中"
    assert "已开始" in page.locator(".flash").inner_text()
    assert page.get_by_role("button", name="添加类别").count() == 0
    assert page.get_by_role("link", name="结束测评").count() == 1
    _shot(page, "desktop-round-open")

    with live_app.app_context():
        rnd = db.session.execute(db.select(Round)).scalar_one()
        assert rnd.state == RoundState.OPEN and rnd.mode == "分散"
        assert [s.name for s in rnd.strata] == ["班子成员", "中层干部"]
        assert [s.name for s in rnd.subjects] == ["市局领导班子", "张三", "张三（廉洁自律）"]
        assert rnd.subjects[1].person_id == rnd.subjects[2].person_id
        assert len(rnd.forms["gansu-integrity"]["items"]) == 2

    page.goto(base + "/")
    assert page.locator("table .badge").inner_text() == "进行中"


def test_round_page_fits_a_phone(live_app: Any, live_server: Any, phone: Any) -> None:
    _organiser(live_app)
    with live_app.app_context():
        rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="t")
        db.session.commit()
        round_id = rnd.id
    base = live_server.url
    _login(phone, base)
    for path in (f"/rounds/{round_id}", "/", "/rounds/new", f"/rounds/{round_id}/subjects/import"):
        phone.goto(base + path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (path, width)
        _shot(phone, "phone" + path.replace("/", "-"))
    phone.goto(base + f"/rounds/{round_id}")
    assert phone.get_by_role("button", name="开始测评").is_visible()
    assert phone.locator("#subjects tbody tr").count() == 5
    phone.get_by_role("button", name="退出").click()
    phone.wait_for_url(base + "/login")
    _login(phone, base, "admin")
    phone.goto(base + "/users")
    assert phone.locator("table tbody tr").count() == 2
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    _shot(phone, "phone-users")
