"""Accounts: the admin's user page, deactivation, login rate limit, session expiry, login walls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.accounts.units import find_unit
from evaluation.extensions import db
from evaluation.models import AuditEntry, Role, Round, Unit, User
from tests.helpers.web import PASSWORD, AuthActions, csrf_token


def _actions(action: str) -> list[AuditEntry]:
    return list(
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action)).scalars()
    )


def _user(username: str) -> User | None:
    db.session.expire_all()
    return db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()


NEW_USER = {
    "username": "zhangsan",
    "role": "organiser",
    "password": "a-long-password",
    "password2": "a-long-password",
}
LANZHOU = "甘肃省局/兰州市局"


def _new_user(**change: str) -> dict[str, str]:
    """The new-account form, with 兰州市局 picked from the list of units."""
    unit = find_unit(LANZHOU)
    assert unit is not None
    return {**NEW_USER, "unit_id": str(unit.id), **change}


def _unit_count() -> int:
    return len(db.session.execute(db.select(Unit)).all())


def test_user_page_is_for_admins_only(client: FlaskClient, auth: AuthActions, users: Any) -> None:
    assert client.get("/users").headers["Location"].startswith("/login")
    for who in ("organiser", "viewer"):
        auth.login(who)
        response = client.get("/users")
        assert response.status_code == 403
        assert "您的账号没有执行此操作的权限" in response.get_data(as_text=True)
        token = csrf_token(client, "/")
        response = client.post("/users", data=_new_user(csrf_token=token))
        assert response.status_code == 403
        auth.logout()
    assert _user("zhangsan") is None
    auth.login("admin")
    page = client.get("/users").get_data(as_text=True)
    for text in ("账号管理", "organiser", "组织者", "查看者", "甘肃省局/天水市局", "新建账号"):
        assert text in page


def test_admin_creates_an_account_that_can_log_in(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    auth.login("admin")
    token = csrf_token(client, "/users")
    response = client.post("/users", data=_new_user(csrf_token=token))
    assert response.status_code == 303
    assert "已创建账号“zhangsan”" in client.get("/users").get_data(as_text=True)
    user = _user("zhangsan")
    assert user is not None and user.role == Role.ORGANISER and user.active
    assert user.unit is not None and user.unit.path == LANZHOU
    [entry] = [e for e in _actions("user.create") if e.details["username"] == "zhangsan"]
    assert entry.actor == "admin" and entry.details["role"] == "organiser"
    assert "password" not in str(entry.details)
    auth.logout()
    assert auth.login("zhangsan", "a-long-password").status_code == 302


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password2": "another-password"}, "两次输入的密码不一致"),
        ({"password": "short", "password2": "short"}, "密码至少 8 位"),
        ({"username": "viewer"}, "用户“viewer”已存在"),
        ({"username": "VIEWER"}, "用户“VIEWER”已存在（用户名不区分大小写：已有“viewer”）"),
        ({"unit_id": "0"}, "组织者、查看者和计票员必须指定所属单位"),
        ({"unit_id": "99999"}, "不是有效的选择"),
        ({"role": "root"}, "不是有效的选择"),
        ({"username": ""}, "请填写用户名"),
    ],
)
def test_bad_accounts_are_refused(
    client: FlaskClient, auth: AuthActions, users: Any, change: dict[str, str], message: str
) -> None:
    auth.login("admin")
    token = csrf_token(client, "/users")
    before = len(_actions("user.create"))
    count = len(db.session.execute(db.select(User)).all())
    response = client.post("/users", data=_new_user(**change, csrf_token=token))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert len(db.session.execute(db.select(User)).all()) == count
    assert len(_actions("user.create")) == before


def test_a_typed_unit_path_creates_no_unit(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    """The unit is picked from the tree; a path typed into the form (a typo) creates nothing."""
    auth.login("admin")
    page = client.get("/users").get_data(as_text=True)
    assert '<select id="unit_id"' in page and "单位”页面新建" in page
    token = csrf_token(client, "/users")
    units = _unit_count()
    data = {**NEW_USER, "unit": "甘肃省局/兰洲市局", "csrf_token": token}
    response = client.post("/users", data=data)
    assert response.status_code == 400
    assert "组织者、查看者和计票员必须指定所属单位" in response.get_data(as_text=True)
    assert _unit_count() == units and find_unit("甘肃省局/兰洲市局") is None
    assert _user("zhangsan") is None


def test_deactivated_accounts_cannot_log_in_and_lose_their_sessions(app: Flask, users: Any) -> None:
    admin_client = app.test_client()
    AuthActions(admin_client).login("admin")
    viewer_client = app.test_client()
    AuthActions(viewer_client).login("viewer")
    assert viewer_client.get("/").status_code == 200

    viewer_id = users["viewer"].id
    token = csrf_token(admin_client, "/users")
    response = admin_client.post(f"/users/{viewer_id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 303
    assert "已停用账号“viewer”" in admin_client.get("/users").get_data(as_text=True)
    viewer = _user("viewer")
    assert viewer is not None and not viewer.active
    assert _actions("user.deactivate")[0].details == {"username": "viewer"}
    assert _actions("user.deactivate")[0].actor == "admin"
    # the open session ends at once
    assert viewer_client.get("/").headers["Location"].startswith("/login")
    # and the password no longer works
    response = AuthActions(app.test_client()).login("viewer")
    assert response.status_code == 401

    response = admin_client.post(f"/users/{viewer_id}/reactivate", data={"csrf_token": token})
    assert response.status_code == 303
    assert _actions("user.reactivate")[0].details == {"username": "viewer"}
    assert AuthActions(app.test_client()).login("viewer").status_code == 302


def test_admin_cannot_deactivate_themselves(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    auth.login("admin")
    token = csrf_token(client, "/users")
    response = client.post(f"/users/{users['admin'].id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 303
    assert "不能停用自己的账号" in client.get("/users").get_data(as_text=True)
    admin = _user("admin")
    assert admin is not None and admin.active
    assert _actions("user.deactivate") == []
    assert client.post("/users/9999/deactivate", data={"csrf_token": token}).status_code == 404


def test_the_last_admin_cannot_be_deactivated(app: Flask, users: Any) -> None:
    from evaluation.accounts.operations import create_user, set_user_active
    from evaluation.errors import InputError

    second = create_user(actor="test", username="admin2", password=PASSWORD, role="admin")
    set_user_active(users["admin"], False, actor=second)
    with pytest.raises(InputError, match="最后一个可用的管理员"):
        # admin2 is now the only active admin; an admin-less system could not be managed
        set_user_active(second, False, actor=users["admin"])


# --- login, sessions, login walls --------------------------------------------------------------


def test_login_is_rate_limited(client: FlaskClient, users: Any) -> None:
    assert client.application.config["LOGIN_RATE_LIMIT"] == "10 per minute;30 per hour"
    token = csrf_token(client, "/login")
    bad = {"username": "organiser", "password": "wrong-password", "csrf_token": token}
    for _ in range(10):
        assert client.post("/login", data=bad).status_code == 401
    response = client.post("/login", data=bad)
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "操作过于频繁" in page and 'lang="zh-CN"' in page
    # even the right password waits until the minute is over
    good = {**bad, "password": PASSWORD}
    assert client.post("/login", data=good).status_code == 429


def test_an_expired_session_is_sent_to_login(
    app: Flask, client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    auth.login("organiser")
    assert client.get("/").status_code == 200
    # Any session older than the lifetime is refused; a negative lifetime makes every
    # existing session too old without waiting.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=-1)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_login_sets_a_session_that_expires(client: FlaskClient, users: Any) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": "organiser", "password": PASSWORD, "csrf_token": token}
    )
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie


def test_organiser_pages_need_login(client: FlaskClient, users: Any, sample_round: Round) -> None:
    rid = sample_round.id
    for url in (
        "/",
        "/rounds/new",
        "/rounds/import",
        f"/rounds/{rid}",
        f"/rounds/{rid}/edit",
        f"/rounds/{rid}/subjects/import",
        f"/rounds/{rid}/subjects/template.xlsx",
        f"/rounds/{rid}/export.toml",
        f"/rounds/{rid}/close",
        "/users",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), url
    token = csrf_token(client, "/login")
    response = client.post(f"/rounds/{rid}/open", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    db.session.expire_all()
    assert db.session.get(Round, rid).state.value == "draft"  # type: ignore[union-attr]
