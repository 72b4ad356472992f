"""The voter's pages at 360 px in Chromium (issue 17, item 7): the 已填 n/N line counts as radios
are clicked — with no script at all, JavaScript switched off in the browser too — the missing
list links to its subjects, and every voter page (refusals included) keeps the voting header,
has no heading that is a bare status number and no command-line words."""

from __future__ import annotations

import re
from typing import Any

from evaluation.extensions import db
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.css_text import progress_text as _progress
from tests.helpers.voters import issue
from tests.helpers.web import SAMPLE_ROUND

# The sample round (five subjects) with five more 班子成员: a ten-subject ballot.
TEN_SUBJECTS = SAMPLE_ROUND + "".join(
    f'\n[[subjects]]\nname = "班子成员{n}"\nform = "gansu-member"\npost = "副局长"\n'
    for n in "甲乙丙丁戊"
)


def _open_round(live_app: Any, count: int = 3) -> list[str]:
    with live_app.app_context():
        rnd = import_round(parse_round_text(TEN_SUBJECTS), actor="t")
        assert len(rnd.subjects) == 10
        plain = issue(rnd, "一般干部", count)
        lifecycle.open_round(rnd, actor="t")
        db.session.commit()
        return plain


def _in_view(pg: Any, selector: str) -> bool:
    box = pg.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 640


def _check_voter_page(pg: Any) -> None:
    """The voting header, no heading that is a bare number, no command words, fits 360 px."""
    assert pg.locator("header.voting-header").count() == 1
    assert pg.locator("header.site-header").count() == 0
    headings = pg.locator("h1, h2, h3, h4, h5, h6").all_inner_texts()
    assert headings, pg.url
    for heading in headings:
        assert heading.strip() and not re.fullmatch(r"[\d\s]+", heading), (pg.url, heading)
    assert "flask " not in pg.content().lower()
    assert pg.locator("script").count() == 0
    assert pg.evaluate("document.documentElement.scrollWidth") <= 360


def _phone_context(browser: Any, *, javascript: bool) -> Any:
    return browser.new_context(
        viewport={"width": 360, "height": 640},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        java_script_enabled=javascript,
    )


def test_progress_counts_as_radios_are_clicked_without_script(
    live_app: Any, live_server: Any, browser: Any
) -> None:
    code = _open_round(live_app)[0]
    context = _phone_context(browser, javascript=False)
    try:
        pg = context.new_page()
        console: list[str] = []
        pg.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        assert pg.goto(f"{live_server.url}/v/{code}").status == 200
        _check_voter_page(pg)
        fieldsets = pg.locator("fieldset.subject")
        assert fieldsets.count() == 10
        assert _progress(pg) == "已填 0/10"
        # Sticky: seen at the top of a ten-subject ballot, four and more screens long.
        assert pg.evaluate("document.documentElement.scrollHeight") > 3 * 640
        assert _in_view(pg, "#ballot-progress")

        fieldsets.nth(0).locator("label.choice").first.click()
        assert _progress(pg) == "已填 1/10"
        fieldsets.nth(1).locator("label.choice").nth(1).click()
        fieldsets.nth(5).get_by_label("弃权").check()
        assert _progress(pg) == "已填 3/10"
        fieldsets.nth(0).locator("label.choice").nth(2).click()  # a changed mind is one answer
        assert _progress(pg) == "已填 3/10"
        fieldsets.nth(5).scroll_into_view_if_needed()
        assert _in_view(pg, "#ballot-progress")
        # The count floats over the choices below it; a tap there reaches the choice, not it.
        under = pg.locator("#ballot-progress").evaluate(
            "p => { const r = p.getBoundingClientRect();"
            " return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === p; }"
        )
        assert under is False

        # Submitting with seven left: the list links to each, and the count survives.
        pg.get_by_role("button", name="提交选票").click()
        assert "还有 7 个测评对象没有填写完整" in pg.locator("#ballot-errors").inner_text()
        assert _progress(pg) == "已填 3/10"
        links = pg.locator("#ballot-errors a")
        assert links.count() == 7
        names = [t.strip() for t in links.all_inner_texts()]
        assert names == [
            "张三",
            "李四",
            "张三（廉洁自律）",
            "班子成员乙",
            "班子成员丙",
            "班子成员丁",
            "班子成员戊",
        ]
        links.nth(6).click()
        target = pg.url.rsplit("#", 1)[1]
        assert target.startswith("subject-")
        assert _in_view(pg, f"#{target} legend")
        assert "班子成员戊" in pg.locator(f"#{target} legend").inner_text()

        for i in range(10):
            fieldsets.nth(i).locator("label.choice").first.click()
        assert _progress(pg) == "已填 10/10"
        pg.get_by_role("button", name="提交选票").click()
        assert pg.locator("#receipt").count() == 1
        _check_voter_page(pg)
        assert "已使用" in pg.locator("main").inner_text()
        assert "作废" not in pg.locator("main").inner_text()
        assert not [e for e in console if "Content Security Policy" in e], console
    finally:
        context.close()


def test_voter_refusals_keep_the_voting_header_and_explain(
    live_app: Any, live_server: Any, phone: Any
) -> None:
    used, fresh = _open_round(live_app, 2)
    # Use the first code.
    phone.goto(f"{live_server.url}/v/{used}")
    for fieldset in phone.locator("fieldset.subject").all():
        fieldset.locator("label.choice").first.click()
    phone.get_by_role("button", name="提交选票").click()
    assert phone.locator("#receipt").count() == 1

    visits = {
        f"/v/{used}": (409, "此测评码已经投过票"),
        "/v/ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ": (404, "测评码不存在或已作废"),
        "/v/some/where": (404, "没有这个页面"),
        "/ballot/1": (404, "没有这个页面"),
        "/thanks/again": (404, "没有这个页面"),
    }
    for path, (status, words) in visits.items():
        response = phone.goto(f"{live_server.url}{path}")
        assert response.status == status, path
        _check_voter_page(phone)
        main = phone.locator("main").inner_text()
        assert words in main, path
        assert not re.search(rf"(?<!\d){status}(?!\d)", main), (path, main)
        assert phone.get_by_role("link", name="输入测评码").count() == 1

    # And the voter's ordinary pages.
    for path in ("/v", "/receipt", f"/v/{fresh}"):
        assert phone.goto(f"{live_server.url}{path}").status == 200
        _check_voter_page(phone)
