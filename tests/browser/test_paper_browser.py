"""纸质票录入 in Chromium with the keyboard only: two 计票员 enter a stack, one ballot differs,
the 核定 page settles it, and the stack goes into the box."""

from __future__ import annotations

import os
from typing import Any

import pytest

from evaluation.accounts.operations import create_user
from evaluation.codes.paper import issue_paper
from evaluation.extensions import db
from evaluation.models import PaperBatch, PaperEntry, Round, Stratum
from evaluation.paper.entry import create_batch, entry_questions
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.voters import ballots_cast, open_with_codes
from tests.helpers.web import PASSWORD, SAMPLE_ROUND

pytestmark = pytest.mark.browser

UNIT = "甘肃省局/兰州市局"
STRATUM = "班子成员"
PHONE_WIDTH = 360
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT = 30_000  # ms: generous, so a slow machine never fails the test
# Set SCREENSHOTS=/some/dir to keep pictures of the pages for a look by eye.
SCREENSHOTS = os.environ.get("SCREENSHOTS", "")


def _prepare(live_app: Any) -> tuple[int, int, list[str]]:
    """Two 计票员, an open round with paper ballots printed for STRATUM and a stack of three
    to enter; return the round, the stack and the first grade label of each line."""
    with live_app.app_context():
        for name in ("clerk1", "clerk2"):
            create_user(actor="t", username=name, password=PASSWORD, role="counter", unit_path=UNIT)
        rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="t")
        db.session.commit()
        open_with_codes(rnd)
        stratum = next(s for s in rnd.strata if s.name == STRATUM)
        issue_paper(rnd, stratum, 10, actor="t")
        batch = create_batch(rnd, stratum, 3, actor="clerk1")
        db.session.commit()
        labels = [q.grade_labels for q in entry_questions(rnd, stratum.id)]
        return rnd.id, batch.id, [str(g[1]) for g in labels]


def _login(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def _focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def _fits_a_phone(page: Any, name: str) -> None:
    """Laid out again 360 px wide, the page does not scroll sideways; then back to desktop."""
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 640})
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    body = page.evaluate("document.body.scrollWidth")
    assert width <= PHONE_WIDTH and body <= PHONE_WIDTH, (name, width, body)
    page.set_viewport_size(DESKTOP)


def _type_ballot(page: Any, number: int, mark: str, keys: list[str]) -> None:
    """Type one ballot as a clerk does: focus is on 票面, a key and Enter per line; the last
    Enter (or Enter on a 票面 that voids the ballot) saves and the next ballot opens."""
    page.locator("#entry-progress").filter(has_text=f"第 {number} 张").wait_for()
    assert _focused(page) == "mark"
    if mark:
        page.keyboard.type(mark)
    with page.expect_navigation():
        page.keyboard.press("Enter")
        for index, key in enumerate(keys):
            assert _focused(page) == f"q{index}"
            page.keyboard.type(key)
            page.keyboard.press("Enter")


def _state(live_app: Any, round_id: int) -> tuple[int, int, int, dict[str, Any]]:
    with live_app.app_context():
        stratum = db.session.execute(
            db.select(Stratum).where(Stratum.round_id == round_id, Stratum.name == STRATUM)
        ).scalar_one()
        count = db.func.count()
        return (
            db.session.execute(db.select(count).select_from(PaperBatch)).scalar_one(),
            db.session.execute(db.select(count).select_from(PaperEntry)).scalar_one(),
            ballots_cast(round_id),
            dict(stratum.paper or {}),
        )


def test_two_clerks_enter_a_stack_with_the_keyboard_only(
    live_app: Any, live_server: Any, page: Any, browser: Any
) -> None:
    page.set_default_timeout(TIMEOUT)
    page.set_viewport_size(DESKTOP)
    round_id, batch_id, second_grades = _prepare(live_app)
    n = len(second_grades)
    base = live_server.url
    stack = f"{base}/rounds/{round_id}/paper/{batch_id}"

    # 计票员 1: from the round list to the stack.
    _login(page, base, "clerk1")
    assert "廉政档案" not in page.locator("header").inner_text()
    page.get_by_role("link", name="2026年度党风廉政建设责任制民主测评").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/paper")
    _fits_a_phone(page, "stacks page")
    page.get_by_role("link", name="录入", exact=True).click()
    page.wait_for_url(stack)
    _fits_a_phone(page, "entry page")

    # A key that means nothing: Enter stays on the line and says so; the right key moves on.
    page.locator("#entry-progress").filter(has_text="第 1 张").wait_for()
    assert _focused(page) == "mark"
    page.keyboard.press("Enter")
    assert _focused(page) == "q0"
    page.keyboard.type("9")
    page.keyboard.press("Enter")
    assert _focused(page) == "q0"
    meaning = page.locator("#q0").locator("xpath=ancestor::tr").locator(".meaning")
    assert meaning.inner_text() == "无效的键"
    # typed over, without Backspace: the line holds one key, the new one replaces the old
    page.keyboard.type("3")
    assert page.locator("#q0").input_value() == "3"
    page.keyboard.type("2")
    assert page.locator("#q0").input_value() == "2"
    assert meaning.inner_text() == second_grades[0]
    with page.expect_navigation():
        page.keyboard.press("Enter")
        for index in range(1, n):
            assert _focused(page) == f"q{index}"
            page.keyboard.type("2")
            page.keyboard.press("Enter")
    assert "第 1 批第 1 张已保存" in page.locator(".flash").inner_text()
    _type_ballot(page, 2, "", ["1"] * n)
    # 票面 w (a mark outside the boxes): Enter saves at once.
    page.locator("#entry-progress").filter(has_text="第 3 张").wait_for()
    assert _focused(page) == "mark"
    page.keyboard.type("w")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "您已录完本批全部 3 张" in page.locator("main").inner_text()
    assert _state(live_app, round_id)[:3] == (1, 3, 0)

    # 计票员 2, in a browser of their own: reads the first line of ballot 2 differently.
    other = browser.new_context(locale="zh-CN", viewport=DESKTOP)
    clerk2 = other.new_page()
    clerk2.set_default_timeout(TIMEOUT)
    _login(clerk2, base, "clerk2")
    clerk2.goto(f"{base}/rounds/{round_id}/paper")
    clerk2.get_by_role("link", name="录入", exact=True).click()
    clerk2.wait_for_url(stack)
    _type_ballot(clerk2, 1, "", ["2"] * n)
    _type_ballot(clerk2, 2, "", ["3", *["1"] * (n - 1)])
    clerk2.locator("#entry-progress").filter(has_text="第 3 张").wait_for()
    clerk2.keyboard.type("w")
    with clerk2.expect_navigation():
        clerk2.keyboard.press("Enter")
    # Both have entered everything; one ballot differs: straight to 核定.
    clerk2.wait_for_url(f"{stack}/resolve")
    assert "1 张不一致" in clerk2.locator(".flash-warning").inner_text()
    assert clerk2.locator("form[id^=ballot-]").count() == 1
    assert clerk2.locator("#ballot-2 tr.differs").count() == 1
    assert _state(live_app, round_id)[:3] == (1, 6, 0)
    _fits_a_phone(clerk2, "resolve page")

    # 核定 with the paper in hand: the focus is on the differing line, the agreed lines keep
    # their key, and Enter on the last differing line saves.
    assert _focused(clerk2) == "q0-2"
    assert clerk2.locator("#q1-2").input_value() == "1"
    # An Enter on the cleared line alone does not settle it as 未勾选 unseen: it asks again.
    clerk2.keyboard.press("Enter")
    assert _focused(clerk2) == "q0-2"
    assert "再按一次回车" in clerk2.locator("#ballot-2 tr.differs .meaning").inner_text()
    clerk2.keyboard.type("1")
    with clerk2.expect_navigation():
        clerk2.keyboard.press("Enter")
    clerk2.wait_for_url(f"{base}/rounds/{round_id}/paper")
    flash = clerk2.locator(".flash-success").inner_text()
    assert "两位计票员录入一致，已放入投票箱：有效 2 张，废票 1 张" in flash
    row = clerk2.locator("table.paper-counts tr", has_text=STRATUM)
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[1:3] == ["10", "2"]
    assert cells[3].startswith("1") and "方框外有标记 1" in cells[3]
    assert "没有录入中的批次" in clerk2.locator("main").inner_text()
    _fits_a_phone(clerk2, "stacks page after the commit")
    other.close()

    batches, entries, in_box, paper = _state(live_app, round_id)
    assert (batches, entries, in_box) == (0, 0, 2)
    assert paper["valid"] == 2 and paper["invalid"] == {"outside": 1}
    with live_app.app_context():
        assert db.session.get_one(Round, round_id).state.value == "open"
