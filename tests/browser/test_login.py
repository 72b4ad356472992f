"""A browser logs in through the real login page."""

from __future__ import annotations

from typing import Any

from evaluation.accounts.operations import create_user
from evaluation.extensions import db
from tests.helpers.web import PASSWORD


def test_login_page_works_in_chromium(live_app: Any, live_server: Any, page: Any) -> None:
    with live_app.app_context():
        create_user(
            actor="t",
            username="organiser",
            password=PASSWORD,
            role="organiser",
            unit_path="甘肃省局",
        )
        db.session.commit()
    page.goto(live_server.url + "/login")
    page.fill("#username", "organiser")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert "用户名或密码不正确" in page.content()
    page.fill("#username", "organiser")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.locator("h1").inner_text() == "测评活动"
