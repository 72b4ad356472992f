"""测评对象导入: subjects of a round from an Excel sheet (SPEC §7).

The organiser downloads a template (``template_workbook``), fills one row per subject and
uploads it. ``read_sheet`` turns the file into rows and ``check_rows`` finds every problem,
each named by its row number as Excel shows it (the header is row 1); ``import_subjects``
adds the subjects only when there is no problem at all, so nothing is ever half-imported.
Cells are read as stored: a cell holding ``=1+1`` is the text "=1+1", never evaluated.

An upload is read before the write lock is taken (``prepare_rows``) and within limits: the
members of the .xlsx archive may not unpack to more than ``MAX_UNPACKED_BYTES`` (a 100 KB
file can hold a sheet of 70 MB), and at most ``MAX_SHEET_ROWS`` rows of ``MAX_COLUMNS``
cells are read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from evaluation import audit
from evaluation.accounts.units import find_unit, split_path
from evaluation.ballot_forms import BallotForm, form_order
from evaluation.errors import InputError
from evaluation.models import Round, RoundState, Subject, Unit
from evaluation.rounds import operations
from evaluation.rounds.operations import available_forms
from evaluation.rounds.state import require_state

SHEET = "测评对象"
HELP_SHEET = "说明"
NAME, FORM, POST, STAFF_NO, UNIT = "测评对象", "测评表", "职务", "工号", "所属单位"
HEADERS = (NAME, FORM, POST, STAFF_NO, UNIT)
REQUIRED = (NAME, FORM)
MAX_ROWS = operations.MAX_SUBJECTS
# Rows read from the sheet, blank ones included, and cells read per row.
MAX_SHEET_ROWS = MAX_ROWS + 1000
MAX_COLUMNS = 30
# What the .xlsx archive may unpack to; the 2,000-row template filled in is under 2 MB.
MAX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_MEMBERS = 500
# Column widths of the model (models.Subject / Person), checked before anything is stored.
MAX_LENGTH = {NAME: 200, POST: 200, STAFF_NO: 50, UNIT: 1000}


@dataclass(frozen=True)
class SubjectRow:
    """One filled row of the sheet; ``row`` is the Excel row number."""

    row: int
    name: str
    form: str
    post: str = ""
    staff_no: str = ""
    unit: str = ""


def _text(value: Any) -> str:
    """A cell's value as trimmed text (whole numbers without ".0")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def read_sheet(data: bytes, filename: str = "") -> list[SubjectRow]:
    """Parse an uploaded workbook into rows; InputError listing every header problem."""
    if filename and not filename.lower().endswith(".xlsx"):
        raise InputError(
            f"文件“{filename}”不是 .xlsx 格式。请下载模板填写，"
            "或在 Excel/WPS 中把文件“另存为”Excel 工作簿（.xlsx）后再上传。"
        )
    if not data:
        raise InputError("上传的文件是空的，请选择填好的 .xlsx 文件。")
    _check_unpacked_size(data, filename)
    try:
        # data_only=False: a formula cell yields its text ("=1+1"); nothing is evaluated.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many kinds of errors for damaged or foreign files
        raise InputError(
            f"无法读取文件“{filename or '上传的文件'}”：它不是有效的 .xlsx 工作簿，或文件已损坏。"
            "请用下载的模板填写后重新上传。"
        ) from None
    try:
        sheet = workbook[SHEET] if SHEET in workbook.sheetnames else workbook.worksheets[0]
        return _rows(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True))
    except InputError:
        raise
    except Exception:  # a damaged sheet inside a readable archive (or a zip bomb's kin)
        raise InputError("无法读取工作表：文件已损坏，请用下载的模板重新填写后上传。") from None
    finally:
        workbook.close()


def _check_unpacked_size(data: bytes, filename: str) -> None:
    """Refuse an archive that unpacks to more than the limit, before anything unpacks it."""
    damaged = InputError(
        f"无法读取文件“{filename or '上传的文件'}”：它不是有效的 .xlsx 工作簿，或文件已损坏。"
        "请用下载的模板填写后重新上传。"
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise damaged from None
    if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise InputError(
            f"文件“{filename or '上传的文件'}”解压后超过 {MAX_UNPACKED_BYTES // 1024 // 1024} MB，"
            f"不像是测评对象表（最多 {MAX_ROWS} 行），未导入任何内容。请用下载的模板填写后上传。"
        )


def _rows(values: Iterable[tuple[Any, ...]]) -> list[SubjectRow]:
    """The filled rows below the header, numbered as Excel numbers them."""
    it = iter(values)
    header = next(it, None)
    if header is None or not any(_text(v) for v in header):
        raise InputError(
            f"第 1 行应为表头（{'、'.join(HEADERS)}），但它是空的。请使用下载的模板填写。"
        )
    columns = _header_columns(header)
    out: list[SubjectRow] = []
    for number, row in enumerate(it, start=2):
        if number > MAX_SHEET_ROWS:
            raise InputError(
                f"表格超过 {MAX_SHEET_ROWS} 行（含空行），未导入任何内容。"
                f"一次最多导入 {MAX_ROWS} 个测评对象，请删除多余的行或分批导入。"
            )
        cells = {h: _text(row[i]) if i < len(row) else "" for h, i in columns.items()}
        if not any(cells.values()):
            continue  # blank rows between or after the data are ignored
        if len(out) == MAX_ROWS:
            raise InputError(f"一次最多导入 {MAX_ROWS} 个测评对象，请分批导入。")
        out.append(
            SubjectRow(
                row=number,
                name=cells.get(NAME, ""),
                form=cells.get(FORM, ""),
                post=cells.get(POST, ""),
                staff_no=cells.get(STAFF_NO, ""),
                unit=cells.get(UNIT, ""),
            )
        )
    if not out:
        raise InputError("表格中没有测评对象：请从第 2 行起每行填写一个测评对象。")
    return out


def _header_columns(header: tuple[Any, ...]) -> dict[str, int]:
    """Map each known header to its column index; InputError for every header problem."""
    problems: list[str] = []
    columns: dict[str, int] = {}
    for i, value in enumerate(header):
        name = _text(value)
        letter = get_column_letter(i + 1)
        if not name:
            continue
        if name not in HEADERS:
            problems.append(f"第 1 行 {letter} 列：未知的列名“{name}”（应为 {'、'.join(HEADERS)}）")
        elif name in columns:
            problems.append(f"第 1 行 {letter} 列：列名“{name}”重复")
        else:
            columns[name] = i
    for name in REQUIRED:
        if name not in columns:
            problems.append(f"第 1 行：缺少“{name}”列")
    if problems:
        raise InputError(f"表头有 {len(problems)} 处错误，未导入任何内容。", problems)
    return columns


def form_lookup(forms: dict[str, BallotForm]) -> dict[str, str]:
    """What a cell may say for each form (its id, any case, or its Chinese title) → form id."""
    names: dict[str, str] = {}
    for form in forms.values():
        names[form.id.lower()] = form.id
        names[form.title] = form.id
    return names


def check_rows(
    rows: Iterable[SubjectRow],
    forms: dict[str, BallotForm],
    existing: Iterable[str],
    unit_allowed: Callable[[str], bool] | None = None,
    unit_exists: Callable[[str], bool] | None = None,
) -> list[str]:
    """Every problem of the rows, each with its Excel row number; empty when all is well.

    ``unit_allowed`` tells whether the uploader may name a unit (their own and beneath);
    ``unit_exists`` whether the unit is in the tree (a sheet never creates a unit: a typo
    would become a permanent unit).
    """
    return [
        message for _row, message in row_problems(rows, forms, existing, unit_allowed, unit_exists)
    ]


def row_problems(
    rows: Iterable[SubjectRow],
    forms: dict[str, BallotForm],
    existing: Iterable[str],
    unit_allowed: Callable[[str], bool] | None = None,
    unit_exists: Callable[[str], bool] | None = None,
) -> list[tuple[int, str]]:
    """``check_rows`` with each problem's row number beside it."""
    lookup = form_lookup(forms)
    taken = set(existing)
    seen: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for r in rows:
        where = f"第 {r.row} 行"

        def problem(text: str, row: int = r.row) -> None:
            problems.append((row, text))

        if not r.name:
            problem(f"{where}：测评对象为空")
        elif r.name in taken:
            problem(f"{where}：测评对象“{r.name}”已在本测评活动中")
        elif r.name in seen:
            problem(f"{where}：测评对象“{r.name}”与第 {seen[r.name]} 行重复")
        else:
            seen[r.name] = r.row
        if not r.form:
            problem(f"{where}：测评表为空")
        elif _resolve_form(r.form, lookup) is None:
            known = "、".join(sorted(forms))
            problem(f"{where}：测评表“{r.form}”不存在（可填写表的编号或名称：{known}）")
        for column, limit in MAX_LENGTH.items():
            value = {NAME: r.name, POST: r.post, STAFF_NO: r.staff_no, UNIT: r.unit}[column]
            if len(value) > limit:
                problem(f"{where}：{column}超过 {limit} 个字")
        if r.unit:
            try:
                split_path(r.unit)
            except InputError as exc:
                problem(f"{where}：{exc.message}")
            else:
                if unit_allowed is not None and not unit_allowed(r.unit):
                    problem(f"{where}：所属单位“{r.unit}”不在您的管辖范围内")
                elif unit_exists is not None and not unit_exists(r.unit):
                    problem(f"{where}：单位“{r.unit}”不存在，请先在“单位”页面新建")
    return problems


def _resolve_form(cell: str, lookup: dict[str, str]) -> str | None:
    return lookup.get(cell) or lookup.get(cell.lower())


def prepare_rows(
    rnd: Round,
    data: bytes,
    *,
    filename: str = "",
    unit_allowed: Callable[[str], bool] | None = None,
) -> list[SubjectRow]:
    """Read the sheet for a draft round, writing nothing (InputError if it cannot be read or
    has more rows than the round can take).

    Runs before the write lock is taken: reading a workbook is the slow part of an import.
    The rows' problems are found by ``add_rows``, all of them in one pass.
    """
    require_state(rnd, RoundState.DRAFT, action="导入测评对象")
    rows = read_sheet(data, filename)
    _check_room(rnd, rows)
    return rows


def _check_room(rnd: Round, rows: list[SubjectRow]) -> None:
    room = operations.MAX_SUBJECTS - len(rnd.subjects)
    if len(rows) > room:
        raise InputError(
            f"每个测评活动最多 {operations.MAX_SUBJECTS} 个测评对象：本活动已有 "
            f"{len(rnd.subjects)} 个，表格中有 {len(rows)} 个，未导入任何内容。"
        )


def _unit_exists(path: str) -> bool:
    return find_unit(path) is not None


def add_rows(
    rnd: Round,
    rows: list[SubjectRow],
    *,
    actor: str,
    filename: str = "",
    unit_allowed: Callable[[str], bool] | None = None,
    scope: Unit | None = None,
) -> list[Subject]:
    """Add the rows to a draft round (inside the write transaction): all, or none.

    Every problem of the file is reported in one pass (InputError, by row): those of the cells
    (``row_problems``) and, for the rows without any, those found matching cadres (a 工号 that
    belongs to someone else, say) — the rows are tried and the caller rolls back.
    ``scope``: the importing account's tree, within which cadres are matched by 工号 (None:
    everywhere, the command line).
    """
    require_state(rnd, RoundState.DRAFT, action="导入测评对象")
    _check_room(rnd, rows)  # again: the round may have changed meanwhile
    forms = available_forms()
    found = row_problems(rows, forms, (s.name for s in rnd.subjects), unit_allowed, _unit_exists)
    bad_rows = {row for row, _message in found}
    lookup = form_lookup(forms)
    good = [r for r in rows if r.row not in bad_rows]
    new = [
        operations.NewSubject(
            name=r.name,
            form_id=_resolve_form(r.form, lookup) or r.form,
            post=r.post,
            staff_no=r.staff_no or None,
            unit_path=r.unit or None,
        )
        for r in good
    ]
    result = operations.add_subjects(rnd, new, forms=forms, scope=scope)
    added = result.subjects
    # e.g. a staff number that belongs to someone else: the caller rolls back.
    found += [(good[i].row, f"第 {good[i].row} 行：{exc.message}") for i, exc in result.problems]
    if found:
        problems = [message for _row, message in sorted(found, key=lambda p: p[0])]
        raise InputError(f"表格有 {len(problems)} 处错误，未导入任何内容。", problems)
    audit.record(
        actor, "subjects.import", round_id=rnd.id, source=filename or "Excel", subjects=len(added)
    )
    return added


def import_subjects(
    rnd: Round,
    data: bytes,
    *,
    actor: str,
    filename: str = "",
    unit_allowed: Callable[[str], bool] | None = None,
    scope: Unit | None = None,
) -> list[Subject]:
    """Add the sheet's subjects to a draft round: all of them, or none (InputError)."""
    rows = prepare_rows(rnd, data, filename=filename, unit_allowed=unit_allowed)
    return add_rows(
        rnd, rows, actor=actor, filename=filename, unit_allowed=unit_allowed, scope=scope
    )


def template_workbook(forms: dict[str, BallotForm]) -> bytes:
    """The blank template: sheet 测评对象 (header + examples' guide) and sheet 说明 (the forms)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET
    ws.append(list(HEADERS))
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="F0F2F5")
    for cell in ws[1]:
        cell.font = bold
        cell.fill = fill
    for letter, width in zip("ABCDE", (24, 44, 18, 14, 28), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    # Staff numbers are text (leading zeros matter).
    ws.column_dimensions["D"].number_format = "@"

    help_ws = wb.create_sheet(HELP_SHEET)
    help_ws.append(["测评表编号", "测评表名称", "测评对象类型", "说明"])
    for cell in help_ws[1]:
        cell.font = bold
        cell.fill = fill
    ordered = sorted(forms.values(), key=lambda f: form_order(f.id))
    for form in ordered:
        kind = "干部个人" if form.subject_kind == "person" else "班子或机关"
        note = "测评内容由本次活动自定" if form.items_per_round else ""
        help_ws.append([form.id, form.title, kind, note])
    help_ws.append([])
    guide = [
        "填写说明：",
        "1. 在“测评对象”工作表中，从第 2 行起每行填写一个测评对象，第 1 行表头不要修改。",
        "2. “测评对象”和“测评表”必填；测评表可填写上表的编号或名称（可从下拉列表选择）。",
        "3. 同一测评活动内测评对象名称不能重复；同一干部用两张表测评时，"
        "第二个名称可写作“张三（廉洁自律）”并填写相同工号。",
        "4. 干部按工号匹配已有人员，否则按本单位姓名匹配，否则新建；"
        "“所属单位”不填时为活动所属单位，填写时写已有单位的完整路径，如“甘肃省局/兰州市局”"
        "（新单位请先在“单位”页面新建）。",
        "5. 上传时如有错误，系统列出全部错误及其行号，且不导入任何内容；改正后重新上传即可。",
    ]
    for line in guide:
        help_ws.append([line])
    for letter, width in zip("ABCD", (20, 52, 14, 24), strict=True):
        help_ws.column_dimensions[letter].width = width
    for row in help_ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=False, vertical="top")

    if ordered:
        last = len(ordered) + 1
        validation = DataValidation(
            type="list",
            formula1=f"'{HELP_SHEET}'!$B$2:$B${last}",
            allow_blank=True,
            showErrorMessage=False,
            promptTitle="测评表",
            prompt="从列表选择，或填写测评表编号",
            showInputMessage=True,
        )
        validation.add("B2:B1001")
        ws.add_data_validation(validation)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
