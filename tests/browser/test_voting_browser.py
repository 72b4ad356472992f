"""A phone votes in Chromium at 360×640: scan, grade, submit, receipt, then the used code again."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evaluation.extensions import db
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.voters import issue
from tests.helpers.web import SAMPLE_ROUND


def _open_round(live_app: Any, per_stratum: int = 2) -> tuple[list[str], list[str]]:
    with live_app.app_context():
        rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="t")
        plain = issue(rnd, "中层干部", per_stratum)
        lifecycle.open_round(rnd, actor="t")
        db.session.commit()
        return plain, [s.name for s in rnd.subjects]


def _watch(phone: Any, base: str) -> tuple[list[str], list[str]]:
    """Collect every request URL and every console error (CSP violations show there)."""
    requests: list[str] = []
    errors: list[str] = []
    phone.on("request", lambda r: requests.append(r.url))
    phone.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return requests, errors


def test_phone_scans_votes_gets_receipt_and_cannot_reuse(
    live_app: Any, live_server: Any, phone: Any, tmp_path: Any
) -> None:
    codes, subjects = _open_round(live_app)
    requests, console_errors = _watch(phone, live_server.url)

    response = phone.goto(f"{live_server.url}/v/{codes[0]}")
    assert response.status == 200
    assert phone.url == f"{live_server.url}/ballot"  # the code left the address bar
    assert phone.locator("h1").inner_text().startswith("2026年度")

    # The page fits a 360 px screen and its choices are large enough to tap.
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360
    box = phone.locator("label.choice").first.bounding_box()
    assert box is not None and box["height"] >= 44

    fieldsets = phone.locator("fieldset.subject")
    assert fieldsets.count() == len(subjects)
    # Leave the last subject unanswered first: the page comes back with the choices kept.
    for i in range(len(subjects) - 1):
        fieldsets.nth(i).locator("label.choice").first.click()
    phone.get_by_role("button", name="提交选票").click()
    assert "还有 1 个测评对象没有填写完整" in phone.locator("#ballot-errors").inner_text()
    first_radio = fieldsets.nth(0).locator("input[type=radio]").first
    assert first_radio.is_checked()
    last = fieldsets.nth(len(subjects) - 1)
    assert subjects[-1] in last.locator("legend").inner_text()
    last.get_by_label("弃权").check()
    phone.screenshot(path=str(tmp_path / "ballot.png"), full_page=True)
    phone.get_by_role("button", name="提交选票").click()

    receipt = phone.locator("#receipt").inner_text().strip()  # the answer to the POST
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}", receipt)

    again = phone.goto(f"{live_server.url}/v/{codes[0]}")
    assert again.status == 409
    assert "已经投过票" in phone.locator(".error-message").inner_text()

    assert all(url.startswith(live_server.url) for url in requests), requests
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors


def test_phone_types_a_code(live_app: Any, live_server: Any, phone: Any) -> None:
    codes, _ = _open_round(live_app, 1)
    phone.goto(f"{live_server.url}/v")
    phone.get_by_label("测评码").fill("wrong-code")
    phone.get_by_role("button", name="下一步").click()
    assert "测评码不正确" in phone.locator("#code-error").inner_text()
    phone.get_by_label("测评码").fill(codes[0].lower().replace("-", " "))
    phone.get_by_role("button", name="下一步").click()
    phone.wait_for_url(f"{live_server.url}/ballot")
    assert phone.locator("fieldset.subject").count() == 5


def test_organiser_issues_slips_and_watches_turnout(
    live_app: Any, live_server: Any, page: Any, phone: Any
) -> None:
    from evaluation.accounts.operations import create_user
    from tests.helpers.web import PASSWORD

    with live_app.app_context():
        create_user(
            actor="t",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局/兰州市局",
        )
        rnd = import_round(parse_round_text(SAMPLE_ROUND), actor="t")
        round_id = rnd.id
        db.session.commit()
    page.goto(live_server.url + "/login")
    page.fill("#username", "organiser")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(f"{live_server.url}/rounds/{round_id}/codes")
    row = page.locator("tr", has_text="一般干部")
    row.locator("input[name=count]").fill("25")
    with page.expect_download() as download_info:
        row.get_by_role("button", name="发放并下载").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    assert Path(download.path()).read_bytes().startswith(b"%PDF")
    page.wait_for_load_state("load")
    page.locator("text=第 1 批").wait_for(timeout=15000)

    with live_app.app_context():
        from evaluation.models import Round

        rnd = db.session.get_one(Round, round_id)
        codes = issue(rnd, "班子成员", 2)
        lifecycle.open_round(rnd, actor="t")
        db.session.commit()
    page.goto(f"{live_server.url}/rounds/{round_id}/turnout")
    used = page.locator("tr[data-stratum] .s-used").first
    assert used.inner_text() == "0"
    # A phone votes; the open turnout page updates itself without a reload.
    phone.goto(f"{live_server.url}/v/{codes[0]}")
    for fieldset in phone.locator("fieldset.subject").all():
        fieldset.locator("label.choice").first.click()
    phone.get_by_role("button", name="提交选票").click()
    phone.locator("#receipt").wait_for()
    from playwright.sync_api import expect

    expect(used).to_have_text("1", timeout=20000)
    assert page.locator(".turnout-used").inner_text() == "1"
