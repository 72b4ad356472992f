"""Upload limits: every oversized or hostile file is refused with a Chinese reason and a 400,
before anything takes the write lock."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from evaluation.codes import codes
from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.models import Round, Subject
from evaluation.rounds import operations, round_file, subject_import
from evaluation.rounds.subject_import import read_sheet
from tests.helpers.uploads import xlsx_with_sheet, zip_bomb_xlsx
from tests.helpers.web import SAMPLE_ROUND, AuthActions, csrf_token


def _expect_refused(data: bytes, text: str) -> None:
    with pytest.raises(InputError) as caught:
        read_sheet(data, "名单.xlsx")
    assert text in caught.value.message


# --- the workbook (no database) ----------------------------------------------------------------


def test_a_zip_bomb_is_refused_by_its_unpacked_size() -> None:
    data = zip_bomb_xlsx()
    assert len(data) < 1024 * 1024
    _expect_refused(data, "解压后超过")


def test_too_many_sheet_rows_are_refused_blank_or_not() -> None:
    blank = xlsx_with_sheet("<row/>" * (subject_import.MAX_SHEET_ROWS + 5))
    _expect_refused(blank, f"表格超过 {subject_import.MAX_SHEET_ROWS} 行")
    # A single cell far below: openpyxl would make up every missing row in between.
    far = xlsx_with_sheet(
        '<row r="1000000"><c r="A1000000" t="inlineStr"><is><t>x</t></is></c></row>'
    )
    _expect_refused(far, f"表格超过 {subject_import.MAX_SHEET_ROWS} 行")


def test_too_many_members_or_not_a_zip_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(subject_import.MAX_MEMBERS + 1):
            archive.writestr(f"x{i}", b"")
    _expect_refused(out.getvalue(), "解压后超过")
    _expect_refused(b"PK\x03\x04 not really", "不是有效的 .xlsx 工作簿")


# --- the pages ---------------------------------------------------------------------------------


def _post_file(client: FlaskClient, url: str, data: bytes, name: str) -> Any:
    return client.post(
        url,
        data={"csrf_token": csrf_token(client, url), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _subject_count(round_id: int) -> int:
    query = db.select(db.func.count()).select_from(Subject).where(Subject.round_id == round_id)
    return int(db.session.execute(query).scalar_one())


def test_hostile_workbooks_get_a_400_page_and_store_nothing(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    auth.login("organiser")
    url = f"/rounds/{sample_round.id}/subjects/import"
    before = _subject_count(sample_round.id)
    for data, text in [
        (zip_bomb_xlsx(), "解压后超过"),
        (xlsx_with_sheet("<row/>" * (subject_import.MAX_SHEET_ROWS + 5)), "表格超过"),
        (b"\x00" * 1000, "不是有效的 .xlsx 工作簿"),
    ]:
        response = _post_file(client, url, data, "名单.xlsx")
        assert response.status_code == 400
        assert text in response.get_data(as_text=True)
    assert _subject_count(sample_round.id) == before


def test_subjects_per_round_are_capped(
    client: FlaskClient,
    auth: AuthActions,
    users: Any,
    sample_round: Round,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(operations, "MAX_SUBJECTS", 7)
    auth.login("organiser")
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>对象{n}</t></is></c>'
        f'<c r="B{n}" t="inlineStr"><is><t>gansu-team</t></is></c></row>'
        for n in range(2, 6)
    )
    url = f"/rounds/{sample_round.id}/subjects/import"
    response = _post_file(client, url, xlsx_with_sheet(rows), "名单.xlsx")
    assert response.status_code == 400
    assert "每个测评活动最多 7 个测评对象" in response.get_data(as_text=True)
    assert _subject_count(sample_round.id) == 5

    subjects = "".join(f'\n[[subjects]]\nname = "对象{i}"\nform = "gansu-team"\n' for i in range(8))
    text = 'title = "t"\nunit = "甘肃省局/兰州市局"\nyear = 2026\n' + subjects
    response = _post_file(client, "/rounds/import", text.encode(), "大.toml")
    assert response.status_code == 400
    assert "每个测评活动最多 7 个" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('title = "t"\nx = ' + "[" * 50 + "]" * 50 + "\n", "嵌套层数"),
        ('title = "t"\nx = ' + "[" * 5000 + "]" * 5000 + "\n", "嵌套层数"),
        ("title = ", "不是有效的 TOML"),
    ],
    ids=["deep", "very-deep", "broken"],
)
def test_hostile_round_files_get_a_400_page(
    client: FlaskClient, auth: AuthActions, users: Any, text: str, message: str
) -> None:
    auth.login("organiser")
    response = _post_file(client, "/rounds/import", text.encode(), "x.toml")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count()).select_from(Round)).scalar_one() == 0


def test_a_round_file_too_large_is_refused_before_parsing() -> None:
    # (Through the page, too: an upload over a few hundred KB is spooled to a temporary file
    # the test client leaves open, so the limit is checked here.)
    text = "# " + "长" * round_file.MAX_ROUND_FILE_CHARS + "\n"
    with pytest.raises(InputError, match="不像是测评文件"):
        round_file.parse_round_text(text, "大.toml")


def test_round_file_limits_on_the_command_line(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text('title = "t"\nx = ' + "[" * 40 + "]" * 40 + "\n", encoding="utf-8")
    result = runner.invoke(args=["round", "import", str(deep)])
    assert result.exit_code == 1
    assert "嵌套层数" in result.output and "Traceback" not in result.output
    large = tmp_path / "large.toml"
    large.write_bytes(b"#" * (4 * round_file.MAX_ROUND_FILE_CHARS + 1))
    result = runner.invoke(args=["round", "import", str(large)])
    assert result.exit_code == 1 and "不像是测评文件" in result.output
    good = tmp_path / "good.toml"
    good.write_text(SAMPLE_ROUND, encoding="utf-8")
    result = runner.invoke(args=["round", "import", str(good)])
    assert result.exit_code == 0, result.output


def test_codes_per_request_are_capped(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    auth.login("organiser")
    url = f"/rounds/{sample_round.id}/codes"
    response = client.post(
        f"{url}/issue",
        data={
            "csrf_token": csrf_token(client, url),
            "stratum": str(sample_round.strata[0].id),
            "count": str(codes.MAX_BATCH + 1),
            "format": "pdf",
        },
    )
    assert response.status_code == 400
    assert f"每批数量应在 1 到 {codes.MAX_BATCH} 之间" in response.get_data(as_text=True)
