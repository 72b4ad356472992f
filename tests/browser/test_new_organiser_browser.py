"""A new organiser's first round, in Chromium, with nothing but the pages (issue 17's final check).

From an empty database (only the administrator's account, made by the operator at install):
the administrator creates a unit and an organiser; the organiser builds a round of 10 subjects
(some from the Excel template, some by hand), edits one in place, previews the ballot, issues
codes, opens it through the confirmation page, watches several phones vote at 360 px, closes,
reads the results, downloads the workbook, writes feedback opinions, archives through the
confirmation page and looks at the archive. Every page the organiser or a voter sees is kept
and checked: no command-line words ("flask "), no bare status number as a heading, nothing
wider than the phone. A second test uses the dashboard's filter and search and deletes a
draft through its confirmation page.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from playwright.sync_api import expect

from evaluation.accounts.operations import create_user
from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.css_text import progress_text as _progress
from tests.helpers.web import PASSWORD, SAMPLE_ROUND

TIMEOUT = 30_000  # generous: the machine is shared and the PDFs take a while
TITLE = "2026年度党风廉政建设责任制民主测评"
UNIT = "甘肃省局"
CHILD = "兰州市局"
# Set SCREENSHOTS=/some/dir to keep pictures and texts of every page for a look by eye.
SCREENSHOTS = os.environ.get("SCREENSHOTS", "")
BARE_STATUS = re.compile(r"^\s*[1-5]\d\d\b")


class Seen:
    """Every page the organiser or a voter was shown, checked as it is seen."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.problems: list[str] = []

    def check(self, page: Any, name: str, phone: bool = False) -> None:
        page.wait_for_load_state("load")
        self.pages.append(name)
        text = page.locator("body").inner_text()
        headings = [h.strip() for h in page.locator("h1, h2").all_inner_texts()]
        if "flask " in text.lower():
            self.problems.append(f"{name}: command-line words in the page")
        for h in headings:
            if BARE_STATUS.match(h):
                self.problems.append(f"{name}: bare status number heading {h!r}")
        if not page.locator("h1").count():
            self.problems.append(f"{name}: no heading")
        if phone:
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 360:
                self.problems.append(f"{name}: {width} px wide at 360 px")
        if SCREENSHOTS:
            stem = os.path.join(SCREENSHOTS, f"{len(self.pages):02d}-{name}")
            page.screenshot(path=stem + ".png", full_page=True)
            Path(stem + ".txt").write_text(page.url + "\n\n" + text, encoding="utf-8")


def _admin(live_app: Any) -> None:
    """The one thing the operator does at install: the first administrator's account."""
    with live_app.app_context():
        create_user(actor="t", username="admin", password=PASSWORD, role="admin")
        db.session.commit()


def _login(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def _logout(page: Any, base: str) -> None:
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(base + "/login")


def _admin_sets_up(page: Any, base: str, seen: Seen) -> None:
    _login(page, base, "admin")
    seen.check(page, "admin-home")
    page.get_by_role("link", name="单位").first.click()
    page.wait_for_url(base + "/units")
    seen.check(page, "units-empty")
    page.fill("#top-name", UNIT)
    page.get_by_role("button", name="新建顶级单位").click()
    page.wait_for_load_state()
    page.fill("#name", CHILD)
    page.get_by_role("button", name="新建单位").click()
    page.wait_for_load_state()
    seen.check(page, "units")
    assert f"{UNIT}/{CHILD}" in page.locator("table").inner_text()

    page.get_by_role("link", name="账号").first.click()
    page.wait_for_url(base + "/users")
    page.fill("#username", "organiser")
    page.select_option("#role", label="组织者")
    page.select_option("#unit_id", label=f"{UNIT}/{CHILD}")
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.get_by_role("button", name="创建账号").click()
    page.wait_for_load_state()
    seen.check(page, "users")
    assert "organiser" in page.locator("table").inner_text()
    _logout(page, base)


def _add_stratum(page: Any, name: str, planned: str, weight: str) -> None:
    page.fill("#stratum-name", name)
    page.fill("#stratum-planned", planned)
    page.fill("#stratum-weight", weight)
    page.get_by_role("button", name="添加类别").click()
    page.wait_for_load_state()


def _add_subject(page: Any, name: str, form: str, post: str = "", staff_no: str = "") -> None:
    page.fill("#subject-name", name)
    page.select_option("#subject-form", label=form)
    page.fill("#subject-post", post)
    page.fill("#subject-staff-no", staff_no)
    page.get_by_role("button", name="添加测评对象").click()
    page.wait_for_load_state()


TEAM = "领导班子执行党风廉政建设责任制情况民主测评表"
PRINCIPAL = "领导班子正职履行党风廉政建设责任制情况民主测评表"
MEMBER = "领导班子成员履行党风廉政建设责任制情况民主测评表"
# Six subjects come from the Excel template, four are typed into the page.
EXCEL_ROWS = [
    ("兰州市局领导班子", TEAM, "", ""),
    ("王建国", PRINCIPAL, "局长", "L001"),
    ("李卫东", MEMBER, "副局长", "L002"),
    ("赵晓燕", MEMBER, "副局长", "L003"),
    ("孙志强", MEMBER, "纪检组长", "L004"),
    ("周丽华", MEMBER, "总经济师", "L005"),
]
BY_HAND = [
    ("吴海峰", MEMBER, "副局长", "L006"),
    ("郑秀英", MEMBER, "副局长", "L007"),
    ("冯建军", MEMBER, "二级巡视员", "L008"),
    ("陈明", MEMBER, "副局长", "L009"),
]


def _fill_template(path: str) -> bytes:
    workbook = load_workbook(path)
    sheet = workbook["测评对象"]
    for row in EXCEL_ROWS:
        sheet.append(list(row))
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


def _issue_csv(page: Any, stratum: str, count: int, tmp_path: Path) -> list[str]:
    """Issue ``count`` codes to ``stratum`` as CSV (the 分散 way) and return the codes."""
    row = page.locator("table.codes-table tbody tr", has_text=stratum)
    row.locator("input[name=count]").fill(str(count))
    row.locator("select[name=format]").select_option(value="csv")
    with page.expect_download(timeout=TIMEOUT) as info:
        row.get_by_role("button", name="发放并下载").click()
    target = tmp_path / f"{stratum}.csv"
    info.value.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == count
    return [r["code"] for r in rows]


def _vote(phone: Any, base: str, code: str, seen: Seen, first: bool) -> None:
    phone.goto(f"{base}/v/{code}")
    phone.wait_for_url(base + "/ballot")
    fieldsets = phone.locator("fieldset.subject")
    assert fieldsets.count() == 10
    if first:
        seen.check(phone, "ballot", phone=True)
        progress = phone.locator("#ballot-progress")
        # Answer three, then submit: the missing list names the seven others with links.
        for i in range(3):
            fieldsets.nth(i).locator("label.choice").first.click()
        assert "已填 3/10" in _progress(phone)
        assert progress.is_visible()
        phone.get_by_role("button", name="提交选票").click()
        phone.wait_for_load_state()
        seen.check(phone, "ballot-missing", phone=True)
        missing = phone.locator("#ballot-errors .missing-list a")
        assert missing.count() == 7
        missing.first.click()
        assert phone.url.endswith("#" + fieldsets.nth(3).get_attribute("id"))
        fieldsets = phone.locator("fieldset.subject")
    for i in range(10):
        choice = fieldsets.nth(i).locator("label.choice")
        if not fieldsets.nth(i).locator("input[type=radio]:checked").count():
            choice.nth(i % 2).click()
    if first:
        assert "已填 10/10" in _progress(phone)
    phone.get_by_role("button", name="提交选票").click()
    phone.locator("#receipt").wait_for(timeout=TIMEOUT)
    if first:
        seen.check(phone, "receipt", phone=True)


def test_new_organiser_from_empty_database_to_archive(
    live_app: Any, live_server: Any, page: Any, browser: Any, tmp_path: Path
) -> None:
    page.set_default_timeout(TIMEOUT)
    base = live_server.url
    seen = Seen()
    _admin(live_app)
    _admin_sets_up(page, base, seen)

    # The organiser logs in to an empty list and creates the round.
    _login(page, base, "organiser")
    seen.check(page, "dashboard-empty")
    assert "还没有测评活动" in page.locator("main").inner_text()
    page.get_by_role("link", name="新建测评活动").click()
    page.wait_for_url(base + "/rounds/new")
    seen.check(page, "new-round")
    page.fill("#title", TITLE)
    page.fill("#year", "2026")
    page.check("text=分散（各自用手机测评）")
    page.fill("#min_turnout", "80%")
    page.get_by_role("button", name="创建测评活动").click()
    page.wait_for_url(re.compile(r"/rounds/\d+$"))
    round_url = page.url
    round_id = int(round_url.rsplit("/", 1)[1])
    seen.check(page, "round-draft")
    assert "0.8" in page.locator("#settings").inner_text()

    # 开始测评 too early: the confirmation page says what is missing and offers no button.
    page.get_by_role("button", name="开始测评…").click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}/open"))
    seen.check(page, "open-too-early")
    assert "现在还不能开始测评" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="确认开始测评").count() == 0
    page.get_by_role("link", name="返回测评活动继续准备").click()
    page.wait_for_url(round_url)

    _add_stratum(page, "班子成员", "9", "0.3")
    _add_stratum(page, "中层干部", "20", "0.7")
    assert page.locator("#strata tbody tr").nth(0).inner_text().split("\t")[:3] == [
        "班子成员",
        "9",
        "0.3",
    ]

    # Six subjects from the Excel template.
    page.get_by_role("link", name="从 Excel 导入…").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/subjects/import")
    seen.check(page, "subject-import")
    with page.expect_download(timeout=TIMEOUT) as info:
        page.get_by_role("link", name="下载 Excel 模板").click()
    template = tmp_path / "template.xlsx"
    info.value.save_as(template)
    filled = tmp_path / "filled.xlsx"
    filled.write_bytes(_fill_template(str(template)))
    page.set_input_files("input[type=file]", str(filled))
    page.get_by_role("button", name="上传并导入").click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}(#.*)?$"))
    seen.check(page, "round-imported")
    assert page.locator("#subjects tbody tr").count() == 6

    # Four by hand, one with a typo in 职务, put right in place.
    for name, form, post, staff_no in BY_HAND:
        _add_subject(page, name, form, post if name != "陈明" else "付局长", staff_no)
    subjects = page.locator("#subjects tbody tr")
    assert subjects.count() == 10
    page.get_by_role("link", name="修改测评对象 陈明").click()
    page.wait_for_url(re.compile(r"/subjects/\d+/edit$"))
    seen.check(page, "subject-edit")
    page.fill("#subject-post", "副局长")
    page.get_by_role("button", name="保存修改").click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}(#.*)?$"))
    last = page.locator("#subjects tbody tr").nth(9).inner_text()
    assert "陈明" in last and "副局长" in last and "付局长" not in last

    # The ballot as a voter will see it.
    page.get_by_role("link", name="预览选票").click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}/preview"))
    seen.check(page, "preview")
    assert page.locator("fieldset.subject").count() == 10
    page.get_by_role("link", name="返回测评活动").click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}(#.*)?$"))

    # Codes for both strata, as CSV (each voter gets a link).
    page.get_by_role("link", name="测评码").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/codes")
    seen.check(page, "codes")
    cadres = _issue_csv(page, "班子成员", 3, tmp_path)
    page.goto(f"{base}/rounds/{round_id}/codes")
    middle = _issue_csv(page, "中层干部", 3, tmp_path)
    page.goto(f"{base}/rounds/{round_id}/codes")
    seen.check(page, "codes-issued")

    # Open through the confirmation page.
    page.goto(round_url)
    page.get_by_role("button", name="开始测评…").click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}/open"))
    seen.check(page, "open-confirm")
    assert "不可撤销" in page.locator("main").inner_text()
    page.get_by_role("button", name="确认开始测评").click()
    page.wait_for_url(round_url)
    seen.check(page, "round-open")
    assert page.locator("h1 .badge").inner_text() == "进行中"

    # Watch turnout while phones vote.
    page.get_by_role("link", name="参测情况").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/turnout")
    seen.check(page, "turnout")
    context = browser.new_context(
        viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    try:
        phone = context.new_page()
        phone.set_default_timeout(TIMEOUT)
        for n, code in enumerate(cadres + middle[:2]):
            _vote(phone, base, code, seen, first=n == 0)
            context.clear_cookies()
        # A used code again: the voting header stays, the page explains in words.
        phone.goto(f"{base}/v/{cadres[0]}")
        seen.check(phone, "code-used", phone=True)
        assert "已经投过票" in phone.locator("main").inner_text()
        assert phone.locator(".voting-header").count() == 1
        phone.goto(f"{base}/v/WRONG-CODE-0000-0000")
        seen.check(phone, "code-wrong", phone=True)
        phone.goto(f"{base}/ballot")
        seen.check(phone, "ballot-without-code", phone=True)
    finally:
        context.close()
    expect(page.locator(".turnout-used")).to_have_text("5", timeout=TIMEOUT)
    page.reload()
    seen.check(page, "turnout-voted")

    # Close through the confirmation page: turnout per stratum and the 无效 warning.
    page.goto(round_url)
    page.get_by_role("link", name="结束测评").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/close")
    seen.check(page, "close-confirm")
    close_text = page.locator("main").inner_text()
    assert "班子成员" in close_text and "中层干部" in close_text
    # Turnout counts the codes issued (5 of 6), not 应参加 (29): the round is valid.
    assert "结束后本次测评有效" in close_text
    page.get_by_role("button", name="确认结束测评").click()
    page.wait_for_url(round_url)
    seen.check(page, "round-closed")
    assert page.locator("h1 .badge").inner_text() == "已结束"

    # Results, the workbook, the feedback opinions.
    page.get_by_role("link", name="测评结果").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/results")
    seen.check(page, "results")
    with page.expect_download(timeout=TIMEOUT) as info:
        page.get_by_role("link", name=re.compile("Excel")).first.click()
    workbook = tmp_path / "results.xlsx"
    info.value.save_as(workbook)
    assert load_workbook(workbook).sheetnames
    page.get_by_role("link", name="王建国").first.click()
    page.wait_for_url(re.compile(rf"/rounds/{round_id}/results/\d+$"))
    seen.check(page, "subject-results")
    page.get_by_role("link", name=re.compile("评价意见")).first.click()
    page.wait_for_url(re.compile(r"/feedback-notes$"))
    seen.check(page, "feedback-notes")
    page.fill("#opinion", "认真履行第一责任人职责。")
    page.fill("#rectification", "加强对下级单位的监督检查。")
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state()
    seen.check(page, "feedback-saved")

    # Archive through the confirmation page, then look at the archive.
    page.goto(round_url)
    page.get_by_role("link", name="归档…").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/archive")
    seen.check(page, "archive-confirm")
    archive_text = page.locator("main").inner_text()
    assert "永久" in archive_text
    assert "还有 9 个测评对象没有填写" in archive_text  # only 王建国's were written
    page.get_by_role("button", name="确认归档").click()
    page.wait_for_url(round_url)
    seen.check(page, "round-archived")
    assert page.locator("h1 .badge").inner_text() == "已归档"
    page.get_by_role("link", name=f"查看“{UNIT}/{CHILD}”的廉政档案").click()
    page.wait_for_load_state()
    seen.check(page, "archive-unit")
    assert TITLE in page.locator("main").inner_text()
    page.get_by_role("navigation").get_by_role("link", name="廉政档案").first.click()
    page.wait_for_load_state()
    seen.check(page, "archive")
    page.fill("input[type=search], input[name=q]", "王建国")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    page.get_by_role("link", name=re.compile("王建国")).first.click()
    page.wait_for_load_state()
    seen.check(page, "archive-person")
    person = page.locator("main").inner_text()
    assert TITLE in person
    assert "评价意见：认真履行第一责任人职责。" in person
    assert "整改要求：加强对下级单位的监督检查。" in person

    person_url = page.url

    # The same pages on the organiser's phone, and two wrong turns: words, not numbers.
    context = browser.new_context(
        viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    try:
        small = context.new_page()
        small.set_default_timeout(TIMEOUT)
        _login(small, base, "organiser")
        seen.check(small, "phone-dashboard", phone=True)
        for name, url in (
            ("phone-round", round_url),
            ("phone-turnout", f"{round_url}/turnout"),
            ("phone-results", f"{round_url}/results"),
            ("phone-copy", f"{round_url}/copy"),
            ("phone-archive-person", person_url),
            ("phone-missing-round", f"{base}/rounds/{round_id + 100}"),
            ("phone-open-archived", f"{round_url}/open"),
        ):
            small.goto(url)
            seen.check(small, name, phone=True)
        assert "不能开始测评" in small.locator("main").inner_text()
        small.get_by_role("link", name="返回测评活动").click()
        small.wait_for_url(round_url)
        small.goto(f"{base}/rounds/{round_id + 100}")
        assert "不存在" in small.locator("main").inner_text()
        assert small.get_by_role("link", name="返回首页").count() == 1
    finally:
        context.close()

    page.goto(base + "/")
    seen.check(page, "dashboard-archived")
    assert page.locator("table.round-list tbody tr").count() == 1
    assert "已归档" in page.locator("table.round-list").inner_text()

    assert not seen.problems, seen.problems


def _round(year: int, title: str, unit: str) -> None:
    text = SAMPLE_ROUND.replace(f'title = "{TITLE}"', f'title = "{title}"')
    text = text.replace('unit = "甘肃省局/兰州市局"', f'unit = "{unit}"')
    import_round(parse_round_text(text.replace("year = 2026", f"year = {year}")), actor="t")


def test_dashboard_filter_search_and_deleting_a_draft(
    live_app: Any, live_server: Any, page: Any
) -> None:
    page.set_default_timeout(TIMEOUT)
    base = live_server.url
    with live_app.app_context():
        create_user(
            actor="t",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/兰州市局",
        )
        ensure_unit("甘肃省局/兰州市局/城关区局")
        _round(2025, "2025年度党风廉政建设责任制民主测评", "甘肃省局/兰州市局")
        _round(2026, "2026年度党风廉政建设责任制民主测评", "甘肃省局/兰州市局")
        _round(2026, "城关区局2026年度民主测评", "甘肃省局/兰州市局/城关区局")
        _round(2026, "试用：练习测评（可删除）", "甘肃省局/兰州市局")
        db.session.commit()
    seen = Seen()
    _login(page, base, "organiser")
    rows = page.locator("table.round-list tbody tr")
    assert rows.count() == 4

    # Filter by year, then by unit as well; the choices stay as picked.
    page.select_option("#f-year", "2025")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"year=2025"))
    seen.check(page, "dashboard-2025")
    assert rows.count() == 1 and "2025年度" in rows.first.inner_text()
    assert page.input_value("#f-year") == "2025"
    page.select_option("#f-year", "2026")
    page.select_option("#f-unit", label="甘肃省局/兰州市局/城关区局")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"unit=\d+"))
    assert rows.count() == 1 and "城关区局2026年度民主测评" in rows.first.inner_text()
    page.select_option("#f-state", "archived")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"state=archived"))
    seen.check(page, "dashboard-none")
    assert rows.count() == 0
    assert "没有符合筛选条件的测评活动" in page.locator("main").inner_text()
    page.get_by_role("link", name="清除筛选").first.click()
    page.wait_for_url(base + "/")
    assert rows.count() == 4

    # Search by title.
    page.fill("#f-q", "练习")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q="))
    seen.check(page, "dashboard-search")
    assert rows.count() == 1 and "试用：练习测评" in rows.first.inner_text()

    # Delete the practice draft through its confirmation page; it leaves the list.
    rows.first.get_by_role("link", name=re.compile("练习测评")).click()
    page.wait_for_url(re.compile(r"/rounds/\d+$"))
    page.get_by_role("link", name="删除草稿…").click()
    page.wait_for_url(re.compile(r"/rounds/\d+/delete$"))
    seen.check(page, "delete-confirm")
    assert "不能恢复" in page.locator("main").inner_text()
    page.get_by_role("button", name="确认删除").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/(\?.*)?$"))
    seen.check(page, "dashboard-deleted")
    assert "练习测评" in page.locator(".flash").inner_text()
    assert "练习测评" not in page.locator("main table.round-list").inner_text()
    assert rows.count() == 3
    with live_app.app_context():
        titles = db.session.execute(db.select(Round.title)).scalars().all()
        assert sorted(titles) == sorted(
            [
                "2025年度党风廉政建设责任制民主测评",
                "2026年度党风廉政建设责任制民主测评",
                "城关区局2026年度民主测评",
            ]
        )
    assert not seen.problems, seen.problems
