"""The 单位 page: units are created, renamed and merged only there, by admins, within scope.

The scoped admin is an admin of 甘肃省局/兰州市局; 天水 is outside its tree.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from evaluation.accounts.operations import create_user
from evaluation.accounts.units import create_child_unit, ensure_unit, find_unit
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, AuditEntry, Person, Round, Subject, Unit, User
from tests.helpers.archive import EX, QU, run_round, subject
from tests.helpers.web import PASSWORD, SAMPLE_ROUND, AuthActions, csrf_token

LANZHOU = "甘肃省局/兰州市局"
TIANSHUI = "甘肃省局/天水市局"


@pytest.fixture
def scoped_admin(users: dict[str, Any]) -> User:
    """An admin of 兰州市局 (beside the fixture's global admin and 天水 organiser)."""
    admin = create_user(
        actor="test", username="lzadmin", password=PASSWORD, role="admin", unit_path=LANZHOU
    )
    db.session.commit()
    return admin


def _unit(path: str) -> Unit:
    db.session.expire_all()
    unit = find_unit(path)
    assert unit is not None, path
    return unit


def _audits(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    query = db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    return list(db.session.execute(query).scalars())


def _paths() -> list[str]:
    db.session.expire_all()
    return list(db.session.execute(db.select(Unit.path).order_by(Unit.path)).scalars())


def test_units_page_is_for_admins_and_lists_only_the_scope(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    for who in ("organiser", "viewer"):
        auth.login(who)
        assert client.get("/units").status_code == 403
        auth.logout()
    auth.login("lzadmin")
    page = client.get("/units").get_data(as_text=True)
    assert "新建下级单位" in page and LANZHOU in page
    assert TIANSHUI not in page and "新建顶级单位" not in page
    # 查找 narrows the list to the units whose path holds the words, within the scope only.
    every = len(re.findall(r'<td data-label="单位">', page))
    assert every >= 1 and f"共 {every} 个单位。" in page
    found = client.get("/units?q=兰州").get_data(as_text=True)
    assert len(re.findall(r'<td data-label="单位">', found)) == every and "全部列出" in found
    assert "没有名称含“天水”的单位" in client.get("/units?q=天水").get_data(as_text=True)
    auth.logout()
    auth.login("admin")  # the whole tree: 天水 is found, 兰州 is not listed with it
    whole = client.get("/units?q=天水").get_data(as_text=True)
    listed = re.findall(r'<small class="hint">([^<]+)</small></td>', whole)
    assert listed and all("天水" in path for path in listed), listed


def test_admin_creates_a_child_unit_and_it_is_audited(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    auth.login("lzadmin")
    token = csrf_token(client, "/units")
    data = {"csrf_token": token, "parent_id": str(_unit(LANZHOU).id), "name": "榆中县局"}
    response = client.post("/units", data=data)
    assert response.status_code == 303
    assert "已新建单位“甘肃省局/兰州市局/榆中县局”" in client.get("/units").get_data(as_text=True)
    [entry] = _audits("unit.create")
    assert entry.actor == "lzadmin" and entry.details["path"] == LANZHOU + "/榆中县局"
    # The same name again, or a name with a separator, is refused and creates nothing.
    before = _paths()
    for name, message in (("榆中县局", "已存在"), ("七里河/区局", "不能含有“/”")):
        response = client.post("/units", data={**data, "name": name})
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert _paths() == before


def test_scoped_admin_cannot_change_units_outside_its_tree(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    inside = create_child_unit(_unit(LANZHOU), "榆中县局", actor="test")
    db.session.commit()
    auth.login("lzadmin")
    token = csrf_token(client, "/units")
    tianshui, lanzhou, inside_id = _unit(TIANSHUI).id, _unit(LANZHOU).id, inside.id
    before = _paths()
    # Outside the tree: not found (a new unit there, a rename, a merge either way).
    response = client.post(
        "/units", data={"csrf_token": token, "parent_id": str(tianshui), "name": "秦州区局"}
    )
    assert response.status_code == 400 and TIANSHUI not in response.get_data(as_text=True)
    response = client.post(f"/units/{tianshui}/rename", data={"csrf_token": token, "name": "x"})
    assert response.status_code == 404
    assert "不存在或不在您的管辖范围内" in response.get_data(as_text=True)
    merge = {"csrf_token": token, "target_id": str(lanzhou)}
    assert client.post(f"/units/{tianshui}/merge", data=merge).status_code == 404
    merge = {"csrf_token": token, "target_id": str(tianshui)}
    assert client.post(f"/units/{inside_id}/merge", data=merge).status_code == 404
    # Its own unit is its scope: only an admin above may rename or merge it.
    response = client.post(f"/units/{lanzhou}/rename", data={"csrf_token": token, "name": "x"})
    assert response.status_code == 403
    merge = {"csrf_token": token, "target_id": str(inside_id)}
    assert client.post(f"/units/{lanzhou}/merge", data=merge).status_code == 403
    # A top unit only by an admin of the whole tree.
    response = client.post("/units/top", data={"csrf_token": token, "name": "另一个省局"})
    assert response.status_code == 403
    assert _paths() == before
    assert _audits("unit.rename") == [] and _audits("unit.merge") == []


def test_rename_moves_the_whole_subtree(
    client: FlaskClient, auth: AuthActions, scoped_admin: User
) -> None:
    county = create_child_unit(_unit(LANZHOU), "榆中县局", actor="test")
    create_child_unit(county, "城关所", actor="test")
    ensure_unit(LANZHOU + "/七里河区局")
    db.session.commit()
    county_id = county.id
    auth.login("lzadmin")
    token = csrf_token(client, "/units")
    # A clash with a sibling is refused, naming the path.
    response = client.post(
        f"/units/{county_id}/rename", data={"csrf_token": token, "name": "七里河区局"}
    )
    assert response.status_code == 303
    page = client.get("/units").get_data(as_text=True)
    assert "单位“甘肃省局/兰州市局/七里河区局”已存在" in page
    assert LANZHOU + "/榆中县局/城关所" in _paths()
    response = client.post(
        f"/units/{county_id}/rename", data={"csrf_token": token, "name": " 榆中县税务局 "}
    )
    assert response.status_code == 303
    paths = _paths()
    assert LANZHOU + "/榆中县税务局" in paths and LANZHOU + "/榆中县税务局/城关所" in paths
    assert not any("榆中县局" in p for p in paths)
    assert _unit(LANZHOU + "/榆中县税务局").id == county_id
    [entry] = _audits("unit.rename")
    assert entry.actor == "lzadmin" and entry.details["units"] == 2
    assert entry.details["old"] == LANZHOU + "/榆中县局"


def test_merge_moves_everything_and_removes_the_unit(
    client: FlaskClient, auth: AuthActions, users: dict[str, Any]
) -> None:
    chengguan = LANZHOU + "/城关区局"
    run_round(
        title="2025年度民主测评",
        unit=chengguan,
        year=2025,
        votes={"城关区局领导班子": [EX, EX, QU, QU, QU, None]},
        subjects=[subject("城关区局领导班子", "gansu-team")],
        closed_at=datetime(2025, 12, 1, tzinfo=UTC),
    )
    source = _unit(chengguan)
    db.session.add(Person(name="王五", staff_no="C001", unit=source, post="局长"))
    create_child_unit(source, "东岗所", actor="test")
    create_user(actor="test", username="cgviewer", password=PASSWORD, role="viewer", unit=source)
    db.session.commit()
    source_id, target_id = source.id, _unit(LANZHOU).id
    auth.login("admin")
    # The 单位 page links each unit to a page of its own for choosing where it goes.
    assert f"/units/{source_id}/merge" in client.get("/units").get_data(as_text=True)
    page = client.get(f"/units/{source_id}/merge").get_data(as_text=True)
    offered = re.findall(r'<option value="(\d+)">', page)
    assert str(target_id) in offered and str(source_id) not in offered
    assert str(_unit(chengguan + "/东岗所").id) not in offered  # nor beneath itself
    token = csrf_token(client, f"/units/{source_id}/merge")
    # Never into itself or beneath itself.
    for bad in (source_id, _unit(chengguan + "/东岗所").id):
        response = client.post(
            f"/units/{source_id}/merge", data={"csrf_token": token, "target_id": str(bad)}
        )
        assert response.status_code == 303
        assert "不能把单位" in client.get("/units").get_data(as_text=True)
    assert find_unit(chengguan) is not None
    response = client.post(
        f"/units/{source_id}/merge", data={"csrf_token": token, "target_id": str(target_id)}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Unit, source_id) is None
    for model in (Person, Subject, Round, User, ArchiveEntry):
        rows = db.session.execute(db.select(model).where(model.unit_id == source_id)).all()
        assert rows == [], model
    assert (
        db.session.execute(db.select(ArchiveEntry).where(ArchiveEntry.unit_id == target_id))
        .scalars()
        .first()
    )
    [rnd] = db.session.execute(db.select(Round).where(Round.title == "2025年度民主测评")).scalars()
    assert rnd.unit_id == target_id
    viewer = db.session.execute(db.select(User).where(User.username == "cgviewer")).scalar_one()
    assert viewer.unit_id == target_id
    assert LANZHOU + "/东岗所" in _paths()
    [entry] = _audits("unit.merge")
    assert entry.actor == "admin" and entry.details["source"] == chengguan
    assert entry.details["target"] == LANZHOU
    moved = entry.details["moved"]
    assert moved["rounds"] == 1 and moved["users"] == 1 and moved["persons"] == 1
    assert moved["archive_entries"] == 1 and moved["child_units"] == 1
    assert "档案记录" in entry.details["note"]


def test_round_file_names_a_missing_unit_only_for_an_admin_in_scope(
    client: FlaskClient, auth: AuthActions, users: dict[str, Any]
) -> None:
    text = SAMPLE_ROUND.replace(f'unit = "{LANZHOU}"', f'unit = "{LANZHOU}/西固区局"')

    def upload(token: str) -> Any:
        data = {"csrf_token": token, "file": (io.BytesIO(text.encode()), "r.toml")}
        return client.post("/rounds/import", data=data, content_type="multipart/form-data")

    auth.login("organiser")
    response = upload(csrf_token(client, "/rounds/import"))
    assert response.status_code == 403
    assert f"单位“{LANZHOU}/西固区局”不存在" in response.get_data(as_text=True)
    assert find_unit(LANZHOU + "/西固区局") is None
    auth.logout()
    auth.login("admin")
    assert upload(csrf_token(client, "/rounds/import")).status_code == 303
    assert find_unit(LANZHOU + "/西固区局") is not None


def test_an_admin_of_the_whole_tree_creates_a_top_unit(
    client: FlaskClient, auth: AuthActions, users: dict[str, Any]
) -> None:
    auth.login("admin")
    page = client.get("/units").get_data(as_text=True)
    assert "新建顶级单位" in page and TIANSHUI in page
    token = csrf_token(client, "/units")
    response = client.post("/units/top", data={"csrf_token": token, "name": "青海省局"})
    assert response.status_code == 303
    assert "青海省局" in _paths()
    assert [e.details["path"] for e in _audits("unit.create")] == ["青海省局"]
