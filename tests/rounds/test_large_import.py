"""A round of a thousand subjects: imported in one go, with the same rows as one at a time.

The cadres of an import are read at once and kept current while it runs, so a subject sees
the cadres the subjects before it created or completed: a second form for the same 工号, a
name matched in its unit, a missing 工号 filled in.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from evaluation.accounts.units import ensure_unit
from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Person, Round, Subject
from evaluation.rounds import subject_import
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.web import SAMPLE_ROUND

LANZHOU = "甘肃省局/兰州市局"
TIANSHUI = "甘肃省局/天水市局"
OFFICE = f"{LANZHOU}/办公室"
GROUPS = 248  # four subjects each; with the sample's five and four more: 1,001 subjects
TOTAL = 5 + 4 * GROUPS + 4


def _generated_subjects() -> list[dict[str, Any]]:
    """Teams (some in a sub-unit), cadres with and without 工号, second forms for some."""
    subjects: list[dict[str, Any]] = []
    for i in range(GROUPS):
        subjects.append({"name": f"科室{i}", "form": "gansu-team", "unit": OFFICE})
        subjects.append({"name": f"干部{i}", "form": "gansu-member", "post": "科长"})
        subjects.append(
            {"name": f"工号干部{i}", "form": "gansu-member", "post": "副科长", "staff_no": f"B{i}"}
        )
        subjects.append(
            {"name": f"工号干部{i}（廉洁自律）", "form": "gansu-integrity", "staff_no": f"B{i}"}
        )
    subjects += [
        {"name": "赵一", "form": "gansu-member", "staff_no": "Z1"},  # fills in 赵一's 工号
        {"name": "赵一（廉洁自律）", "form": "gansu-integrity", "staff_no": "Z1"},
        {"name": "钱二", "form": "gansu-member"},  # matched by name in the unit
        {"name": "钱二（廉洁自律）", "form": "gansu-integrity", "staff_no": "Q2"},
    ]
    return subjects


def _round_data(extra: list[dict[str, Any]]) -> dict[str, Any]:
    data = parse_round_text(SAMPLE_ROUND)
    data["subjects"] = data["subjects"] + extra
    return data


@pytest.fixture
def known_cadres(app: Flask) -> dict[str, int]:
    """赵一 (no 工号) and 钱二 (工号 Q2) of 兰州市局; 王廉洁 (工号 TS002) of 天水市局."""
    lanzhou = ensure_unit(LANZHOU)
    people = [
        Person(name="赵一", unit=lanzhou, post="科员"),
        Person(name="钱二", staff_no="Q2", unit=lanzhou, post="科员"),
        Person(name="王廉洁", staff_no="TS002", unit=ensure_unit(TIANSHUI), post="副局长"),
    ]
    db.session.add_all(people)
    db.session.commit()
    return {p.name: p.id for p in people}


def test_a_thousand_subjects_are_imported_with_their_cadres(known_cadres: dict[str, int]) -> None:
    extra = _generated_subjects()
    rnd = import_round(_round_data(extra), actor="test")
    db.session.commit()
    round_id = rnd.id
    db.session.expire_all()

    rows = list(
        db.session.execute(
            db.select(Subject).where(Subject.round_id == round_id).order_by(Subject.position)
        ).scalars()
    )
    typed = parse_round_text(SAMPLE_ROUND)["subjects"] + extra
    assert len(rows) == TOTAL
    assert [s.position for s in rows] == list(range(TOTAL))
    assert [(s.name, s.form_id, s.post) for s in rows] == [
        (t["name"], t["form"], t.get("post", "")) for t in typed
    ]
    by_name = {s.name: s for s in rows}

    # Teams belong to their unit (created once), never to a cadre.
    teams = [s for s in rows if s.form_id == "gansu-team" and s.name.startswith("科室")]
    assert teams and all(s.person is None and s.unit.path == OFFICE for s in teams)
    assert by_name["市局领导班子"].unit.path == LANZHOU

    # A second form for the same 工号 is the same cadre; names without 工号 are distinct cadres.
    for i in range(GROUPS):
        cadre = by_name[f"工号干部{i}"].person
        assert cadre is not None
        assert (cadre.name, cadre.staff_no, cadre.post, cadre.unit.path) == (
            f"工号干部{i}",
            f"B{i}",
            "副科长",
            LANZHOU,
        )
        assert by_name[f"工号干部{i}（廉洁自律）"].person_id == cadre.id
        plain = by_name[f"干部{i}"].person
        assert plain is not None and plain.staff_no is None and plain.id != cadre.id
    assert by_name["张三（廉洁自律）"].person_id == by_name["张三"].person_id

    # Known cadres are matched, not duplicated; 赵一's missing 工号 is filled in.
    zhao, qian = known_cadres["赵一"], known_cadres["钱二"]
    assert by_name["赵一"].person_id == by_name["赵一（廉洁自律）"].person_id == zhao
    assert by_name["钱二"].person_id == by_name["钱二（廉洁自律）"].person_id == qian
    assert db.session.get(Person, zhao).staff_no == "Z1"  # type: ignore[union-attr]
    assert db.session.get(Person, zhao).post == "科员"  # type: ignore[union-attr]
    persons = db.session.execute(db.select(db.func.count()).select_from(Person)).scalar_one()
    assert persons == 3 + 2 + 2 * GROUPS  # known + 张三, 李四 + two per generated group

    assert set(db.session.get(Round, round_id).forms) == {  # type: ignore[union-attr]
        "gansu-team",
        "gansu-discipline",
        "gansu-principal",
        "gansu-member",
        "gansu-integrity",
    }
    actions = [
        (e.action, e.details.get("subjects"))
        for e in db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars()
    ]
    assert ("round.import", TOTAL) in actions
    assert not [a for a, _ in actions if a == "subject.add"]


def test_the_first_refused_subject_of_a_thousand_is_named(known_cadres: dict[str, int]) -> None:
    extra = _generated_subjects()
    extra[700] = {"name": "王廉洁", "form": "gansu-member", "staff_no": "TS002"}
    extra[800] = {"name": "孙三", "form": "gansu-member", "staff_no": "B1"}
    with pytest.raises(InputError) as caught:
        import_round(_round_data(extra), actor="test", scope=ensure_unit(LANZHOU))
    assert caught.value.message == (
        "第 706 个 [[subjects]]：工号 TS002 已在其他单位使用，不可用，请核对工号"
    )
    db.session.rollback()
    assert db.session.execute(db.select(db.func.count()).select_from(Subject)).scalar_one() == 0


def test_every_refused_row_of_a_large_sheet_is_listed(
    known_cadres: dict[str, int], sample_round: Round
) -> None:
    rows = [
        subject_import.SubjectRow(row=n, name=f"对象{n}", form="gansu-member", staff_no=f"S{n}")
        for n in range(2, 902)
    ]
    rows[100] = subject_import.SubjectRow(
        row=102, name="王廉洁", form="gansu-member", staff_no="TS002"
    )
    rows[500] = subject_import.SubjectRow(row=502, name="李五", form="gansu-member", staff_no="S2")
    with pytest.raises(InputError) as caught:
        subject_import.add_rows(sample_round, rows, actor="test", scope=ensure_unit(LANZHOU))
    assert caught.value.problems == [
        "第 102 行：工号 TS002 已在其他单位使用，不可用，请核对工号",
        "第 502 行：工号 S2 已属于“对象2”，与“李五”不符，请核对工号",
    ]
