"""Issue 16 item 5: the 廉政档案 keeps, per entry, the paper ballots and 废票 of the strata that
rated the subject, and its export (printed with LibreOffice) and pages show them; entries of a
round without paper are as they always were."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

from flask.testing import FlaskClient
from openpyxl import load_workbook

from evaluation.archive.export import ENTRY_COLUMNS, workbook_bytes
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Round
from evaluation.rounds import lifecycle
from tests.helpers import tally as th
from tests.helpers.office import render_pdf
from tests.helpers.paper_round import paper_round
from tests.helpers.tally import INTEGRITY, MEMBER, ORGAN, PRINCIPAL, TEAM, vote
from tests.helpers.web import AuthActions

TEAM_TEXT = "参评 22 人含纸质票 9 张，其中废票 3 张（空白票 2、方框外有标记 1），废票不计入票数"
PRINCIPAL_TEXT = "参评 15 人含纸质票 2 张，其中废票 1 张（空白票 1），废票不计入票数"


def _archive(rnd: Round) -> dict[str, ArchiveEntry]:
    lifecycle.archive_round(rnd, actor="test")
    db.session.commit()
    entries = db.session.execute(
        db.select(ArchiveEntry).where(ArchiveEntry.round_id == rnd.id)
    ).scalars()
    return {e.subject_name: e for e in entries}


def _printed(pdf: Path) -> str:
    """The PDF's text in reading order, a wrapped cell's lines joined (pdftotext, no layout:
    with -layout the narrow 计算说明 column interleaves with its neighbours)."""
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return re.sub(r"\s+", "", text)


def _remarks(data: bytes) -> dict[str, str]:
    sheet = load_workbook(io.BytesIO(data))["档案记录"]
    name, remarks = ENTRY_COLUMNS.index("测评对象"), ENTRY_COLUMNS.index("计算说明")
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    return {str(r[name]): str(r[remarks] or "") for r in rows if r[name]}


def test_entries_keep_the_paper_of_the_strata_that_rated_them(
    app: object, sample_round: Round, tmp_path: Path
) -> None:
    entries = _archive(paper_round(sample_round))
    every = ["班子成员", "中层干部", "一般干部"]
    both = ["班子成员", "中层干部"]
    team = {
        "used": 22,
        "ballots": 9,
        "invalid": 3,
        "invalid_by_rule": {"空白票": 2, "方框外有标记": 1},
    }
    others = {"used": 15, "ballots": 2, "invalid": 1, "invalid_by_rule": {"空白票": 1}}
    assert entries[TEAM].figures["paper"] == {"strata": every, **team}
    assert entries[ORGAN].figures["paper"] == {"strata": every, **team}
    for name in (PRINCIPAL, MEMBER, INTEGRITY):  # 一般干部 does not rate them
        assert entries[name].figures["paper"] == {"strata": both, **others}, name
    # the sealed counts are what the entry says: 废票 are in no subject's figures
    assert entries[PRINCIPAL].figures["valid"] + entries[PRINCIPAL].figures["abstentions"] == 14

    data = workbook_bytes(list(entries.values()))
    remarks = _remarks(data)
    assert TEAM_TEXT in remarks[TEAM]
    person = entries[PRINCIPAL].person
    shown = person.name if person is not None else PRINCIPAL
    assert PRINCIPAL_TEXT in remarks[shown]
    path = tmp_path / "archive.xlsx"
    path.write_bytes(data)
    printed = _printed(render_pdf(path, tmp_path / "pdf"))
    assert re.sub(r"\s+", "", TEAM_TEXT) in printed
    assert re.sub(r"\s+", "", PRINCIPAL_TEXT) in printed


def test_archive_pages_show_paper_and_invalid_ballots(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    entries = _archive(paper_round(sample_round))
    auth.login("viewer")
    unit = client.get(f"/archive/unit/{entries[TEAM].unit_id}").get_data(as_text=True)
    assert TEAM_TEXT in unit
    person = entries[PRINCIPAL].person_id
    assert person is not None
    page = client.get(f"/archive/person/{person}").get_data(as_text=True)
    assert PRINCIPAL_TEXT in page and TEAM_TEXT not in page
    export = client.get(f"/archive/export.xlsx?person={person}")
    assert export.status_code == 200
    assert any(PRINCIPAL_TEXT in text for text in _remarks(export.data).values())


def test_entries_of_a_round_without_paper_are_unchanged(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    entries = _archive(sample_round)
    assert all("paper" not in e.figures for e in entries.values())
    remarks = _remarks(workbook_bytes(list(entries.values())))
    assert remarks and not any("纸质" in t or "废票" in t for t in remarks.values())
    auth.login("viewer")
    page = client.get(f"/archive/unit/{entries[TEAM].unit_id}").get_data(as_text=True)
    assert "纸质" not in page and "废票" not in page
    person = th.subject(sample_round, PRINCIPAL).person_id
    page = client.get(f"/archive/person/{person}").get_data(as_text=True)
    assert "纸质" not in page and "废票" not in page


def test_a_round_with_spoiled_paper_ballots_verifies(
    app: object, runner: object, sample_round: Round
) -> None:
    """废票 took part (they count in turnout) but are no ballots: ``flask verify`` finds the
    box's ballots equal to the codes used and the valid paper ballots, and passes."""
    from evaluation.tally.aggregate import sealed_result

    rnd = paper_round(sample_round)
    sealed = sealed_result(rnd)
    assert sum(t.paper.invalid for t in sealed.turnout) == 3  # 空白票 2, 方框外有标记 1
    assert sealed.ballots == sealed.used - 3
    result = runner.invoke(args=["verify", str(rnd.id)])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert "核验通过" in result.output
