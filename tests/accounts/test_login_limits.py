"""Login limits: failures counted per client address and per account; serving refuses
per-process counters with several workers in production."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.serving import check_limit_storage
from tests.helpers.web import PASSWORD, csrf_token

ROOT = Path(__file__).resolve().parents[2]


def _login_from(client: FlaskClient, address: str, username: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_defaults(app: Flask) -> None:
    assert app.config["LOGIN_RATE_LIMIT"] == "10 per minute;30 per hour"
    assert app.config["LOGIN_ACCOUNT_RATE_LIMIT"] == "50 per hour"


def test_failures_from_many_addresses_lock_the_account(app: Flask, users: Any) -> None:
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "5 per hour"
    attacker = app.test_client()
    statuses = [
        _login_from(attacker, f"10.1.0.{n}", "organiser", "wrong-password").status_code
        for n in range(1, 8)
    ]
    assert statuses == [401] * 5 + [429] * 2
    refused = _login_from(attacker, "10.1.0.99", "organiser", "wrong-password")
    page = refused.get_data(as_text=True)
    assert "该账号登录失败次数过多" in page and 'lang="zh-CN"' in page
    # While the account is locked the right password is refused too: otherwise the lock
    # would still answer "right" or "wrong" to a guesser with enough addresses.
    owner = app.test_client()
    assert _login_from(owner, "192.168.5.5", "organiser", PASSWORD).status_code == 429
    # Other accounts, from the very same addresses, are not affected.
    assert _login_from(attacker, "10.1.0.1", "viewer", PASSWORD).status_code == 302


def test_one_address_is_stopped_before_it_can_lock_the_account(app: Flask, users: Any) -> None:
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "5 per hour"
    attacker = app.test_client()
    statuses = [
        _login_from(attacker, "10.2.0.1", "organiser", "wrong-password").status_code
        for _ in range(10)
    ]
    assert statuses == [401] * 3 + [429] * 7  # refused attempts are not counted for the account
    refused = _login_from(attacker, "10.2.0.1", "organiser", PASSWORD)
    assert refused.status_code == 429  # the attacker's address is refused, right password or not
    assert "此地址登录失败次数过多" in refused.get_data(as_text=True)
    # The owner, at another address, still logs in.
    assert _login_from(app.test_client(), "192.168.5.5", "organiser", PASSWORD).status_code == 302


def test_successful_logins_are_not_counted(app: Flask, users: Any) -> None:
    """An office behind one address: colleagues logging in do not use up its limit."""
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per hour"
    for _ in range(5):
        assert _login_from(app.test_client(), "10.3.0.1", "viewer", PASSWORD).status_code == 302
    assert _login_from(app.test_client(), "10.3.0.1", "viewer", "wrong").status_code == 401


# --- several workers need one counter store ---------------------------------------------------

PRODUCTION = {"EVALUATION_ENV": "production", "SECRET_KEY": "x"}


@pytest.mark.parametrize("storage", [None, "memory://", " MEMORY:// "])
def test_production_refuses_per_process_counters_with_several_workers(
    storage: str | None,
) -> None:
    environ = dict(PRODUCTION)
    if storage is not None:
        environ["RATELIMIT_STORAGE_URI"] = storage
    with pytest.raises(RuntimeError, match="RATELIMIT_STORAGE_URI") as refused:
        check_limit_storage(5, environ)
    assert "5 个工作进程" in str(refused.value) and "redis://" in str(refused.value)


@pytest.mark.parametrize(
    ("workers", "environ"),
    [
        (5, {**PRODUCTION, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}),
        (1, PRODUCTION),  # one process: its memory is the only counter
        (2, {}),  # make run: development
        (2, {"FLASK_ENV": "development", "RATELIMIT_STORAGE_URI": "memory://"}),
    ],
)
def test_shared_counters_or_one_worker_or_development_are_accepted(
    workers: int, environ: dict[str, str]
) -> None:
    check_limit_storage(workers, environ)


def test_gunicorn_conf_checks_before_any_worker_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """make serve runs gunicorn with gunicorn.conf.py: its on_starting hook refuses."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    server = SimpleNamespace(cfg=SimpleNamespace(workers=5))
    monkeypatch.setenv("EVALUATION_ENV", "production")
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(RuntimeError, match="限流计数却放在每个进程的内存里"):
        settings["on_starting"](server)
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    settings["on_starting"](server)
