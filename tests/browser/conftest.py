"""Browser tests: the real app served on a loopback port, driven by Debian's Chromium.

Playwright cannot download its own browser here; it drives /usr/bin/chromium (installed by
`make test`/`.ci/run`). Browser tests run on SQLite: what they check is the pages, and the
database behaviour is covered on both engines by the other tests.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from evaluation import create_app
from evaluation.extensions import db
from tests.helpers.databases import app_config

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 360, "height": 640}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/browser ``browser`` (a conftest's pytestmark marks nothing),
    so ``make test-fast`` (``-m "not browser and not slow"``) leaves them out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The app served by werkzeug on 127.0.0.1 in a thread."""

    def __init__(self, app: Flask, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Flask]:
    """An app on its own SQLite file, with PUBLIC_BASE_URL pointing at the live server."""
    path = tmp_path / "live.db"
    shutil.copy(sqlite_template, path)
    port = _free_port()
    config = app_config(f"sqlite:///{path}", tmp_path)
    config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    config["LIVE_PORT"] = port
    app = create_app(config)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_server(live_app: Flask) -> Iterator[LiveServer]:
    """The live server; use ``live_app.app_context()`` to prepare data before browsing."""
    server = LiveServer(live_app, int(live_app.config["LIVE_PORT"]))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, with no background networking (the network is closed)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} 不存在：请运行 make browser（apt-get install chromium）")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--disable-gpu",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh desktop page."""
    context = browser.new_context(locale="zh-CN")
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh page at a 360×640 phone viewport with touch."""
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        user_agent=(
            "Mozilla/5.0 (Linux; Android 13; Phone) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47"
        ),
    )
    pg = context.new_page()
    yield pg
    context.close()
