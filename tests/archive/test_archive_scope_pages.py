"""A viewer's archive pages show only what their scope may see (issue: the organiser's year):
a round outside the scope is named without a link, and its ranks are not shown — a rank is a
place among subjects the viewer cannot see."""

from __future__ import annotations

import re

from evaluation.accounts.operations import create_user
from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Round
from tests.helpers.archive import LANZHOU, TIANSHUI, build_history
from tests.helpers.web import PASSWORD


def _row(page: str, title: str) -> str:
    """The table row of the entry of the round titled ``title``."""
    rows = re.findall(r'<tr id="entry-\d+".*?</tr>', page, flags=re.S)
    found = [r for r in rows if title in r]
    assert found, f"no row for {title}"
    return found[0]


def test_rounds_outside_the_scope_are_named_without_links_and_unranked(
    app, client, auth, users
) -> None:  # type: ignore[no-untyped-def]
    history = build_history()
    people = history["people"]
    ensure_unit(TIANSHUI)
    create_user(
        actor="test", username="ts-viewer", password=PASSWORD, role="viewer", unit_path=TIANSHUI
    )
    db.session.commit()
    auth.login("ts-viewer")
    page = client.get(f"/archive/person/{people['A001'].id}").get_data(as_text=True)
    lanzhou_round = db.session.execute(
        db.select(Round).where(Round.title == "2024年度党风廉政建设责任制民主测评")
    ).scalar_one()
    tianshui_round = db.session.execute(
        db.select(Round).where(Round.title == "2026年度天水市局民主测评")
    ).scalar_one()
    outside = _row(page, lanzhou_round.title)
    assert f"/rounds/{lanzhou_round.id}/" not in outside  # named, not linked
    assert "不在您的管辖范围内" in outside
    ranked = db.session.execute(
        db.select(ArchiveEntry.rank).where(
            ArchiveEntry.round_id == lanzhou_round.id, ArchiveEntry.person_id == people["A001"].id
        )
    ).scalars()
    assert any(r is not None for r in ranked)  # there is a rank to hide …
    assert "不显示" in outside  # … and it is not shown
    inside = _row(page, tianshui_round.title)
    assert f"/rounds/{tianshui_round.id}/results" in inside
    assert "不显示" not in inside
    # The round's own page stays closed to this viewer.
    assert client.get(f"/rounds/{lanzhou_round.id}/results").status_code == 404
    # A viewer of 兰州 sees the same rounds linked and ranked.
    auth.logout()
    auth.login("viewer")
    page = client.get(f"/archive/person/{people['A001'].id}").get_data(as_text=True)
    assert f"/rounds/{lanzhou_round.id}/results" in _row(page, lanzhou_round.title)
    assert LANZHOU in page


def test_search_says_how_many_matched_when_its_lists_stop(app, users) -> None:  # type: ignore[no-untyped-def]
    from evaluation.archive import queries

    for name in ("甲县局", "乙县局", "丙县局", "丁县局"):
        ensure_unit(f"{LANZHOU}/{name}")
    db.session.commit()
    found = queries.search(None, "县局", limit=3)
    assert len(found.units) == 3 and found.units_total == 4
    everything = queries.search(None, "县局", limit=100)
    assert found.units_total == everything.units_total == len(everything.units)
