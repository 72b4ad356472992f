"""An admin scoped to a unit manages that unit's tree and nothing wider (the access module).

The attacker is an admin of 甘肃省局/兰州市局; 天水 is outside its tree. Each refusal names only
what the admin may see, and nothing outside the tree changes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from evaluation.accounts.operations import create_user
from evaluation.accounts.units import find_unit
from evaluation.extensions import db
from evaluation.models import Round, Unit, User
from tests.helpers.web import PASSWORD, AuthActions, csrf_token

LANZHOU = "甘肃省局/兰州市局"
TIANSHUI = "甘肃省局/天水市局"


@pytest.fixture
def scoped_admin(users: dict[str, Any]) -> User:
    """An admin of 兰州市局 (beside the fixture's global admin and 天水 organiser)."""
    admin = create_user(
        actor="test", username="lzadmin", password=PASSWORD, role="admin", unit_path=LANZHOU
    )
    create_user(
        actor="test", username="tsviewer", password=PASSWORD, role="viewer", unit_path=TIANSHUI
    )
    db.session.commit()
    return admin


def _login(auth: AuthActions, client: FlaskClient, who: str) -> str:
    response = auth.login(who)
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client, "/users" if who.endswith("admin") else "/")


def _user(username: str) -> User:
    db.session.expire_all()
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one()
    return user


def _listed(page: str) -> set[str]:
    return set(re.findall(r'data-label="用户名">([^<]*)<', page))


def test_scoped_admin_lists_only_the_accounts_of_its_tree(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    _login(auth, client, "lzadmin")
    page = client.get("/users").get_data(as_text=True)
    assert _listed(page) == {"lzadmin", "organiser", "viewer"}
    assert TIANSHUI not in page  # not even in the list of units to pick from
    # The global admin still sees every account.
    auth.logout()
    _login(auth, client, "admin")
    page = client.get("/users").get_data(as_text=True)
    assert _listed(page) == {"admin", "lzadmin", "organiser", "viewer", "other", "tsviewer"}


def _unit_id(path: str) -> str:
    unit = find_unit(path)
    assert unit is not None, path
    return str(unit.id)


@pytest.mark.parametrize(
    ("role", "unit"),
    [("admin", None), ("admin", TIANSHUI), ("organiser", "甘肃省局"), ("viewer", "99999")],
)
def test_scoped_admin_cannot_create_an_account_wider_than_itself(
    client: FlaskClient,
    auth: AuthActions,
    scoped_admin: User,
    role: str,
    unit: str | None,
) -> None:
    token = _login(auth, client, "lzadmin")
    data = {
        "csrf_token": token,
        "username": "intruder",
        "role": role,
        "unit_id": "0" if unit is None else unit if unit.isdigit() else _unit_id(unit),
        "password": "long-enough-password",
        "password2": "long-enough-password",
    }
    response = client.post("/users", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "不是有效的选择" in page
    assert TIANSHUI not in page
    assert db.session.execute(db.select(User).where(User.username == "intruder")).first() is None


def test_scoped_admin_creates_accounts_inside_its_tree(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    token = _login(auth, client, "lzadmin")
    # The unit is made first on the 单位 page, then picked.
    response = client.post(
        "/units",
        data={"csrf_token": token, "parent_id": _unit_id(LANZHOU), "name": "榆中县局"},
    )
    assert response.status_code == 303
    data = {
        "csrf_token": token,
        "username": "yzadmin",
        "role": "admin",
        "unit_id": _unit_id(LANZHOU + "/榆中县局"),
        "password": "long-enough-password",
        "password2": "long-enough-password",
    }
    assert client.post("/users", data=data).status_code == 303
    made = _user("yzadmin")
    assert made.unit is not None and made.unit.path == "甘肃省局/兰州市局/榆中县局"


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_scoped_admin_cannot_touch_accounts_outside_its_tree(
    client: FlaskClient, auth: AuthActions, scoped_admin: User, action: str
) -> None:
    if action == "reactivate":
        for name in ("other", "admin"):
            _user(name).active = False
        db.session.commit()
    token = _login(auth, client, "lzadmin")
    for name in ("other", "tsviewer", "admin"):
        target = _user(name)
        before = target.active
        response = client.post(f"/users/{target.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 404, name
        page = response.get_data(as_text=True)
        assert "不存在或不在您的管辖范围内" in page and name not in _listed(page)
        assert _user(name).active is before
    # Inside its tree it may.
    viewer = _user("viewer")
    if action == "deactivate":
        response = client.post(f"/users/{viewer.id}/deactivate", data={"csrf_token": token})
        assert response.status_code == 303
        assert _user("viewer").active is False


def test_out_of_range_account_id_is_not_found(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    token = _login(auth, client, "lzadmin")
    for user_id in ("2147483648", "9223372036854775808", "1" * 40):
        response = client.post(f"/users/{user_id}/deactivate", data={"csrf_token": token})
        assert response.status_code == 404


def _new_round(token: str, unit_id: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "title": "2026年度党风廉政建设责任制民主测评",
        "year": "2026",
        "mode": "集中",
        "kind": "本级自测",
        "min_turnout": "2/3",
        "unit_id": unit_id,
    }


def _rounds() -> list[Round]:
    db.session.expire_all()
    return list(db.session.execute(db.select(Round)).scalars())


def test_scoped_admin_cannot_create_a_round_in_a_unit_outside_its_tree(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    token = _login(auth, client, "lzadmin")
    page = client.get("/rounds/new").get_data(as_text=True)
    assert TIANSHUI not in page and 'name="new_unit"' not in page
    for outside in (_unit_id(TIANSHUI), _unit_id("甘肃省局"), "99999"):
        response = client.post("/rounds/new", data=_new_round(token, outside))
        assert response.status_code == 400, outside
        text = response.get_data(as_text=True)
        assert "不是有效的选择" in text and TIANSHUI not in text
    # A path typed beside the list (the old free-text field) creates nothing.
    units = len(db.session.execute(db.select(Unit)).all())
    data = {**_new_round(token, "0"), "new_unit": LANZHOU + "/七里河区局"}
    assert client.post("/rounds/new", data=data).status_code == 400
    assert len(db.session.execute(db.select(Unit)).all()) == units
    assert _rounds() == []
    response = client.post("/rounds/new", data=_new_round(token, _unit_id(LANZHOU)))
    assert response.status_code == 303
    [rnd] = _rounds()
    assert rnd.unit.path == LANZHOU


# --- login: where it sends you next ------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example/",
        "/%0a/evil.example/",
        "/%0d%0a/evil.example/",
        "/%5Cevil.example/",
        "/%5C%5Cevil.example/",
        "//evil.example/",
        "/%20/evil.example/",
        "https://evil.example/",
        "evil.example",
    ],
)
def test_login_never_redirects_to_another_host(
    client: FlaskClient, users: Any, target: str
) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        f"/login?next={target}",
        data={"username": "organiser", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_follows_a_local_next(client: FlaskClient, users: Any) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login?next=/archive%3Fq%3D%E5%BC%A0",
        data={"username": "organiser", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] in ("/archive?q=张", "/archive?q=%E5%BC%A0")


def test_nul_in_a_login_form_is_a_bad_request(client: FlaskClient, users: Any) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": "organiser\x00", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


def test_scoped_admin_cannot_reset_or_deactivate_a_peer_admin_of_its_own_unit(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    """A peer could otherwise take the other admin's password and act under its name."""
    create_user(
        actor="test", username="lzadmin2", password=PASSWORD, role="admin", unit_path=LANZHOU
    )
    db.session.commit()
    token = _login(auth, client, "lzadmin")
    peer = _user("lzadmin2")
    assert "lzadmin2" not in _listed(client.get("/users").get_data(as_text=True))
    for action in ("deactivate", "reset-password"):
        response = client.post(f"/users/{peer.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 404, action
    assert _user("lzadmin2").active is True
    # A superior (the whole tree's admin) may.
    auth.logout()
    token = _login(auth, client, "admin")
    response = client.post(f"/users/{peer.id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 303 and _user("lzadmin2").active is False
