"""Importing subjects from Excel (SPEC §7): the template, row-numbered errors, all or nothing."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook

from evaluation.accounts.units import create_child_unit, find_unit
from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Person, Round, Subject, Unit
from evaluation.rounds import lifecycle, state
from evaluation.rounds.subject_import import (
    HEADERS,
    SubjectRow,
    check_rows,
    import_subjects,
    read_sheet,
    template_workbook,
)
from evaluation.rule_sets import load_graded_forms
from tests.helpers.databases import ROOT
from tests.helpers.web import AuthActions, csrf_token

FORMS = load_graded_forms(ROOT / "ballots")


def xlsx(rows: list[list[Any]], header: list[Any] | None = None, title: str = "测评对象") -> bytes:
    """A workbook whose first sheet has ``header`` (the template's by default) and ``rows``."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws.append(list(HEADERS) if header is None else header)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


GOOD_ROWS = [
    ["县局领导班子", "gansu-team", None, None, "甘肃省局/兰州市局/榆中县局"],
    ["王五", "领导班子正职履行党风廉政建设责任制情况民主测评表", "局长", "B001", None],
    ["赵六", "GANSU-MEMBER", "副局长", 1002, None],
    ["王五（廉洁自律）", "gansu-integrity", None, "B001", None],
]


# --- reading the sheet (no database) ------------------------------------------------------------


def test_rows_keep_excel_row_numbers_and_skip_blank_rows() -> None:
    data = xlsx([GOOD_ROWS[0], [None, None, None, None, None], GOOD_ROWS[2]])
    rows = read_sheet(data, "名单.xlsx")
    assert [r.row for r in rows] == [2, 4]
    assert rows[1] == SubjectRow(
        row=4, name="赵六", form="GANSU-MEMBER", post="副局长", staff_no="1002"
    )


def test_columns_may_come_in_any_order_and_optional_ones_may_be_missing() -> None:
    data = xlsx([["gansu-team", "市局领导班子"]], header=["测评表", "测评对象"])
    [row] = read_sheet(data, "x.xlsx")
    assert (row.name, row.form, row.post, row.staff_no, row.unit) == (
        "市局领导班子",
        "gansu-team",
        "",
        "",
        "",
    )


def test_formula_cells_are_read_as_text_not_evaluated() -> None:
    data = xlsx([["=1+1", "gansu-team", '=HYPERLINK("http://x","y")', None, None]])
    [row] = read_sheet(data, "x.xlsx")
    assert row.name == "=1+1"
    assert row.post == '=HYPERLINK("http://x","y")'


@pytest.mark.parametrize(
    ("header", "problems"),
    [
        (["测评对象", "职务"], ["第 1 行：缺少“测评表”列"]),
        (
            ["姓名", "测评表"],
            [
                "第 1 行 A 列：未知的列名“姓名”（应为 测评对象、测评表、职务、工号、所属单位）",
                "第 1 行：缺少“测评对象”列",
            ],
        ),
        (["测评对象", "测评表", "测评表"], ["第 1 行 C 列：列名“测评表”重复"]),
    ],
)
def test_header_problems_are_all_listed(header: list[str], problems: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        read_sheet(xlsx([["王五", "gansu-team", None]], header=header), "x.xlsx")
    assert caught.value.problems == problems
    assert "未导入任何内容" in caught.value.message


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"name,form\n", "名单.csv", "不是 .xlsx 格式"),
        (b"", "名单.xlsx", "上传的文件是空的"),
        (b"PK\x03\x04 definitely not a workbook", "名单.xlsx", "不是有效的 .xlsx 工作簿"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "名单.xlsx", "不是有效的 .xlsx 工作簿"),
    ],
)
def test_foreign_or_corrupt_files_are_refused(data: bytes, name: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_sheet(data, name)
    assert message in caught.value.message


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("hello.txt", "not excel")
    with pytest.raises(InputError) as caught:
        read_sheet(out.getvalue(), "名单.xlsx")
    assert "不是有效的 .xlsx 工作簿" in caught.value.message


def test_empty_sheets_are_refused() -> None:
    with pytest.raises(InputError, match="第 1 行应为表头"):
        read_sheet(xlsx([], header=[]), "x.xlsx")
    with pytest.raises(InputError, match="表格中没有测评对象"):
        read_sheet(xlsx([]), "x.xlsx")


def test_check_rows_names_every_problem_with_its_row() -> None:
    rows = read_sheet(
        xlsx(
            [
                ["王五", "gansu-principal"],  # 2: fine
                [None, "gansu-team", "局长"],  # 3: no name
                ["赵六", "不存在的表"],  # 4: unknown form
                ["王五", "gansu-team"],  # 5: duplicate of row 2
                ["市局领导班子", "gansu-team"],  # 6: already in the round
                ["孙七", None],  # 7: no form
                ["周八", "gansu-team", None, None, "甘肃省局//兰州市局"],  # 8: bad unit path
                ["吴" * 201, "gansu-team"],  # 9: too long
            ],
        ),
        "x.xlsx",
    )
    problems = check_rows(rows, FORMS, existing=["市局领导班子"])
    assert problems == [
        "第 3 行：测评对象为空",
        "第 4 行：测评表“不存在的表”不存在（可填写表的编号或名称："
        "gansu-discipline、gansu-integrity、gansu-member、gansu-principal、gansu-team）",
        "第 5 行：测评对象“王五”与第 2 行重复",
        "第 6 行：测评对象“市局领导班子”已在本测评活动中",
        "第 7 行：测评表为空",
        "第 8 行：单位“甘肃省局//兰州市局”格式不正确：应为“上级/下级”，各级名称不能为空",
        "第 9 行：测评对象超过 200 个字",
    ]


def test_check_rows_accepts_form_ids_in_any_case_and_chinese_titles() -> None:
    rows = read_sheet(xlsx(GOOD_ROWS), "x.xlsx")
    assert check_rows(rows, FORMS, existing=[]) == []


def test_check_rows_refuses_units_outside_the_users_scope() -> None:
    rows = read_sheet(xlsx([GOOD_ROWS[0]]), "x.xlsx")
    problems = check_rows(
        rows, FORMS, [], unit_allowed=lambda path: path.startswith("甘肃省局/天水")
    )
    assert problems == ["第 2 行：所属单位“甘肃省局/兰州市局/榆中县局”不在您的管辖范围内"]


def test_template_has_the_header_the_forms_and_a_dropdown() -> None:
    wb = load_workbook(io.BytesIO(template_workbook(FORMS)))
    assert wb.sheetnames == ["测评对象", "说明"]
    ws = wb["测评对象"]
    assert [c.value for c in ws[1]] == list(HEADERS)
    help_rows = [[c.value for c in row] for row in wb["说明"].iter_rows(min_row=2, max_row=6)]
    assert [r[0] for r in help_rows] == list(FORMS)  # in 004's order, as load_forms gives
    assert [r[1] for r in help_rows] == [f.title for f in FORMS.values()]
    [validation] = ws.data_validations.dataValidation
    assert validation.type == "list"
    assert validation.formula1 == "'说明'!$B$2:$B$6"
    assert "B2:B1001" in str(validation.sqref)
    # the blank template is itself a valid (empty) upload
    with pytest.raises(InputError, match="表格中没有测评对象"):
        read_sheet(template_workbook(FORMS), "模板.xlsx")


# --- importing into a round (both engines) ------------------------------------------------------


@pytest.fixture
def yuzhong(sample_round: Round) -> Unit:
    """榆中县局, beneath the sample round's 兰州市局 (a sheet never creates a unit)."""
    unit = create_child_unit(sample_round.unit, "榆中县局", actor="test")
    db.session.commit()
    return unit


def _filled_template(rows: list[list[Any]]) -> bytes:
    wb = load_workbook(io.BytesIO(template_workbook(FORMS)))
    ws = wb["测评对象"]
    for number, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            ws.cell(row=number, column=column, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _counts(rnd: Round) -> tuple[int, int, int]:
    db.session.expire_all()
    subjects = db.session.execute(db.select(Subject).where(Subject.round_id == rnd.id)).all()
    persons = db.session.execute(db.select(Person)).all()
    audits = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "subjects.import")
    ).all()
    return len(subjects), len(persons), len(audits)


def test_import_adds_every_row_in_one_go(app: Flask, sample_round: Round, yuzhong: Unit) -> None:
    before = _counts(sample_round)
    added = import_subjects(
        sample_round, _filled_template(GOOD_ROWS), actor="organiser", filename="名单.xlsx"
    )
    db.session.commit()
    assert [s.name for s in added] == [r[0] for r in GOOD_ROWS]
    assert [s.form_id for s in added] == [
        "gansu-team",
        "gansu-principal",
        "gansu-member",
        "gansu-integrity",
    ]
    team, wang, zhao, wang_integrity = added
    assert team.person is None and team.unit.path == "甘肃省局/兰州市局/榆中县局"
    assert wang.person is not None and wang.person is wang_integrity.person
    assert wang.person.staff_no == "B001" and wang.post == "局长"
    assert zhao.person is not None and zhao.person.staff_no == "1002"
    assert _counts(sample_round) == (before[0] + 4, before[1] + 2, 1)
    entry = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "subjects.import")
    ).scalar_one()
    assert entry.actor == "organiser"
    assert entry.details == {"round_id": sample_round.id, "source": "名单.xlsx", "subjects": 4}


def test_a_staff_number_conflict_names_its_row_and_imports_nothing(
    app: Flask, sample_round: Round, yuzhong: Unit
) -> None:
    before = _counts(sample_round)
    rows = [GOOD_ROWS[0], ["钱九", "gansu-member", "科长", "A001", None]]  # A001 is 张三
    with pytest.raises(InputError) as caught:
        import_subjects(sample_round, _filled_template(rows), actor="organiser", filename="x.xlsx")
    db.session.rollback()
    assert caught.value.problems == ["第 3 行：工号 A001 已属于“张三”，与“钱九”不符，请核对工号"]
    assert _counts(sample_round) == before


def test_import_only_in_draft(app: Flask, sample_round: Round) -> None:
    lifecycle.open_round(sample_round, actor="test")
    db.session.commit()
    with pytest.raises(StateError):
        import_subjects(sample_round, _filled_template(GOOD_ROWS), actor="o", filename="x.xlsx")


# --- the pages ---------------------------------------------------------------------------------


def _upload(client: FlaskClient, url: str, token: str, data: bytes, name: str) -> Any:
    return client.post(
        url,
        data={"csrf_token": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_template_download(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    auth.login("organiser")
    response = client.get(f"/rounds/{sample_round.id}/subjects/template.xlsx")
    assert response.status_code == 200
    assert response.mimetype == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "attachment" in response.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(response.data))
    assert [c.value for c in wb["测评对象"][1]] == list(HEADERS)
    page = client.get(f"/rounds/{sample_round.id}/subjects/import").get_data(as_text=True)
    assert f"/rounds/{sample_round.id}/subjects/template.xlsx" in page


def test_upload_through_the_page(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round, yuzhong: Unit
) -> None:
    auth.login("organiser")
    url = f"/rounds/{sample_round.id}/subjects/import"
    token = csrf_token(client, url)
    response = _upload(client, url, token, _filled_template(GOOD_ROWS), "名单.xlsx")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/rounds/{sample_round.id}#subjects"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已从“名单.xlsx”导入 4 个测评对象" in page
    assert "王五（廉洁自律）" in page
    assert _counts(sample_round)[0] == 9


BAD_UPLOADS = [
    (
        "wrong header",
        xlsx([["王五", "gansu-team"]], header=["姓名", "表"]),
        "x.xlsx",
        ["第 1 行 A 列：未知的列名“姓名”", "第 1 行：缺少“测评对象”列", "第 1 行：缺少“测评表”列"],
    ),
    (
        "empty name",
        xlsx([GOOD_ROWS[0], [None, "gansu-team", "局长"]]),
        "x.xlsx",
        ["第 3 行：测评对象为空"],
    ),
    (
        "unknown form",
        xlsx([GOOD_ROWS[0], GOOD_ROWS[1], ["赵六", "考核表"]]),
        "x.xlsx",
        ["第 4 行：测评表“考核表”不存在"],
    ),
    (
        "duplicate in file",
        xlsx([GOOD_ROWS[1], GOOD_ROWS[0], GOOD_ROWS[1]]),
        "x.xlsx",
        ["第 4 行：测评对象“王五”与第 2 行重复"],
    ),
    (
        "duplicate of an existing subject",
        xlsx([GOOD_ROWS[0], ["市局纪检组", "gansu-discipline"]]),
        "x.xlsx",
        ["第 3 行：测评对象“市局纪检组”已在本测评活动中"],
    ),
    ("not xlsx", b"name,form\n", "名单.xls", ["不是 .xlsx 格式"]),
    ("corrupt", b"PK\x03\x04garbage", "名单.xlsx", ["不是有效的 .xlsx 工作簿"]),
    (
        "unit outside scope",
        xlsx([["天水市局领导班子", "gansu-team", None, None, "甘肃省局/天水市局"]]),
        "x.xlsx",
        ["第 2 行：所属单位“甘肃省局/天水市局”不在您的管辖范围内"],
    ),
    (
        "unknown unit (a typo)",
        xlsx(
            [
                GOOD_ROWS[1],
                ["七里河区局领导班子", "gansu-team", None, None, "甘肃省局/兰州市局/七里和区局"],
            ]
        ),
        "x.xlsx",
        ["第 3 行：单位“甘肃省局/兰州市局/七里和区局”不存在，请先在“单位”页面新建"],
    ),
]


@pytest.mark.parametrize(
    ("data", "name", "messages"),
    [pytest.param(d, n, m, id=case) for case, d, n, m in BAD_UPLOADS],
)
def test_bad_uploads_list_every_problem_and_store_nothing(
    client: FlaskClient,
    auth: AuthActions,
    users: Any,
    sample_round: Round,
    yuzhong: Unit,
    data: bytes,
    name: str,
    messages: list[str],
) -> None:
    auth.login("organiser")
    url = f"/rounds/{sample_round.id}/subjects/import"
    token = csrf_token(client, url)
    before = _counts(sample_round)
    response = _upload(client, url, token, data, name)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for message in messages:
        assert message in page
    assert _counts(sample_round) == before
    assert find_unit("甘肃省局/兰州市局/七里和区局") is None  # nothing was created
    assert len(state.get_round(sample_round.id).subjects) == 5


def test_upload_without_a_file(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    auth.login("organiser")
    url = f"/rounds/{sample_round.id}/subjects/import"
    response = client.post(url, data={"csrf_token": csrf_token(client, url)})
    assert response.status_code == 400
    assert "请选择 Excel 文件" in response.get_data(as_text=True)


def test_viewers_cannot_import_and_open_rounds_refuse(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    url = f"/rounds/{sample_round.id}/subjects/import"
    auth.login("viewer")
    token = csrf_token(client, "/")
    assert _upload(client, url, token, xlsx(GOOD_ROWS), "x.xlsx").status_code == 403
    assert client.get(f"/rounds/{sample_round.id}/subjects/template.xlsx").status_code == 403
    auth.logout()
    lifecycle.open_round(state.get_round(sample_round.id), actor="test")
    db.session.commit()
    auth.login("organiser")
    token = csrf_token(client, "/")
    response = _upload(client, url, token, xlsx(GOOD_ROWS), "x.xlsx")
    assert response.status_code == 409
    assert "不能导入测评对象" in response.get_data(as_text=True)
    assert _counts(sample_round)[0] == 5


def test_every_error_of_a_file_is_listed_in_one_pass_the_staff_number_too(
    app: Flask, sample_round: Round, yuzhong: Unit
) -> None:
    """Four mistakes in one file — an empty name, an unknown form, a unit that does not exist
    and a 工号 of someone else — are all reported on the first upload, by row."""
    before = _counts(sample_round)
    rows = [
        GOOD_ROWS[0],
        [None, "gansu-member", "科长", None, None],
        ["孙七", "没有这张表", "科长", None, None],
        ["周八", "gansu-member", "科长", None, "甘肃省局/没有这个局"],
        ["钱九", "gansu-member", "科长", "A001", None],  # A001 is 张三
    ]
    with pytest.raises(InputError) as caught:
        import_subjects(sample_round, _filled_template(rows), actor="organiser", filename="x.xlsx")
    db.session.rollback()
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert [p.split("：", 1)[0] for p in problems] == ["第 3 行", "第 4 行", "第 5 行", "第 6 行"]
    assert "工号 A001 已属于“张三”" in problems[3]
    assert _counts(sample_round) == before
