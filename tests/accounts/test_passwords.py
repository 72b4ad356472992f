"""Passwords: changing one's own, an admin's reset to a one-time password, ``flask user passwd``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.security import generate_password_hash

from evaluation.accounts.operations import create_user
from evaluation.extensions import db
from evaluation.models import AuditEntry, User
from tests.helpers.web import PASSWORD, AuthActions, csrf_token

NEW = "a-brand-new-password"


def _user(username: str) -> User:
    db.session.expire_all()
    return db.session.execute(db.select(User).where(User.username == username)).scalar_one()


def _actions(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    return list(
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action)).scalars()
    )


def _change(client: FlaskClient, current: str, new: str, again: str | None = None):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/account/password")
    data = {"current": current, "password": new, "password2": again or new, "csrf_token": token}
    return client.post("/account/password", data=data)


def _reset(client: FlaskClient, user_id: int):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/users")
    return client.post(f"/users/{user_id}/reset-password", data={"csrf_token": token})


# --- one's own password ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "organiser", "viewer"])
def test_every_account_reaches_the_change_page_from_the_header(
    client: FlaskClient, auth: AuthActions, users: Any, who: str
) -> None:
    auth.login(who)
    assert 'href="/account/password"' in client.get("/").get_data(as_text=True)
    page = client.get("/account/password").get_data(as_text=True)
    assert "修改密码" in page and "当前密码" in page


def test_the_change_page_needs_a_login(client: FlaskClient, users: Any) -> None:
    assert client.get("/account/password").headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong-password", NEW, NEW, "当前密码不正确"),
        (PASSWORD, NEW, "something-else", "两次输入的密码不一致"),
        (PASSWORD, "short", "short", "密码至少 8 位"),
        (PASSWORD, PASSWORD, PASSWORD, "新密码不能与当前密码相同"),
    ],
)
def test_bad_changes_are_refused(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: Any,
    current: str,
    new: str,
    again: str,
    message: str,
) -> None:
    auth.login("organiser")
    before = _user("organiser").password_hash
    response = _change(client, current, new, again)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _user("organiser").password_hash == before
    assert _actions("password.change") == []


def test_an_account_changes_its_own_password(
    app: Flask, client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    auth.login("organiser")
    response = _change(client, PASSWORD, NEW)
    assert response.status_code == 303
    assert "密码已修改" in client.get("/").get_data(as_text=True)
    [entry] = _actions("password.change")
    assert entry.actor == "organiser" and entry.details == {"username": "organiser"}
    auth.logout()
    assert AuthActions(app.test_client()).login("organiser", PASSWORD).status_code == 401
    assert AuthActions(app.test_client()).login("organiser", NEW).status_code == 302
    assert _user("organiser").password_hash.startswith("scrypt:")


# --- an admin's reset ---------------------------------------------------------------------------


def test_an_admin_resets_a_password_to_a_one_time_password(app: Flask, users: Any) -> None:
    organiser = app.test_client()
    AuthActions(organiser).login("organiser")
    admin = app.test_client()
    AuthActions(admin).login("admin")
    assert "重置密码" in admin.get("/users").get_data(as_text=True)

    response = _reset(admin, users["organiser"].id)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    page = response.get_data(as_text=True)
    match = re.search(r'class="one-time-password">([^<]+)<', page)
    assert match, page
    one_time = match.group(1)
    assert len(one_time) >= 8
    # not in the session cookie (a flashed message would be), not in the audit log
    assert one_time not in (admin.get_cookie("session").value or "")  # type: ignore[union-attr]
    [entry] = _actions("password.reset")
    assert entry.actor == "admin" and entry.details == {"username": "organiser"}
    assert one_time not in str(entry.details)

    # the organiser's open session ends; the old password no longer works
    assert organiser.get("/").headers["Location"].startswith("/login")
    assert AuthActions(app.test_client()).login("organiser", PASSWORD).status_code == 401

    # The one-time password logs in, but only to the change page, until it is replaced.
    fresh = app.test_client()
    logged_in = AuthActions(fresh).login("organiser", one_time)
    assert logged_in.headers["Location"] == "/account/password"
    for url in ("/", "/users", "/archive"):
        response = fresh.get(url)
        assert response.status_code == 302 and response.headers["Location"] == "/account/password"
    token = csrf_token(fresh, "/account/password")
    blocked = fresh.post("/rounds/new", data={"csrf_token": token, "title": "x"})
    assert blocked.headers["Location"] == "/account/password"
    assert "一次性密码" in fresh.get("/account/password").get_data(as_text=True)
    assert _change(fresh, one_time, NEW).status_code == 303
    assert fresh.get("/").status_code == 200
    assert not _user("organiser").must_change_password
    assert AuthActions(app.test_client()).login("organiser", one_time).status_code == 401


def test_resets_stay_within_the_admins_scope(app: Flask, users: Any) -> None:
    create_user(
        actor="test",
        username="city-admin",
        password=PASSWORD,
        role="admin",
        unit_path="甘肃省局/兰州市局",
    )
    db.session.commit()
    client = app.test_client()
    AuthActions(client).login("city-admin")
    before = _user("other").password_hash
    for user in ("other", "admin"):  # 天水市局, and the admin over the whole tree
        assert _reset(client, users[user].id).status_code == 404
    assert _user("other").password_hash == before
    assert _reset(client, users["viewer"].id).status_code == 200  # 兰州市局: its own tree
    assert [e.actor for e in _actions("password.reset")] == ["city-admin"]


def test_only_admins_reset_and_not_their_own(app: Flask, users: Any) -> None:
    client = app.test_client()
    auth = AuthActions(client)
    auth.login("organiser")
    assert _reset(client, users["viewer"].id).status_code == 403
    auth.logout()
    auth.login("admin")
    response = _reset(client, users["admin"].id)
    assert response.status_code == 303
    assert "不能重置自己的密码" in client.get("/users").get_data(as_text=True)
    assert _actions("password.reset") == []


# --- hashing --------------------------------------------------------------------------------------


def test_an_older_hash_is_replaced_at_login(app: Flask, users: Any) -> None:
    user = _user("viewer")
    user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:600000")
    db.session.commit()
    assert AuthActions(app.test_client()).login("viewer").status_code == 302
    stored = _user("viewer").password_hash
    assert stored.startswith("scrypt:")
    assert AuthActions(app.test_client()).login("viewer").status_code == 302


# --- flask user passwd ----------------------------------------------------------------------------


def test_flask_user_passwd_sets_a_password(app: Flask, runner: FlaskCliRunner, users: Any) -> None:
    viewer = app.test_client()
    AuthActions(viewer).login("viewer")
    result = runner.invoke(args=["user", "passwd", "viewer"], input=f"{NEW}\n")
    assert result.exit_code == 0, result.output
    assert "已修改用户 viewer 的密码" in result.output
    assert viewer.get("/").headers["Location"].startswith("/login")  # its sessions ended
    assert AuthActions(app.test_client()).login("viewer", PASSWORD).status_code == 401
    assert AuthActions(app.test_client()).login("viewer", NEW).status_code == 302
    [entry] = _actions("password.set")
    assert entry.actor == "命令行" and entry.details == {"username": "viewer"}
    assert NEW not in str(entry.details)


@pytest.mark.parametrize(
    ("name", "typed", "message"),
    [("viewer", "short\n", "密码至少 8 位"), ("nobody", f"{NEW}\n", "用户“nobody”不存在")],
)
def test_flask_user_passwd_refuses_bad_input(
    runner: FlaskCliRunner, users: Any, name: str, typed: str, message: str
) -> None:
    before = _user("viewer").password_hash
    result = runner.invoke(args=["user", "passwd", name], input=typed)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output
    assert _user("viewer").password_hash == before
    assert _actions("password.set") == []


def test_flask_user_passwd_replaces_a_one_time_password(
    app: Flask, runner: FlaskCliRunner, users: Any
) -> None:
    user = _user("viewer")
    user.must_change_password = True
    db.session.commit()
    assert runner.invoke(args=["user", "passwd", "viewer"], input=f"{NEW}\n").exit_code == 0
    assert not _user("viewer").must_change_password
