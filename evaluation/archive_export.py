"""廉政档案 workbook: sheets 档案记录 (one row per entry) and 预警 (the rules' flags), plus 核验.

Same conventions as the round workbook: one header row, rates as numeric cells with a percent
format, text from users never turned into a formula (the shared writer neutralises it).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from evaluation import audit
from evaluation.archive import build_timeline, find_person_by_staff_no, share, visible_entries
from evaluation.errors import InputError
from evaluation.models import ArchiveEntry
from evaluation.tally import decimal_text, percent
from evaluation.units import get_unit

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ENTRY_SHEET = "档案记录"
ENTRY_COLUMNS = (
    "姓名",
    "单位",
    "年度",
    "测评活动",
    "测评表",
    "有效票",
    "满意率",
    "信任率",
    "测评等次",
)
FLAG_SHEET = "预警"
FLAG_COLUMNS = ("对象", "规则", "涉及年度", "处理建议")
CHECK_SHEET = "核验"
CHECK_COLUMNS = (
    "姓名",
    "单位",
    "年度",
    "测评活动",
    "活动有效性",
    "计入责任追究",
    "参测率",
    "优秀率",
    "综合得分",
    "排名",
    "封存摘要",
    "更正说明",
)
PERCENT_COLUMNS = {ENTRY_SHEET: ("满意率", "信任率"), CHECK_SHEET: ("参测率", "优秀率")}


def percent_text(value: str | None) -> str:
    """An exact "p/q" share as a percentage rounded half up to two decimals, or "—"."""
    return percent(None if value is None else Fraction(value))


def score_text(value: str | None) -> str:
    """An exact "p/q" score rounded half up to two decimals, or "—"."""
    return decimal_text(None if value is None else Fraction(value))


def _number(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def person_or_subject_name(entry: ArchiveEntry) -> str:
    """姓名: the cadre's name, or the team's / organ's subject name."""
    return entry.person.name if entry.person is not None else entry.subject_name


def entry_rows(entries: Sequence[ArchiveEntry]) -> list[list[Any]]:
    """Rows of sheet 档案记录, in the order of ``ENTRY_COLUMNS``."""
    return [
        [
            person_or_subject_name(e),
            e.unit.path,
            e.year,
            e.figures.get("round_title", ""),
            e.figures.get("form_title", e.form_id),
            int(e.figures.get("valid", 0)),
            _number(share(e, "satisfaction_rate")),
            _number(share(e, "trust_rate")),
            e.grade or "—",
        ]
        for e in entries
    ]


def flag_rows(entries: Sequence[ArchiveEntry]) -> list[list[Any]]:
    """Rows of sheet 预警: every flag the rules raise over ``entries``."""
    timeline = build_timeline(entries)
    return [
        [f.subject_name, f"{f.title}：{f.label}", f.years_text, f.action] for f in timeline.flags
    ]


def check_rows(entries: Sequence[ArchiveEntry]) -> list[list[Any]]:
    """Rows of sheet 核验: validity, counting, seal and correction notes of each entry."""
    counted = build_timeline(entries).counted
    rows = []
    for e in entries:
        notes = "；".join(
            f"{n.reason}（{n.author}，{n.created_at:%Y-%m-%d}）" for n in e.annotations
        )
        rows.append(
            [
                person_or_subject_name(e),
                e.unit.path,
                e.year,
                e.figures.get("round_title", ""),
                "有效" if e.valid_round else "无效（参测率低于最低要求）",
                "是" if e.id in counted else "否",
                _number(share(e, "turnout")),
                _number(share(e, "excellent_rate")),
                _number(share(e, "score")),
                e.rank,
                e.seal,
                notes,
            ]
        )
    return rows


def sheets(entries: Sequence[ArchiveEntry]) -> list[tuple[str, Sequence[str], list[list[Any]]]]:
    """The workbook's sheets as (name, header, rows)."""
    return [
        (ENTRY_SHEET, ENTRY_COLUMNS, entry_rows(entries)),
        (FLAG_SHEET, FLAG_COLUMNS, flag_rows(entries)),
        (CHECK_SHEET, CHECK_COLUMNS, check_rows(entries)),
    ]


def workbook_bytes(entries: Sequence[ArchiveEntry]) -> bytes:
    """The archive workbook of ``entries`` as .xlsx bytes."""
    return _write(sheets(entries))


def _write(book: list[tuple[str, Sequence[str], list[list[Any]]]]) -> bytes:
    """Write the sheets with openpyxl: header row, percent-formatted rates, safe text."""
    import io

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, header, rows in book:
        sheet = workbook.create_sheet(name)
        sheet.append(list(header))
        percent = {header.index(c) for c in PERCENT_COLUMNS.get(name, ())}
        for row in rows:
            sheet.append([_safe(v) for v in row])
            for index in percent:
                sheet.cell(row=sheet.max_row, column=index + 1).number_format = "0.00%"
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


# --- command line ------------------------------------------------------------------------------

archive_cli = AppGroup("archive", help="廉政档案")


@archive_cli.command("export")
@click.option(
    "--unit", "unit_path", default=None, help="单位（含下级单位及现属干部），如 甘肃省局/兰州市局"
)
@click.option("--person", "staff_no", default=None, help="干部工号")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="输出文件 .xlsx")
def export_command(unit_path: str | None, staff_no: str | None, out: Path) -> None:
    """Export the archive (sheets 档案记录, 预警, 核验) to an .xlsx file."""
    from evaluation.cli import ACTOR, transactional

    @transactional
    def _export() -> int:
        if out.suffix.lower() != ".xlsx":
            raise InputError(f"输出文件应以 .xlsx 结尾：{out}")
        tree = get_unit(unit_path) if unit_path else None
        person = find_person_by_staff_no(staff_no) if staff_no else None
        entries = visible_entries(None, person=person, tree=tree)
        data = workbook_bytes(entries)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        except OSError as exc:
            raise InputError(f"无法写入 {out}：{exc.strerror}") from None
        audit.record(
            ACTOR,
            "archive.export",
            unit=tree.path if tree else None,
            staff_no=person.staff_no if person else None,
            entries=len(entries),
        )
        return len(entries)

    count = _export()
    click.echo(f"已导出 {count} 条档案记录")
    click.echo(str(out))


def init_app(app: Flask) -> None:
    """Register ``flask archive``."""
    app.cli.add_command(archive_cli)
