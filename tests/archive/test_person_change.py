"""A cadre's 职务 and unit change only by the explicit, audited 修改职务或调动 (issue: 工号)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import AuditEntry, Person
from tests.helpers.web import AuthActions, csrf_token

LANZHOU = "甘肃省局/兰州市局"
YUZHONG = "甘肃省局/兰州市局/榆中县局"
TIANSHUI = "甘肃省局/天水市局"


@pytest.fixture
def cadres(users: Any) -> dict[str, Person]:
    made = {
        "lz": Person(name="张三", staff_no="LZ001", unit=ensure_unit(LANZHOU), post="副局长"),
        "ts": Person(name="王廉洁", staff_no="TS002", unit=ensure_unit(TIANSHUI), post="副局长"),
    }
    ensure_unit(YUZHONG)
    db.session.add_all(made.values())
    db.session.commit()
    return made


def _unit_id(path: str) -> int:
    return ensure_unit(path).id


def _change(client: FlaskClient, person: Person, post: str, unit: str) -> Any:
    page = f"/archive/person/{person.id}"
    token = csrf_token(client, "/")
    return client.post(
        f"{page}/change", data={"csrf_token": token, "post": post, "unit_id": _unit_id(unit)}
    )


def test_an_organiser_changes_a_cadres_post_and_moves_them_within_scope_audited(
    client: FlaskClient, auth: AuthActions, cadres: dict[str, Person]
) -> None:
    auth.login("organiser")
    page = client.get(f"/archive/person/{cadres['lz'].id}").get_data(as_text=True)
    assert "修改职务或调动" in page
    response = _change(client, cadres["lz"], "局长", YUZHONG)
    assert response.status_code == 302
    db.session.expire_all()
    person = db.session.get_one(Person, cadres["lz"].id)
    assert (person.post, person.unit.path) == ("局长", YUZHONG)
    entry = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "person.change")
    ).scalar_one()
    assert entry.actor == "organiser"
    assert entry.details["before"] == {"post": "副局长", "unit": LANZHOU}
    assert entry.details["after"] == {"post": "局长", "unit": YUZHONG}


def test_nobody_moves_a_cadre_across_units_they_do_not_both_see(
    client: FlaskClient, auth: AuthActions, cadres: dict[str, Person]
) -> None:
    auth.login("organiser")
    # Into 天水 (outside the organiser's tree): the choice is not offered, and refused.
    assert _change(client, cadres["lz"], "副局长", TIANSHUI).status_code == 400
    # A 天水 cadre: not found, and nothing names them.
    refused = _change(client, cadres["ts"], "局长", LANZHOU)
    assert refused.status_code == 404 and "王廉洁" not in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get_one(Person, cadres["lz"].id).unit.path == LANZHOU
    assert db.session.get_one(Person, cadres["ts"].id).post == "副局长"
    assert not db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "person.change")
    ).first()
    # A viewer may not change anything.
    auth.logout()
    auth.login("viewer")
    assert _change(client, cadres["lz"], "局长", LANZHOU).status_code in (403, 404)


def test_a_superior_of_both_units_moves_a_cadre_between_them(
    client: FlaskClient, auth: AuthActions, cadres: dict[str, Person]
) -> None:
    auth.login("admin")  # the whole tree
    assert _change(client, cadres["ts"], "局长", LANZHOU).status_code == 302
    db.session.expire_all()
    moved = db.session.get_one(Person, cadres["ts"].id)
    assert (moved.post, moved.unit.path, moved.staff_no) == ("局长", LANZHOU, "TS002")
