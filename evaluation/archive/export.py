"""廉政档案 workbook: sheets 档案记录 (one row per entry) and 预警 (the rules' flags), plus 核验
and 审计日志 (the audit log's head when the export was made, SPEC §10).

档案记录 and 预警 are print-ready (SPEC §9): a title row, the scope and the export date
(Beijing time), a header row repeated on every printed page, borders, wrapped text with row
heights set so that nothing is cut when printed, A4 landscape fitted to the page width. Rates
are numeric cells with a percent format; text from users never becomes a formula (the shared
writer neutralises it). Sheets are write-only: rows are streamed.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from functools import lru_cache
from typing import IO, Any
from xml.sax.saxutils import escape

from openpyxl.styles import Alignment, Border, Font, Side
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
from sqlalchemy import and_, true

from evaluation import audit
from evaluation.archive import queries
from evaluation.archive.entries import entry_remarks
from evaluation.archive.queries import EntryRow, build_timeline, share
from evaluation.archive.rules import Flag, RuleConfig
from evaluation.archive.xlsx import Book, BookSheet
from evaluation.ballot_forms import SHORT_FORM_NAMES
from evaluation.errors import NotFound
from evaluation.extensions import db
from evaluation.fonts import pdf_font_name
from evaluation.models import ArchiveAnnotation, ArchiveEntry, Subject, Unit
from evaluation.reports import feedback
from evaluation.rounds.operations import LOCAL_TZ
from evaluation.rounds.state import round_rule_set
from evaluation.spreadsheets import (
    BOLD_FONT,
    DATA_PRINT_SCALE,
    HEADER_FILL,
    Styled,
    decimal_cell,
    is_formula_like,
    percent_cell,
)
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.core import decimal_text, percent

# An entry as read for a page (ORM) or streamed for an export (plain columns).
Entry = ArchiveEntry | EntryRow

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ENTRY_SHEET = "档案记录"
ENTRY_TITLE = "廉政档案测评记录"
ENTRY_COLUMNS = (
    "工号",
    "测评对象",
    "职务",
    "单位",
    "年度",
    "测评活动",
    "测评表",
    "有效票",
    "弃权",
    "优秀率",
    "满意率",
    "信任率",
    "计算方式",
    "等次规则集",
    "测评等次",
    "排名",
    "评价意见",
    "整改要求",
    "计算说明",
)
FLAG_SHEET = "预警"
FLAG_TITLE = "廉政档案责任追究预警"
FLAG_COLUMNS = (
    "对象",
    "规则",
    "处理",
    "实测值",
    "阈值",
    "涉及年度",
    "规则集",
    "依据",
    "处理建议",
    "状态",
)
# 状态 of a flag: raised in its subject's most recent counting year (what the 预警 page lists),
# or in an earlier year, the subject having counting results after it.
IN_FORCE = "正在生效"
EARLIER = "历年"
CHECK_SHEET = "核验"
CHECK_COLUMNS = (
    "测评对象",
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
    ENTRY_SHEET: (7, 10, 8, 12, 5, 14, 12, 5, 5, 8, 8, 8, 5, 12, 6, 4, 14, 14, 14),
    FLAG_SHEET: (14, 20, 10, 26, 16, 11, 14, 14, 26, 8),
    CHECK_SHEET: (12, 22, 7, 34, 22, 12, 10, 10, 10, 6, 30, 50),
    AUDIT_SHEET: (18, 100),
}
# Header rows of the print-ready sheets: title, scope and date, column names.
PRINT_HEADER_ROW = 3

THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
CELL_ALIGN = Alignment(wrap_text=True, vertical="center")
NUMBER_ALIGN = Alignment(wrap_text=False, vertical="center", horizontal="right")
HEAD_ALIGN = Alignment(wrap_text=True, vertical="center", horizontal="center")
TITLE_ALIGN = Alignment(horizontal="center", vertical="center")
NOTE_ALIGN = Alignment(wrap_text=True, vertical="top")
TITLE_FONT = Font(bold=True, size=16)
SCOPE_FONT = Font(size=11)
# Row heights in points: a line of 11 pt text (CJK fonts are taller than Latin ones).
LINE_HEIGHT = 14.5
ROW_PADDING = 4.0


def percent_text(value: str | None) -> str:
    """An exact "p/q" share as a percentage rounded half up to two decimals, or "—"."""
    return percent(None if value is None else Fraction(value))


def score_text(value: str | None) -> str:
    """An exact "p/q" score rounded half up to two decimals, or "—"."""
    return decimal_text(None if value is None else Fraction(value))


def scope_text(root: Unit | None, tree: Unit | None, person: Any = None) -> str:
    """Whose archive an export holds, for its title block."""
    if person is not None:
        staff = f"（工号 {person.staff_no}）" if person.staff_no else ""
        return f"干部 {person.name}{staff}"
    unit = tree or root
    return f"{unit.path}（含下级单位及现属干部）" if unit is not None else "全部单位"


def local_date_text(moment: datetime | date | None = None) -> str:
    """A date as documents show it, in Beijing time: 2026年11月30日."""
    if moment is None:
        moment = datetime.now(LOCAL_TZ)
    elif isinstance(moment, datetime):
        moment = moment.astimezone(LOCAL_TZ)
    return f"{moment.year}年{moment.month}月{moment.day}日"


def person_or_subject_name(entry: Entry) -> str:
    """测评对象: the cadre's name, or the team's / organ's subject name."""
    return entry.person.name if entry.person is not None else entry.subject_name


def _posts(entries: Sequence[ArchiveEntry]) -> dict[int, str]:
    """Subject id → 职务 as it stood in the round (the subject row keeps it)."""
    ids = sorted({e.subject_id for e in entries})
    posts: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = db.session.execute(
            db.select(Subject.id, Subject.post).where(Subject.id.in_(chunk))
        ).all()
        posts.update({row[0]: row[1] or "" for row in rows})
    return posts


def grading_rule_set(entry: Entry) -> str:
    """The name of the grading rule set the entry's round used (stored when archived)."""
    stored = (entry.figures or {}).get("rule_set")
    return str(stored) if stored else round_rule_set(entry.round).title


def remarks(entry: Entry) -> str:
    """计算说明: weighting (with the unweighted shares beside it) and pooled strata."""
    figures = entry.figures or {}
    text = entry_remarks(figures)
    if figures.get("weighted"):
        raw = "、".join(
            f"{name} {percent_text(figures.get(key))}"
            for name, key in (
                ("优秀率", "raw_excellent_rate"),
                ("满意率", "raw_satisfaction_rate"),
                ("信任率", "raw_trust_rate"),
            )
            if figures.get(key) is not None
        )
        if raw:
            text += f"；未加权（按实际票数）：{raw}"
    return text


def entry_row(e: Entry, post: str | None) -> list[Any]:
    """One row of sheet 档案记录, in the order of ``ENTRY_COLUMNS``; ``post`` is the 职务 the
    round's subject row kept (the cadre's present one when it kept none)."""
    figures = e.figures or {}
    post = post or (e.person.post if e.person is not None else "")
    return [
        e.person.staff_no if e.person is not None and e.person.staff_no else "",
        person_or_subject_name(e),
        post or "",
        e.unit.path,
        e.year,
        figures.get("round_title", "") + ("" if e.valid_round else "（无效：参测率低于最低要求）"),
        figures.get("form_title", e.form_id),
        int(figures.get("valid", 0)),
        int(figures.get("abstentions", 0)),
        percent_cell(share(e, "excellent_rate")),
        percent_cell(share(e, "satisfaction_rate")),
        percent_cell(share(e, "trust_rate")),
        "加权" if figures.get("weighted") else "不加权",
        grading_rule_set(e),
        e.grade or "—",
        e.rank if e.rank is not None else "",
        e.opinion or "",
        e.rectification or "",
        Styled(remarks(e), wrap=True),
    ]


def entry_rows(entries: Sequence[ArchiveEntry]) -> list[list[Any]]:
    """Rows of sheet 档案记录, in the order of ``ENTRY_COLUMNS``."""
    posts = _posts(entries)
    return [entry_row(e, posts.get(e.subject_id)) for e in entries]


def flag_rows(flags: Sequence[Flag], current: Sequence[Flag] = ()) -> list[list[Any]]:
    """Rows of sheet 预警: every flag the rules raise in the scope's whole history, with what
    it rests on and whether it is still in force (one of ``current``)."""
    in_force = {id(f) for f in current}
    return [
        [
            f.subject_name,
            f.title,
            f.label,
            f.measured,
            f.threshold,
            f.years_text,
            f.rule_set,
            f.source,
            Styled(f.action, wrap=True),
            IN_FORCE if id(f) in in_force else EARLIER,
        ]
        for f in flags
    ]


def flag_count_note(flags: Sequence[Flag], current: Sequence[Flag]) -> str:
    """The line that ties the sheet to the 预警 page: all years here, those in force there."""
    if not flags:
        return "所选范围内历年均未提出预警。"
    return (
        f"本表列出所选范围内历年提出的全部预警，共 {len(flags)} 条；其中“{IN_FORCE}”的 "
        f"{len(current)} 条即“预警”页面列出的（在该对象最近一个计入年度提出），"
        f"“{EARLIER}”的是该对象此后又有计入的测评结果。"
    )


def flag_notes(flags: Sequence[Flag], rule_sets: Iterable[RuleConfig]) -> list[str]:
    """One line per rule set behind the flags (or that judged the entries, when none was
    raised): its name and its (true) source."""
    used: dict[str, str] = {}
    for f in flags:
        used.setdefault(f.rule_set, f.rule_set_source)
    if not used:
        used = {r.name: r.source for r in rule_sets}
    return [f"规则集“{name}”：{source}" for name, source in used.items()]


def notes_text(annotations: Iterable[ArchiveAnnotation]) -> str:
    """更正说明 of an entry, oldest first, in one cell."""
    return "；".join(f"{n.reason}（{n.author}，{n.created_at:%Y-%m-%d}）" for n in annotations)


def check_row(e: Entry, counted: Container[int], notes: str) -> list[Any]:
    """One row of sheet 核验: validity, counting, seal and correction notes of the entry."""
    return [
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


def audit_rows(head: audit.ChainHead) -> list[list[Any]]:
    """Rows of sheet 审计日志: the log's head, checked by ``flask audit verify --against``."""
    return [
        [audit.HEAD_LABEL, str(head)],
        ["审计日志核验", Styled(audit.HEAD_METHOD, wrap=True)],
    ]


ENTRY_NOTE = (
    "优秀率、满意率、信任率按有效票（不含弃权）计算；“加权”的活动为加权比率，按实际票数计算的"
    "未加权比率见“计算说明”。测评等次按各测评活动选用的等次规则集确定；只有一名测评对象的测评表不排名。"
)
FLAG_NOTE = (
    "每个对象按其现任单位选用的责任追究规则集判断（未选用的沿用上级单位的）；"
    "实测值为该年度计入的测评结果（当年最后一次有效测评）。"
)


@dataclass(frozen=True)
class Contents:
    """What an archive workbook holds: its entries (each with the 职务 its round kept and its
    correction notes, in order, streamed), and the rules' judgement of them."""

    entries: Iterable[tuple[Entry, str | None, str]]
    flags: Sequence[Flag]
    counted: Container[int]
    rule_sets: Iterable[RuleConfig]
    current: Sequence[Flag] = ()  # the flags still in force (some of ``flags``)


def contents_of(entries: Sequence[ArchiveEntry]) -> Contents:
    """The contents of a workbook of ``entries`` already read (tests, small exports)."""
    timeline = build_timeline(entries)
    posts = _posts(entries)
    return Contents(
        entries=[(e, posts.get(e.subject_id), notes_text(e.annotations)) for e in entries],
        flags=timeline.flags,
        counted=timeline.counted,
        rule_sets=timeline.rule_sets.values(),
        current=timeline.current,
    )


def archive_contents(
    root: Unit | None, *, tree: Unit | None = None, person: Any = None
) -> Contents:
    """The contents of the archive workbook of a scope, read as it is written: the rules'
    judgement from plain columns first, then the entries streamed (``queries.stream_entries``).
    """
    conditions = queries.visible_conditions(root, person=person, tree=tree)
    judged = queries.judge_condition(and_(true(), *conditions))
    notes = queries.notes_by_entry(conditions)
    return Contents(
        entries=(
            (entry, post, notes_text(notes.get(entry.id, ())))
            for entry, post in queries.stream_entries(conditions)
        ),
        flags=judged.judgement.flags,
        counted=judged.judgement.counted,
        rule_sets=judged.rule_sets.values(),
        current=judged.judgement.current,
    )


def workbook_bytes(
    entries: Sequence[ArchiveEntry],
    *,
    audit_head: audit.ChainHead | None = None,
    scope: str = "全部单位",
    today: date | datetime | None = None,
) -> bytes:
    """The archive workbook of ``entries`` as .xlsx bytes; ``scope`` says whose archive it is."""
    buffer = io.BytesIO()
    write_workbook(buffer, contents_of(entries), audit_head=audit_head, scope=scope, today=today)
    return buffer.getvalue()


def write_workbook(
    out: IO[bytes],
    contents: Contents,
    *,
    audit_head: audit.ChainHead | None = None,
    scope: str = "全部单位",
    today: date | datetime | None = None,
) -> int:
    """Write the archive workbook to ``out``; the number of entries written.

    Sheets 档案记录 and 核验 are written row by row as the entries arrive, each row to its
    sheet's temporary file (``evaluation.archive.xlsx``), so a province's archive takes as
    much memory as a county's. ``audit_head`` defaults to the current head, ``today`` to now.
    """
    dated = f"范围：{scope}　　导出日期：{local_date_text(today)}（北京时间）"
    book = Book(out)
    entry_sheet = PrintSheet(book, ENTRY_SHEET, ENTRY_TITLE, [dated, ENTRY_NOTE], ENTRY_COLUMNS)
    flag_sheet = PrintSheet(
        book,
        FLAG_SHEET,
        FLAG_TITLE,
        [
            dated,
            flag_count_note(contents.flags, contents.current),
            FLAG_NOTE,
            *flag_notes(contents.flags, contents.rule_sets),
        ],
        FLAG_COLUMNS,
    )
    for row in flag_rows(contents.flags, contents.current):
        flag_sheet.row(row)
    check = _data_sheet(book, CHECK_SHEET, CHECK_COLUMNS)
    written = 0
    for entry, post, notes in contents.entries:
        entry_sheet.row(entry_row(entry, post))
        check.row(check_row(entry, contents.counted, notes))
        written += 1
    trail = _data_sheet(book, AUDIT_SHEET, AUDIT_COLUMNS)
    for row in audit_rows(audit_head or audit.chain_head()):
        trail.row(row)
    book.close()
    return written


def _data_sheet(book: Book, name: str, header: Sequence[str]) -> BookSheet:
    """A plain data sheet (核验, 审计日志): its header row frozen and printed on every page."""
    sheet = book.sheet(
        name,
        widths=WIDTHS[name],
        page_title=f"廉政档案 · {name}",
        freeze_rows=1,
        title_rows=(0, 0),
        min_print_scale=DATA_PRINT_SCALE,
    )
    sheet.header(header)
    return sheet


class PrintSheet:
    """A print-ready sheet, written as it goes: a title and notes merged across the table, one
    header row repeated on every printed page and frozen, bordered rows as tall as their text."""

    def __init__(
        self, book: Book, name: str, title: str, notes: Sequence[str], header: Sequence[str]
    ) -> None:
        self.widths = WIDTHS[name]
        self.sheet = book.sheet(
            name,
            widths=self.widths,
            page_title=title if title.startswith("廉政档案") else f"廉政档案 · {title}",
            freeze_rows=PRINT_HEADER_ROW,
            title_rows=(PRINT_HEADER_ROW - 1, PRINT_HEADER_ROW - 1),
        )
        self._formats: dict[tuple[Any, ...], Any] = {}
        full = float(sum(self.widths))
        columns = len(header)
        self.sheet.merged(title, Styled(title, font=TITLE_FONT, alignment=TITLE_ALIGN), 28, columns)
        text = "\n".join(notes)
        self.sheet.merged(
            text,
            Styled(text, font=SCOPE_FONT, alignment=NOTE_ALIGN),
            row_height([(text, full)]),
            columns,
        )
        self.sheet.bordered(
            [
                Styled(name, font=BOLD_FONT, fill=HEADER_FILL, border=BORDER, alignment=HEAD_ALIGN)
                for name in header
            ],
            row_height(list(zip(header, self.widths, strict=True))),
        )

    def row(self, values: Sequence[Any]) -> None:
        """One bordered data row, wrapped text left, numbers right (as tall as its text)."""
        cells = []
        lines = 1
        formats = self._formats
        for value, width in zip(values, self.widths, strict=True):
            if type(value) is Styled:
                raw, number_format = value.value, value.number_format
            else:
                raw, number_format = value, None
            if type(raw) is not str and isinstance(raw, str):
                raw = str(raw)
            if type(raw) is str:
                if raw:
                    lines = max(lines, text_lines(raw, width))
                key = (number_format, True, is_formula_like(raw))
            else:
                key = (number_format, False, False)
            made = formats.get(key)
            if made is None:
                made = formats[key] = self._format(*key)
            cells.append((raw, made))
        sheet = self.sheet
        index = sheet.rows
        sheet.ws.set_row(index, lines_height(lines))
        for column, (raw, made) in enumerate(cells):
            sheet.write(index, column, raw, made)
        sheet.done()

    def _format(self, number_format: str | None, text: bool, quote: bool) -> Any:
        """Bordered; text wrapped on the left (quoted when formula-like), numbers right."""
        styled = Styled(
            None,
            number_format=number_format,
            border=BORDER,
            alignment=CELL_ALIGN if text else NUMBER_ALIGN,
        )
        return self.sheet.book.format_of(styled, quote=quote)


def text_units(text: str) -> float:
    """Width of ``text`` in column-width units: a CJK (wide) character takes about two.

    Generous on purpose (Excel's CJK fonts are wider than LibreOffice's): a row a little too
    tall prints fine, a row too short cuts text.
    """
    return sum(1.9 if unicodedata.east_asian_width(ch) in "WF" else 1.1 for ch in text)


@lru_cache(maxsize=16384)
def text_lines(text: str, width: float) -> int:
    """Lines ``text`` wraps to in a column ``width`` units wide (generously: never cut)."""
    room = max(width - 1.2, 1.0)
    return sum(max(1, math.ceil(text_units(part) / room)) for part in str(text).split("\n"))


def row_height(texts: Sequence[tuple[Any, float]]) -> float:
    """Height in points of a row holding each (text, column width)."""
    lines = max((text_lines(str(t), w) for t, w in texts if t not in (None, "")), default=1)
    return lines_height(lines)


def lines_height(lines: int) -> float:
    """Height in points of a row of ``lines`` lines of text."""
    return round(lines * LINE_HEIGHT + ROW_PADDING, 1)


# --- feedback for the first responsible person (004 §五.2) -----------------------------------


def unit_feedback_pdf(
    unit: Unit, year: int, root: Unit | None, *, audit_head: audit.ChainHead | None = None
) -> bytes:
    """One PDF for the unit's 第一责任人: a summary page, then each cadre's feedback sheets.

    ``audit_head``: the audit log's head printed on it (by default the current one).
    """
    entries = queries.unit_cadre_entries(unit, year)
    if not entries:
        raise NotFound(f"{unit.path} {year} 年度没有干部的归档测评结果")
    head = audit_head or audit.chain_head()
    people = {e.person_id for e in entries}
    # Those cadres' visible histories only (their flags), not the whole scope's archive.
    history = queries.visible_entries_of(root, people)
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
    width = feedback.TEXT_W
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
