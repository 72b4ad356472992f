"""复制为新活动 in Chromium: last year's round copied to the next year, a moved cadre
confirmed, the copy opened through the 开始测评 confirmation page; the pages fit a phone."""

from __future__ import annotations

import re
from typing import Any

from evaluation.accounts.operations import create_user
from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import Round, RoundState
from evaluation.rounds import lifecycle, operations
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.transactions import write_transaction
from tests.helpers.web import PASSWORD, SAMPLE_ROUND

TIMEOUT = 30_000  # generous: the machine is shared


def _last_year(live_app: Any) -> int:
    """The sample round, held and closed in 2026; 李四 has since moved to a county bureau."""
    with live_app.app_context():
        create_user(
            actor="t",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/兰州市局",
        )
        rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="t")
        db.session.commit()
        lifecycle.open_round(rnd, actor="t")
        db.session.commit()
        with write_transaction():
            lifecycle.close_round(rnd, actor="t")
        li = rnd.subjects[3].person
        assert li is not None
        county = ensure_unit("甘肃省局/兰州市局/城关区局")
        operations.change_person(li, post="局长", unit=county, actor="t")
        db.session.commit()
        return rnd.id


def _login(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", "organiser")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_copy_a_round_to_next_year_and_open_it(live_app: Any, live_server: Any, page: Any) -> None:
    page.set_default_timeout(TIMEOUT)
    source_id = _last_year(live_app)
    base = live_server.url
    _login(page, base)

    page.goto(f"{base}/rounds/{source_id}")
    page.get_by_role("link", name="复制为新活动").click()
    page.wait_for_url(f"{base}/rounds/{source_id}/copy")
    assert page.input_value("#year") == "2027"
    assert page.input_value("#title") == "2027年度党风廉政建设责任制民主测评"
    moved = page.locator("fieldset.moved-people tbody tr")
    assert moved.count() == 1
    assert "李四" in moved.inner_text() and "甘肃省局/兰州市局/城关区局" in moved.inner_text()
    take = moved.get_by_role("checkbox")
    assert take.is_checked()  # offered: take the current 职务 and unit
    page.get_by_role("button", name="复制并打开新活动").click()

    page.wait_for_url(re.compile(rf"{re.escape(base)}/rounds/(?!{source_id}\b)\d+$"))
    copy_id = int(page.url.rsplit("/", 1)[1])
    assert "已复制为新活动" in page.locator(".flash").inner_text()
    assert page.locator("h1").inner_text().startswith("2027年度党风廉政建设责任制民主测评")
    assert page.locator("h1 .badge").inner_text() == "草稿"
    assert page.locator("#strata tbody tr").count() == 3
    subjects = page.locator("#subjects tbody tr")
    assert subjects.count() == 5
    li_row = subjects.nth(3).inner_text()
    assert "局长" in li_row and "甘肃省局/兰州市局/城关区局" in li_row

    # 开始测评 leads to the confirmation page; only its button opens the copy.
    page.get_by_role("button", name="开始测评").click()
    page.wait_for_url(re.compile(rf"/rounds/{copy_id}/open"))
    assert "结构锁定，不能再修改" in page.locator("main").inner_text()
    with live_app.app_context():
        assert db.session.get_one(Round, copy_id).state == RoundState.DRAFT
    page.get_by_role("button", name="确认开始测评").click()
    page.wait_for_url(f"{base}/rounds/{copy_id}")
    assert page.locator("h1 .badge").inner_text() == "进行中"
    with live_app.app_context():
        copy = db.session.get_one(Round, copy_id)
        assert (copy.year, copy.state) == (2027, RoundState.OPEN)
        assert db.session.get_one(Round, source_id).state == RoundState.CLOSED


def test_copy_and_confirmation_pages_fit_a_phone(
    live_app: Any, live_server: Any, phone: Any
) -> None:
    phone.set_default_timeout(TIMEOUT)
    source_id = _last_year(live_app)
    with live_app.app_context():
        draft = import_round(parse_round_text(SAMPLE_ROUND.replace("2026", "2028")), actor="t")
        db.session.commit()
        draft_id = draft.id
        stratum_id, subject_id = draft.strata[0].id, draft.subjects[2].id
    base = live_server.url
    _login(phone, base)
    for path in (
        f"/rounds/{source_id}/copy",
        f"/rounds/{source_id}/archive",
        f"/rounds/{draft_id}/open",
        f"/rounds/{draft_id}/delete",
        f"/rounds/{draft_id}/strata/{stratum_id}/edit",
        f"/rounds/{draft_id}/subjects/{subject_id}/edit",
    ):
        response = phone.goto(base + path)
        assert response.status == 200, path
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (path, width)
