"""廉政档案 workbook: sheets 档案记录 (one row per entry) and 预警 (the rules' flags), plus 核验
and 审计日志 (the audit log's head when the export was made, SPEC §10).

Same conventions as the round workbook: one header row, rates as numeric cells with a percent
format, text from users never turned into a formula (the shared writer neutralises it).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import (
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from evaluation import audit
from evaluation.archive.entries import entry_remarks
from evaluation.archive.queries import Timeline, build_timeline, share, visible_entries
from evaluation.ballot_forms import SHORT_FORM_NAMES
from evaluation.errors import NotFound
from evaluation.fonts import pdf_font_name
from evaluation.models import ArchiveEntry, Unit
from evaluation.reports import feedback
from evaluation.spreadsheets import Sheet, Styled, decimal_cell, new_workbook, percent_cell
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.core import decimal_text, percent

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
    "满意率（未加权）",
    "信任率（未加权）",
    "计算说明",
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
AUDIT_SHEET = "审计日志"
AUDIT_COLUMNS = ("项目", "内容")
WIDTHS = {
    ENTRY_SHEET: (12, 22, 7, 34, 34, 8, 10, 10, 10, 12, 12, 40),
    FLAG_SHEET: (22, 46, 18, 60),
    CHECK_SHEET: (12, 22, 7, 34, 22, 12, 10, 10, 10, 6, 30, 50),
    AUDIT_SHEET: (18, 100),
}


def percent_text(value: str | None) -> str:
    """An exact "p/q" share as a percentage rounded half up to two decimals, or "—"."""
    return percent(None if value is None else Fraction(value))


def score_text(value: str | None) -> str:
    """An exact "p/q" score rounded half up to two decimals, or "—"."""
    return decimal_text(None if value is None else Fraction(value))


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
            percent_cell(share(e, "satisfaction_rate")),
            percent_cell(share(e, "trust_rate")),
            e.grade or "—",
            percent_cell(share(e, "raw_satisfaction_rate")) if e.figures.get("weighted") else "",
            percent_cell(share(e, "raw_trust_rate")) if e.figures.get("weighted") else "",
            Styled(entry_remarks(e.figures), wrap=True),
        ]
        for e in entries
    ]


def flag_rows(entries: Sequence[ArchiveEntry], timeline: Timeline | None = None) -> list[list[Any]]:
    """Rows of sheet 预警: every flag the rules raise over ``entries``."""
    timeline = timeline or build_timeline(entries)
    return [
        [f.subject_name, f"{f.title}：{f.label}", f.years_text, Styled(f.action, wrap=True)]
        for f in timeline.flags
    ]


def check_rows(
    entries: Sequence[ArchiveEntry], timeline: Timeline | None = None
) -> list[list[Any]]:
    """Rows of sheet 核验: validity, counting, seal and correction notes of each entry."""
    counted = (timeline or build_timeline(entries)).counted
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
                percent_cell(share(e, "turnout")),
                percent_cell(share(e, "excellent_rate")),
                decimal_cell(share(e, "score")),
                e.rank,
                e.seal,
                Styled(notes, wrap=True),
            ]
        )
    return rows


def audit_rows(head: audit.ChainHead) -> list[list[Any]]:
    """Rows of sheet 审计日志: the log's head, checked by ``flask audit verify --against``."""
    return [
        [audit.HEAD_LABEL, str(head)],
        ["审计日志核验", Styled(audit.HEAD_METHOD, wrap=True)],
    ]


def sheets(
    entries: Sequence[ArchiveEntry], audit_head: audit.ChainHead | None = None
) -> list[tuple[str, Sequence[str], list[list[Any]]]]:
    """The workbook's sheets as (name, header, rows); ``audit_head`` defaults to the current."""
    timeline = build_timeline(entries)
    return [
        (ENTRY_SHEET, ENTRY_COLUMNS, entry_rows(entries)),
        (FLAG_SHEET, FLAG_COLUMNS, flag_rows(entries, timeline)),
        (CHECK_SHEET, CHECK_COLUMNS, check_rows(entries, timeline)),
        (AUDIT_SHEET, AUDIT_COLUMNS, audit_rows(audit_head or audit.chain_head())),
    ]


def workbook_bytes(
    entries: Sequence[ArchiveEntry], *, audit_head: audit.ChainHead | None = None
) -> bytes:
    """The archive workbook of ``entries`` as .xlsx bytes."""
    return _write(sheets(entries, audit_head))


def _write(book: list[tuple[str, Sequence[str], list[list[Any]]]]) -> bytes:
    """Write the sheets with the shared writer (header row, percent formats, safe text)."""
    workbook = new_workbook()
    for name, header, rows in book:
        sheet = Sheet(workbook, name, widths=WIDTHS.get(name, ()), page_title=f"廉政档案 · {name}")
        sheet.header(header)
        for row in rows:
            sheet.row(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- feedback for the first responsible person (004 §五.2) -----------------------------------


def unit_feedback_pdf(
    unit: Unit, year: int, root: Unit | None, *, audit_head: audit.ChainHead | None = None
) -> bytes:
    """One PDF for the unit's 第一责任人: a summary page, then each cadre's feedback sheets.

    ``audit_head``: the audit log's head printed on it (by default the current one).
    """
    entries = [
        e
        for e in visible_entries(root, tree=unit)
        if e.person_id is not None and e.unit_id == unit.id and e.year == year
    ]
    if not entries:
        raise NotFound(f"{unit.path} {year} 年度没有干部的归档测评结果")
    head = audit_head or audit.chain_head()
    people = {e.person_id for e in entries}
    history = [e for e in visible_entries(root) if e.person_id in people]
    raised: dict[int, list[str]] = {}
    for flag in build_timeline(history).flags:
        raised.setdefault(flag.entry_ids[-1], []).append(flag.label)

    font = pdf_font_name()
    base = ParagraphStyle("archive-base", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK")
    small = ParagraphStyle("archive-small", parent=base, fontSize=8, leading=11)
    title = ParagraphStyle("archive-title", parent=base, fontSize=17, leading=24, alignment=1)
    sub = ParagraphStyle("archive-sub", parent=base, fontSize=10.5, alignment=1)

    def para(text: str, style: ParagraphStyle) -> Paragraph:
        return Paragraph(escape(text), style)

    rows: list[list[object]] = [
        ["姓名", "测评表", "测评活动", "有效票", "满意率", "信任率", "测评等次", "预警"]
    ]
    for e in entries:
        assert e.person is not None
        rows.append(
            [
                para(e.person.name, small),
                para(
                    SHORT_FORM_NAMES.get(e.form_id, e.figures.get("form_title", "")),
                    small,
                ),
                para(
                    e.figures.get("round_title", "") + ("" if e.valid_round else "（无效）"),
                    small,
                ),
                str(e.figures.get("valid", 0)),
                percent_text(e.figures.get("satisfaction_rate")),
                percent_text(e.figures.get("trust_rate")),
                e.grade or "—",
                para("、".join(raised.get(e.id, [])) or "—", small),
            ]
        )
    width = feedback.FRAME_W
    table = Table(
        rows,
        colWidths=[w * width for w in (0.1, 0.1, 0.26, 0.08, 0.1, 0.1, 0.1, 0.16)],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), pdf_font_name()),
                ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#8a939e")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f2f5")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story: list[object] = [
        para(f"{year}年度干部民主测评结果反馈汇总", title),
        para(f"{unit.path} · 送班子第一责任人", sub),
        Spacer(1, 6),
        para(
            f"本汇总收录 {len(entries)} 份反馈单（本单位干部 {len(people)} 人），"
            "其后逐页附各反馈单。"
            "根据民主测评制度第五条第2款，班子成员、领导干部的测评结果除反馈给本人外，"
            "应向班子“第一责任人”反馈，并归入领导干部廉政档案。预警依据廉政档案中的历年结果。",
            base,
        ),
        Spacer(1, 6),
        table,
        Spacer(1, 6),
        para(f"{audit.HEAD_LABEL}：{head}", small),
    ]
    rounds_in_order: dict[int, list[ArchiveEntry]] = {}
    for e in entries:
        rounds_in_order.setdefault(e.round_id, []).append(e)
    for round_entries in rounds_in_order.values():
        rnd = round_entries[0].round
        result = sealed_result(rnd)
        subjects = {s.id: s for s in rnd.subjects}
        for e in round_entries:
            story.append(PageBreak())
            story.extend(
                feedback.subject_page(
                    rnd, result, result.subject(e.subject_id), subjects.get(e.subject_id), head
                )
            )
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=feedback.MARGIN,
        rightMargin=feedback.MARGIN,
        topMargin=feedback.MARGIN,
        bottomMargin=feedback.MARGIN,
        title=f"{year}年度{unit.name}干部民主测评结果反馈汇总",
        author="民主测评系统",
    )
    doc.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()
