"""监票人保管 in Chromium: open with the key handed over, vote, then close only with the key."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey

from evaluation.accounts.operations import create_user
from evaluation.extensions import db
from evaluation.models import Round, RoundState
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.voting import box
from tests.helpers.voters import ballots_cast, issue
from tests.helpers.web import PASSWORD, SAMPLE_ROUND

pytestmark = pytest.mark.browser

PHONE_WIDTH = 360
DESKTOP = {"width": 1280, "height": 720}
TIMEOUT = 30_000  # ms: generous, so a slow machine never fails the test
KEY = re.compile(r"[A-Za-z0-9+/]{43}=")


def _prepare(live_app: Any) -> tuple[int, list[str]]:
    """An organiser and a draft round with codes of one stratum; return its id and codes."""
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
        plain = issue(rnd, "中层干部", 2)
        return rnd.id, plain


def _round_state(live_app: Any, round_id: int) -> tuple[RoundState, bool, int]:
    """The round's state, whether its box still exists, and the ballots it holds."""
    with live_app.app_context():
        rnd = db.session.get_one(Round, round_id)
        return rnd.state, box.box_exists(round_id), ballots_cast(round_id)


def _fits_a_phone(page: Any, name: str) -> None:
    """The page, laid out again 360 px wide, has no horizontal scrolling; then back to desktop."""
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 640})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, (name, width)
    page.set_viewport_size(DESKTOP)


def _scan(png: Path) -> list[str]:
    """What a real QR decoder reads in a picture."""
    out = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, check=False)
    return out.stdout.decode("utf-8").split()


def test_scrutineer_keeps_the_key_and_closes_the_round(
    live_app: Any, live_server: Any, page: Any, phone: Any, tmp_path: Path
) -> None:
    assert shutil.which("zbarimg"), "make test installs zbar-tools"
    page.set_default_timeout(TIMEOUT)
    phone.set_default_timeout(TIMEOUT)
    round_id, codes = _prepare(live_app)
    base = live_server.url

    page.goto(base + "/login")
    page.fill("#username", "organiser")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")

    # 开始测评 with the key kept by the 监票人: the answer is the key page.
    page.goto(f"{base}/rounds/{round_id}")
    custody = page.locator("form.open-form").get_by_label(re.compile("监票人保管"))
    custody.check()
    assert custody.is_checked()
    page.locator("form.open-form").get_by_role("button", name="开始测评").click()
    # The confirmation page keeps the custody chosen and says what becomes fixed.
    assert page.get_by_label(re.compile("监票人保管")).is_checked()
    page.get_by_role("button", name="确认开始测评").click()
    page.locator("#box-key").wait_for()
    assert "此页面只显示一次" in page.locator(".box-key-page").inner_text()
    key = page.locator("#box-key").inner_text().strip()
    assert len(key) == 44 and KEY.fullmatch(key), key
    # Not open yet: it opens once the key comes back from this page (a lost page loses nothing).
    state, box_open, _ = _round_state(live_app, round_id)
    assert state == RoundState.DRAFT and not box_open
    with live_app.app_context():
        rnd = db.session.get_one(Round, round_id)
        assert rnd.box_custody == box.CUSTODY_SCRUTINEER
        assert bytes(rnd.box_public_key or b"") == bytes(PrivateKey(box.parse_key(key)).public_key)

    # The QR code is inline SVG and a real decoder reads the key out of it.
    qr = page.locator(".box-key-qr svg")
    assert qr.count() == 1
    qr_png = tmp_path / "qr.png"
    qr.screenshot(path=str(qr_png))
    assert _scan(qr_png) == [key]

    # 下载密钥文件 really downloads a file holding the same key between the BEGIN/END lines.
    link = page.locator("#key-download")
    assert link.get_attribute("download")
    assert (link.get_attribute("href") or "").startswith("data:text/plain")
    with page.expect_download(timeout=TIMEOUT) as download_info:
        link.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == f"测评活动{round_id}-投票箱私钥.txt"
    key_file = tmp_path / download.suggested_filename
    download.save_as(str(key_file))
    lines = key_file.read_text(encoding="utf-8").splitlines()
    begin, end = lines.index(box.KEY_BEGIN), lines.index(box.KEY_END)
    assert lines[begin + 1 : end] == [key]

    # The key page fits a phone: the key wraps and the QR code scales down, still readable.
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    qr_box = qr.bounding_box()
    assert qr_box is not None and qr_box["x"] + qr_box["width"] <= PHONE_WIDTH
    key_box = page.locator("#box-key").bounding_box()
    assert key_box is not None and key_box["x"] + key_box["width"] <= PHONE_WIDTH
    qr.screenshot(path=str(tmp_path / "qr-phone.png"))
    assert _scan(tmp_path / "qr-phone.png") == [key]
    page.set_viewport_size(DESKTOP)

    # The downloaded key file, given back on the same page, opens the round.
    page.set_input_files("#open-key-file", str(key_file))
    page.get_by_role("button", name="提交私钥并开始测评").click()
    page.wait_for_url(f"{base}/rounds/{round_id}")
    assert "已开始" in page.locator(".flash").inner_text()
    assert _round_state(live_app, round_id) == (RoundState.OPEN, True, 0)
    with live_app.app_context():
        assert box.wrapped_key(round_id) is None  # the server kept nothing

    # A phone votes once while the round is open.
    phone.goto(f"{base}/v/{codes[0]}")
    phone.wait_for_url(f"{base}/ballot")
    for fieldset in phone.locator("fieldset.subject").all():
        fieldset.locator("label.choice").first.click()
    phone.get_by_role("button", name="提交选票").click()
    phone.locator("#receipt").wait_for()
    assert _round_state(live_app, round_id) == (RoundState.OPEN, True, 1)

    # 结束测评 without the key: refused, in Chinese, and the round stays open.
    page.goto(f"{base}/rounds/{round_id}")
    assert "结束测评时须提交密钥" in page.locator("main").inner_text()
    page.get_by_role("link", name="结束测评").click()
    page.wait_for_url(f"{base}/rounds/{round_id}/close")
    assert page.locator("fieldset.box-key").is_visible()
    _fits_a_phone(page, "close page")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.get_by_role("button", name="确认结束测评").click()
    assert refused.value.status == 400
    error = page.locator(".flash-error")
    error.wait_for()
    assert "密钥" in error.inner_text()
    assert page.locator("h1").inner_text() == "确认结束测评？"
    assert _round_state(live_app, round_id) == (RoundState.OPEN, True, 1)
    _fits_a_phone(page, "close page with the error")

    # With the downloaded key file the round closes, and its results can be seen.
    page.set_input_files("#key_file", str(key_file))
    page.get_by_role("button", name="确认结束测评").click()
    page.wait_for_url(f"{base}/rounds/{round_id}")
    assert "已结束" in page.locator(".flash").inner_text()
    assert page.locator("h1 .badge").inner_text() == "已结束"
    assert _round_state(live_app, round_id) == (RoundState.CLOSED, False, 1)
    page.get_by_role("link", name="测评结果").first.click()
    page.wait_for_url(f"{base}/rounds/{round_id}/results")
    assert page.locator("h1").inner_text() == "测评结果"
    assert "参测情况" in page.locator("main").inner_text()
