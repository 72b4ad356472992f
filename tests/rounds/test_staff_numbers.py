"""工号 across units: a cadre of another unit is never matched, named or changed.

An organiser of 兰州市局 types, uploads or imports a 工号 that belongs to a cadre of 天水市局.
The refusal says only that the number is in use elsewhere; the 天水 cadre keeps their post and
unit, and no subject of a 兰州 round points at them (so nothing reaches their archive).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import Workbook

from evaluation.accounts.units import ensure_unit
from evaluation.extensions import db
from evaluation.models import Person, Round, Subject
from evaluation.rounds.subject_import import HEADERS
from tests.helpers.web import SAMPLE_ROUND, AuthActions, csrf_token

TIANSHUI = "甘肃省局/天水市局"


@pytest.fixture
def tianshui_cadre(users: Any) -> Person:
    """王廉洁, 天水市局's 副局长, 工号 TS002."""
    person = Person(name="王廉洁", staff_no="TS002", unit=ensure_unit(TIANSHUI), post="副局长")
    db.session.add(person)
    db.session.commit()
    return person


def _login(auth: AuthActions, client: FlaskClient, who: str = "organiser") -> str:
    response = auth.login(who)
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client, "/")


def _person(staff_no: str) -> Person:
    db.session.expire_all()
    return db.session.execute(db.select(Person).where(Person.staff_no == staff_no)).scalar_one()


def _subjects_of(person: Person) -> list[Subject]:
    return list(
        db.session.execute(db.select(Subject).where(Subject.person_id == person.id)).scalars()
    )


def _assert_untouched(person_id: int, page: str) -> None:
    cadre = _person("TS002")
    assert cadre.id == person_id
    assert (cadre.name, cadre.post, cadre.unit.path) == ("王廉洁", "副局长", TIANSHUI)
    assert _subjects_of(cadre) == []
    assert "工号 TS002 已在其他单位使用，不可用" in page


@pytest.mark.parametrize("typed_name", ["张大山", "王廉洁"])
def test_adding_a_subject_never_takes_over_another_units_cadre(
    client: FlaskClient,
    auth: AuthActions,
    sample_round: Round,
    tianshui_cadre: Person,
    typed_name: str,
) -> None:
    token = _login(auth, client)
    response = client.post(
        f"/rounds/{sample_round.id}/subjects",
        data={
            "csrf_token": token,
            "name": typed_name,
            "form_id": "gansu-member",
            "post": "局长",
            "staff_no": "TS002",
        },
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    if typed_name == "张大山":
        assert "王廉洁" not in page
    _assert_untouched(tianshui_cadre.id, page)
    db.session.expire_all()
    assert len(db.session.get_one(Round, sample_round.id).subjects) == 5


def test_excel_import_never_takes_over_another_units_cadre(
    client: FlaskClient, auth: AuthActions, sample_round: Round, tianshui_cadre: Person
) -> None:
    token = _login(auth, client)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "测评对象"
    ws.append(list(HEADERS))
    ws.append(["王廉洁", "gansu-member", "局长", "TS002", None])
    ws.append(["赵六", "gansu-member", "副局长", "TS003", None])
    out = io.BytesIO()
    wb.save(out)
    response = client.post(
        f"/rounds/{sample_round.id}/subjects/import",
        data={"csrf_token": token, "file": (io.BytesIO(out.getvalue()), "名单.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "第 2 行：工号 TS002 已在其他单位使用" in page
    _assert_untouched(tianshui_cadre.id, page)
    assert db.session.execute(db.select(Person).where(Person.staff_no == "TS003")).first() is None


def test_round_file_import_never_takes_over_another_units_cadre(
    client: FlaskClient, auth: AuthActions, users: Any, tianshui_cadre: Person
) -> None:
    token = _login(auth, client)
    text = SAMPLE_ROUND.replace('staff_no = "A002"', 'staff_no = "TS002"')
    response = client.post(
        "/rounds/import",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "2026.toml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "第 4 个 [[subjects]]：工号 TS002 已在其他单位使用" in page
    assert "王廉洁" not in page
    _assert_untouched(tianshui_cadre.id, page)
    assert list(db.session.execute(db.select(Round)).scalars()) == []


def test_a_matched_cadre_keeps_their_own_post(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    """李四 (A002, 副局长) is evaluated as 局长 this round: the subject says so, not the cadre."""
    token = _login(auth, client)
    cadre = _person("A002")
    response = client.post(
        f"/rounds/{sample_round.id}/subjects",
        data={
            "csrf_token": token,
            "name": "李四（廉洁自律）",
            "form_id": "gansu-integrity",
            "post": "局长",
            "staff_no": "A002",
        },
    )
    assert response.status_code == 303
    again = _person("A002")
    assert again.id == cadre.id and again.post == "副局长"
    [subject] = [s for s in _subjects_of(again) if s.name == "李四（廉洁自律）"]
    assert subject.post == "局长"


def test_staff_numbers_inside_the_tree_still_match_for_its_admin(
    client: FlaskClient, auth: AuthActions, sample_round: Round, tianshui_cadre: Person
) -> None:
    """The global admin acts everywhere: the 天水 cadre's 工号 matches them (named, in scope)."""
    token = _login(auth, client, "admin")
    response = client.post(
        f"/rounds/{sample_round.id}/subjects",
        data={
            "csrf_token": token,
            "name": "张大山",
            "form_id": "gansu-member",
            "staff_no": "TS002",
        },
    )
    assert response.status_code == 400
    assert "工号 TS002 已属于“王廉洁”" in response.get_data(as_text=True)


# --- round files nested too deep ---------------------------------------------------------------

DEEP = "title = " + "[" * 50_000 + "]" * 50_000 + "\n"


def test_deeply_nested_round_file_is_refused_on_the_page(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client)
    response = client.post(
        "/rounds/import",
        data={"csrf_token": token, "file": (io.BytesIO(DEEP.encode()), "deep.toml")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "deep.toml 嵌套层数过多" in response.get_data(as_text=True)


def test_deeply_nested_round_file_is_one_line_on_the_command_line(
    runner: Any, tmp_path: Any
) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(DEEP, encoding="utf-8")
    result = runner.invoke(args=["round", "import", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [
        "错误：deep.toml 嵌套层数过多，不是有效的测评文件"
    ]


# --- ids past the integer range ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/rounds/2147483648",
        "/rounds/9223372036854775808",
        "/rounds/" + "9" * 5000,
        "/rounds/2147483648/export.toml",
        "/rounds/1/subjects/2147483648/remove",
    ],
)
def test_out_of_range_ids_are_not_found(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round, url: str
) -> None:
    token = _login(auth, client)
    response = (
        client.get(url) if "remove" not in url else client.post(url, data={"csrf_token": token})
    )
    assert response.status_code == 404


def test_out_of_range_round_id_on_the_command_line(runner: Any, users: Any) -> None:
    result = runner.invoke(args=["round", "archive", "2147483648"])
    assert result.exit_code == 1
    assert "测评活动 2147483648 不存在" in result.output
