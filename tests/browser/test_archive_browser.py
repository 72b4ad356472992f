"""A browser opens a cadre's 廉政档案 timeline: table, trend chart, flags, a correction note."""

from __future__ import annotations

from typing import Any

from evaluation.accounts.operations import create_user
from evaluation.extensions import db
from tests.helpers.archive import build_history
from tests.helpers.web import PASSWORD


def _login(page: Any, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def _prepare(live_app: Any) -> int:
    with live_app.app_context():
        history = build_history()
        create_user(
            actor="t",
            username="tianshui",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/天水市局",
        )
        db.session.commit()
        return int(history["people"]["A001"].id)


def test_timeline_page_in_chromium(live_app: Any, live_server: Any, page: Any) -> None:
    person_id = _prepare(live_app)
    _login(page, live_server.url, "tianshui")
    page.click("text=廉政档案")
    page.fill("#q", "A001")
    page.click("button:has-text('查找')")
    page.click("a:has-text('张三')")
    page.wait_for_url(f"{live_server.url}/archive/person/{person_id}")
    assert page.locator("h1").inner_text() == "张三 的廉政档案"
    # every year's entries, with the unit at the time (he moved from 兰州 to 天水)
    rows = page.locator("table.archive-table tbody tr:not(.annotation-row)")
    assert rows.count() == 4
    assert "甘肃省局/兰州市局" in rows.nth(0).inner_text()
    assert "甘肃省局/天水市局" in rows.nth(3).inner_text()
    # the flag in force follows him across the move (跟踪追究)
    current = page.locator("section.flags-card")
    assert "警示训诫/组织处理/纪律处分" in current.inner_text()
    assert "2024、2025、2026" in current.inner_text()
    # the trend chart is a real image that loaded
    chart = page.locator("img.trend-chart")
    assert chart.evaluate("img => img.complete && img.naturalWidth") > 800
    # an organiser adds a correction note; it appears under the entry
    page.select_option("#entry_id", index=1)
    page.fill("#reason", "经复核，2025年度测评票数无误。")
    page.click("button:has-text('添加更正说明')")
    assert page.locator(".annotation-row").inner_text().count("经复核，2025年度测评票数无误。") == 1


def test_timeline_fits_a_phone(live_app: Any, live_server: Any, phone: Any) -> None:
    person_id = _prepare(live_app)
    _login(phone, live_server.url, "tianshui")
    phone.goto(f"{live_server.url}/archive/person/{person_id}")
    assert phone.locator("h1").inner_text() == "张三 的廉政档案"
    # the page itself never scrolls sideways: wide tables scroll inside their own box
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    # the chart stays legible (600 px or more), scrolling sideways inside its own box
    wrap = phone.locator(".chart-wrap")
    assert wrap.evaluate("el => el.getBoundingClientRect().width") <= 360
    chart = phone.locator("img.trend-chart")
    assert chart.evaluate("img => img.getBoundingClientRect().width") >= 600
    # ... and it opens on its right end, the newest years, saying that it scrolls
    box = wrap.evaluate("el => el.getBoundingClientRect().toJSON()")
    drawn = chart.evaluate("img => img.getBoundingClientRect().toJSON()")
    assert abs(drawn["right"] - box["right"]) <= 2 and drawn["left"] < box["left"]
    assert phone.locator(".chart-hint").first.is_visible()
    # Each year's entry is a block of labelled lines: its rates and grade within the screen.
    first = phone.locator("table.archive-table tbody tr").first
    for label in ("年度", "满意率", "信任率", "测评等次"):
        cell = first.locator(f'td[data-label="{label}"]')
        assert cell.is_visible(), label
        right = cell.evaluate("td => td.getBoundingClientRect().right")
        assert right <= 360, (label, right)
    shown = first.locator('td[data-label="满意率"]').evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert shown == '"满意率"'  # the label is printed beside the value


def test_flags_fit_a_phone(live_app: Any, live_server: Any, phone: Any) -> None:
    _prepare(live_app)
    _login(phone, live_server.url, "tianshui")
    phone.goto(f"{live_server.url}/archive/flags")
    rows = phone.locator("table.flag-table tbody tr")
    assert rows.count() > 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    for label in ("对象", "规则", "处理建议"):
        cell = rows.first.locator(f'td[data-label="{label}"]')
        assert cell.evaluate("td => td.getBoundingClientRect().right") <= 360, label
