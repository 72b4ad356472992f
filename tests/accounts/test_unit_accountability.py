"""The 单位 page chooses each unit's accountability rule set (SPEC §9): admins, within their
scope, audited; the choice shows which set applies and where it was chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.accounts.operations import create_user
from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import AuditEntry
from tests.helpers.archive import LANZHOU, TIANSHUI, with_strict_set
from tests.helpers.web import PASSWORD, AuthActions, csrf_token


@pytest.fixture
def strict_set(app: Flask, tmp_path: Path) -> Path:
    """A copy of the ballots folder holding a second, stricter set (``strict``)."""
    return with_strict_set(app, tmp_path)


def test_the_units_page_chooses_a_set_within_scope_audited(
    app: Flask, client: FlaskClient, auth: AuthActions, users: dict[str, Any], strict_set: Path
) -> None:
    lanzhou, tianshui = ensure_unit(LANZHOU), ensure_unit(TIANSHUI)
    db.session.commit()
    auth.login("admin")
    page = client.get("/units").get_data(as_text=True)
    assert f'action="/units/{lanzhou.id}/accountability"' in page
    assert "测试用从严规则集" in page and "沿用上级单位（某县责任追究办法（000 §五））" in page
    token = csrf_token(client, "/units")
    response = client.post(
        f"/units/{lanzhou.id}/accountability", data={"csrf_token": token, "rules": "strict"}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert ensure_unit(LANZHOU).accountability_rules == "strict"
    last = (
        db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id.desc())).scalars().first()
    )
    assert last is not None and (last.actor, last.action) == ("admin", "unit.accountability_rules")
    page = client.get("/units").get_data(as_text=True)
    assert '<option value="strict" selected>' in page
    refused = client.post(
        f"/units/{lanzhou.id}/accountability",
        data={"csrf_token": token, "rules": "nope"},
        follow_redirects=True,
    )
    assert "责任追究规则集“nope”不存在" in refused.get_data(as_text=True)
    auth.logout()
    # an admin of 兰州 cannot choose for 天水; an organiser cannot choose at all

    create_user(
        actor="test", username="lzadmin", password=PASSWORD, role="admin", unit_path=LANZHOU
    )
    db.session.commit()
    auth.login("lzadmin")
    token = csrf_token(client, "/units")
    outside = client.post(
        f"/units/{tianshui.id}/accountability", data={"csrf_token": token, "rules": "strict"}
    )
    assert outside.status_code == 404
    auth.logout()
    auth.login("organiser")
    assert client.get("/units").status_code in (403, 404)
    db.session.expire_all()
    assert ensure_unit(TIANSHUI).accountability_rules is None


def test_the_page_says_where_a_units_set_comes_from(
    app: Flask, client: FlaskClient, auth: AuthActions, users: dict[str, Any], strict_set: Path
) -> None:
    province = ensure_unit("甘肃省局")
    ensure_unit(LANZHOU)
    province.accountability_rules = "strict"
    db.session.commit()
    auth.login("admin")
    page = client.get("/units").get_data(as_text=True)
    assert "现用：测试用从严规则集（沿用“甘肃省局”）" in page
    assert "000 §五" in page and "仅为示例" in page
