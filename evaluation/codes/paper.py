"""纸质选票: the printable A4 ballot of one stratum, in the layout of 004's 测评表 (issue 16).

Each ballot has a header (the round's title and year, ``测评人员类别：<stratum>``, the line
"不记名，请勿在选票上做任何标记" and how to mark), then one table per form, headed by the form's
title as 004's separate 测评表 are: 序号 | 测评对象（职务）| one column per grade with an empty
box | 弃权 (where the form allows it). A form that grades the subject as a whole prints its
items once, small, as the content being judged; a form that grades items gets a row per item
and a 总体评价 row per subject.

Subjects are grouped by form (in the order each form first appears in the ballot) and numbered
in printed order: ``paper_order`` gives that order, for whoever enters the paper ballots.

A ballot takes at most one A4 page per ten subjects when its forms grade subjects as a whole:
the item texts are set in the first of a few ever more compact styles that fits. Every page
carries a short serial ("No. 0001") that counts sheets, not people: serials run from
``first_serial`` through the batch and are tied to no voter, code or stored ballot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import func, select

from evaluation import audit
from evaluation.ballot_forms import BallotForm
from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.fonts import pdf_font_name
from evaluation.models import PaperIssue, Round, RoundState, Stratum
from evaluation.rounds.state import require_state
from evaluation.voting.ballot import ABSTAIN_LABEL, BallotSubject, ballot_layout

SUBJECTS_PER_PAGE = 10
MAX_COPIES = 2000
NOTICE = "不记名，请勿在选票上做任何标记"
HOW_TO_MARK = "请在所选等次下的方框内划“√”，每个测评对象只能选一项。"

PAGE_W, PAGE_H = A4
MARGIN_X = 15 * mm
MARGIN_TOP = 14 * mm
MARGIN_BOTTOM = 13 * mm
WIDTH = PAGE_W - 2 * MARGIN_X

NAME_SIZE = 10.0  # names and grade labels stay at 9 pt or more
LABEL_SIZE = 9.5
NO_W = 26.0
GRADE_W = 50.0
ABSTAIN_W = 40.0
BOX = 10.0
HEADER_ROW = 18.0
ROW_PAD = 5.0
HEADING_SIZE = 10.5
SERIAL_FONT = "Helvetica-Bold"

# How item texts of whole-subject forms are set, most generous first: (font size, one line per
# item?, cut each item to one line?). ``None`` prints only how many items there are.
ITEM_STYLES: tuple[tuple[float, bool, bool] | None, ...] = (
    (7.5, True, False),
    (7.0, False, False),
    (6.5, False, False),
    (7.0, True, True),
    None,
)


MAX_FIRST_SERIAL = 99999


def _whole_number(value: object, what: str) -> int:
    text = str(value if value is not None else "").strip()
    if not text:
        raise InputError(f"请填写{what}")
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{what}“{text}”不是整数") from None


def parse_copies(value: object) -> int:
    """How many ballots to print: 1 to MAX_COPIES; InputError otherwise."""
    count = _whole_number(value, "份数")
    if not 1 <= count <= MAX_COPIES:
        raise InputError(f"纸质选票每次打印的份数应在 1 到 {MAX_COPIES} 之间")
    return count


def parse_first_serial(value: object) -> int:
    """The serial of the first ballot printed (1 when not given); InputError when invalid."""
    if value is None or not str(value).strip():
        return 1
    first = _whole_number(value, "起始编号")
    if not 1 <= first <= MAX_FIRST_SERIAL:
        raise InputError(f"起始编号应在 1 到 {MAX_FIRST_SERIAL} 之间")
    return first


def serial_text(serial: int, prefix: str = "") -> str:
    """The printed serial of a sheet: ``No. A-P0001`` (``prefix`` "A-P": stratum A, paper)."""
    return f"No. {prefix}{serial:04d}"


def paper_prefix(letter: str) -> str:
    """The serial prefix of a stratum's paper ballots: ``A-P`` (slips are ``A-0001``)."""
    return f"{letter}-P"


def next_paper_serial(stratum: Stratum) -> int:
    """The serial the stratum's next printed paper ballot gets (1 for the first)."""
    last = db.session.execute(
        select(func.max(PaperIssue.first_serial + PaperIssue.count - 1)).where(
            PaperIssue.stratum_id == stratum.id
        )
    ).scalar()
    return int(last or 0) + 1


def issue_paper(rnd: Round, stratum: Stratum, count: int, *, actor: str) -> PaperIssue:
    """Record a print of ``count`` blank paper ballots for ``stratum`` (draft or open round):
    they are issued, numbered on from the stratum's last, and counted in the reconciliation."""
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="打印纸质选票")
    count = parse_copies(count)
    if not ballot_layout(rnd, stratum.id):
        raise InputError(f"测评人员类别“{stratum.name}”没有要评价的测评对象，无法打印选票。")
    locked = db.session.execute(
        select(Stratum).where(Stratum.id == stratum.id).with_for_update()
    ).scalar_one()
    issue = PaperIssue(
        round_id=rnd.id,
        stratum_id=stratum.id,
        first_serial=next_paper_serial(stratum),
        count=count,
        issued_by=actor,
    )
    db.session.add(issue)
    paper = dict(locked.paper or {})
    paper["printed"] = int(paper.get("printed", 0)) + count
    locked.paper = paper
    db.session.flush()
    audit.record(
        actor,
        "codes.paper_ballots",
        round_id=rnd.id,
        stratum=stratum.name,
        count=count,
        first_serial=issue.first_serial,
    )
    return issue


def paper_order(layout: Sequence[BallotSubject]) -> list[BallotSubject]:
    """The subjects as the paper ballot prints them: grouped by form, first-seen form first."""
    forms: dict[str, list[BallotSubject]] = {}
    for subject in layout:
        forms.setdefault(subject.form.id, []).append(subject)
    return [s for group in forms.values() for s in group]


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break CJK text into lines that fit ``width`` (any character may end a line)."""
    lines: list[str] = []
    current = ""
    for ch in text:
        if current and stringWidth(current + ch, font, size) > width:
            lines.append(current)
            current = ch.lstrip() if ch == " " else ch
        else:
            current += ch
    if current or not lines:
        lines.append(current)
    return lines


def _cut(text: str, font: str, size: float, width: float) -> str:
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


# --- layout: blocks of known height, then pages ------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """One table row: 序号 (or ""), the lines of the second column, boxes or not."""

    number: str
    lines: tuple[str, ...]
    size: float
    boxes: bool
    indent: float = 0.0

    @property
    def height(self) -> float:
        return max(len(self.lines) * (self.size + 2.5) + 2 * ROW_PAD - 2.5, 19.0)


@dataclass(frozen=True)
class _Section:
    """A form's part of one page: heading, items (first part only), table header and rows."""

    form: BallotForm
    continued: bool
    item_lines: tuple[str, ...]
    item_size: float
    rows: tuple[_Row, ...]
    subjects: int


class _Geometry:
    def __init__(self, font: str) -> None:
        self.font = font

    def columns(self, form: BallotForm) -> tuple[float, list[float]]:
        """Width of the name column and the x of each box column (grades, then 弃权)."""
        widths = [GRADE_W] * len(form.grades) + ([ABSTAIN_W] if form.abstain else [])
        name_w = WIDTH - NO_W - sum(widths)
        xs = []
        x = MARGIN_X + NO_W + name_w
        for w in widths:
            xs.append(x)
            x += w
        return name_w, xs

    def subject_rows(self, subject: BallotSubject, number: int) -> list[_Row]:
        name_w, _ = self.columns(subject.form)
        label = f"{subject.name}（{subject.post}）" if subject.post else subject.name
        text_w = name_w - 8
        size = NAME_SIZE
        while size > 9 and stringWidth(label, self.font, size) > text_w:
            size -= 0.5
        lines = tuple(_wrap(label, self.font, size, text_w))
        if not subject.form.per_item:
            return [_Row(str(number), lines, size, True)]
        rows = [_Row(str(number), lines, size, False)]
        for i, question in enumerate(subject.item_questions, 1):
            item_lines = _wrap(f"{i}. {question.legend}", self.font, 9, text_w - 10)
            rows.append(_Row("", tuple(item_lines), 9, True, indent=10))
        rows.append(_Row("", ("总体评价",), 9, True, indent=10))
        return rows

    def item_lines(self, form: BallotForm, style: tuple[float, bool, bool] | None) -> list[str]:
        if form.per_item or not form.items:
            return []
        if style is None:
            return [f"测评内容共 {len(form.items)} 项（见测评表说明）。"]
        size, per_line, cut = style
        width = WIDTH - 4
        texts = [f"{i}. {item.text}" for i, item in enumerate(form.items, 1)]
        if cut:
            return ["测评内容："] + [_cut(t, self.font, size, width) for t in texts]
        if per_line:
            lines = ["测评内容："]
            for t in texts:
                lines += _wrap(t, self.font, size, width)
            return lines
        return _wrap("测评内容：" + "  ".join(texts), self.font, size, width)


def _section_height(section: _Section) -> float:
    height = HEADING_SIZE + 8
    if section.item_lines:
        height += len(section.item_lines) * (section.item_size + 2.3) + 4
    height += HEADER_ROW + sum(r.height for r in section.rows) + 8
    return height


def _header_height(font: str, title: str, first_page: bool) -> float:
    if not first_page:
        return 38.0
    lines = len(_wrap(title, font, 15, WIDTH))
    return 20 + lines * 19 + 16 + 18 + 14 + 6


def _paginate(
    geometry: _Geometry,
    subjects: list[BallotSubject],
    title: str,
    style: tuple[float, bool, bool] | None,
) -> list[list[_Section]]:
    """Greedy pages of at most ten subjects each, a form's heading and its first subject kept
    together; a form running over a page repeats its heading (续) and table header."""
    size = style[0] if style else 7.0
    pages: list[list[_Section]] = [[]]
    used = _header_height(geometry.font, title, True)
    count = 0
    forms_started: set[str] = set()
    number = 0
    for subject in subjects:
        number += 1
        rows = geometry.subject_rows(subject, number)
        rows_height = sum(r.height for r in rows)
        page = pages[-1]
        same_form = bool(page) and page[-1].form.id == subject.form.id
        if same_form:
            extra = rows_height
        else:
            first = subject.form.id not in forms_started
            lines = geometry.item_lines(subject.form, style) if first else []
            probe = _Section(subject.form, not first, tuple(lines), size, tuple(rows), 1)
            extra = _section_height(probe)
        available = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM - 16
        if page and (count >= SUBJECTS_PER_PAGE or used + extra > available):
            pages.append([])
            page = pages[-1]
            used = _header_height(geometry.font, title, False)
            count = 0
            same_form = False
            first = subject.form.id not in forms_started
            lines = geometry.item_lines(subject.form, style) if first else []
            probe = _Section(subject.form, not first, tuple(lines), size, tuple(rows), 1)
            extra = _section_height(probe)
        if same_form:
            last = page[-1]
            page[-1] = _Section(
                last.form,
                last.continued,
                last.item_lines,
                last.item_size,
                last.rows + tuple(rows),
                last.subjects + 1,
            )
        else:
            first = subject.form.id not in forms_started
            lines = geometry.item_lines(subject.form, style) if first else []
            page.append(_Section(subject.form, not first, tuple(lines), size, tuple(rows), 1))
            forms_started.add(subject.form.id)
        used += extra
        count += 1
    return pages


def layout_pages(subjects: list[BallotSubject], title: str, font: str) -> list[list[_Section]]:
    """The pages of one ballot: the most generous item style that needs no more pages than
    one per ten subjects (the most compact one when none does, e.g. long per-item forms)."""
    geometry = _Geometry(font)
    target = max(1, math.ceil(len(subjects) / SUBJECTS_PER_PAGE))
    pages: list[list[_Section]] = []
    for style in ITEM_STYLES:
        pages = _paginate(geometry, subjects, title, style)
        if len(pages) <= target:
            return pages
    return pages


# --- drawing -----------------------------------------------------------------------------------


def _bold(canvas: Canvas, x: float, y: float, text: str, *, centred: bool = False) -> None:
    """Text drawn filled and stroked: the one CJK font has no bold face."""
    canvas.saveState()
    canvas.setLineWidth(0.35)
    t = canvas.beginText()
    t.setTextRenderMode(2)
    font = canvas._fontname
    size = canvas._fontsize
    t.setFont(font, size)
    if centred:
        x -= stringWidth(text, font, size) / 2
    t.setTextOrigin(x, y)
    t.textOut(text)
    canvas.drawText(t)
    canvas.restoreState()


def _box(canvas: Canvas, cx: float, cy: float) -> None:
    canvas.rect(cx - BOX / 2, cy - BOX / 2, BOX, BOX, stroke=1, fill=0)


class _Painter:
    def __init__(
        self, canvas: Canvas, font: str, title: str, stratum: str, prefix: str = ""
    ) -> None:
        self.c = canvas
        self.font = font
        self.title = title
        self.stratum = stratum
        self.prefix = prefix
        self.geometry = _Geometry(font)

    def header(self, page_no: int) -> float:
        c = self.c
        c.setFont(self.font, 8)
        c.setFillColorRGB(0.35, 0.35, 0.35)
        c.drawString(MARGIN_X, PAGE_H - MARGIN_TOP + 2, "民主测评票（纸质）")
        c.setFillColorRGB(0, 0, 0)
        y = PAGE_H - MARGIN_TOP - 18
        if page_no > 1:
            c.setFont(self.font, 10)
            c.drawString(
                MARGIN_X,
                y + 4,
                _cut(f"{self.title} · 测评人员类别：{self.stratum}（续）", self.font, 10, WIDTH),
            )
            c.setFont(self.font, 9)
            c.drawString(MARGIN_X, y - 10, NOTICE)
            return PAGE_H - MARGIN_TOP - _header_height(self.font, self.title, False)
        c.setFont(self.font, 15)
        for line in _wrap(self.title, self.font, 15, WIDTH):
            _bold(c, PAGE_W / 2, y, line, centred=True)
            y -= 19
        c.setFont(self.font, 11)
        c.drawCentredString(PAGE_W / 2, y, f"测评人员类别：{self.stratum}")
        y -= 18
        c.setFont(self.font, 10.5)
        notice_w = stringWidth(NOTICE, self.font, 10.5) + 16
        c.setLineWidth(0.8)
        c.rect(PAGE_W / 2 - notice_w / 2, y - 4, notice_w, 15, stroke=1, fill=0)
        _bold(c, PAGE_W / 2, y, NOTICE, centred=True)
        y -= 18
        c.setFont(self.font, 9)
        c.drawCentredString(PAGE_W / 2, y, HOW_TO_MARK)
        return PAGE_H - MARGIN_TOP - _header_height(self.font, self.title, True)

    def serial(self, serial: int, page_no: int, pages: int) -> None:
        """The sheet's serial in the top right corner; "第 n 页 共 m 页" when more than one."""
        c = self.c
        c.setFillColorRGB(0, 0, 0)
        c.setFont(SERIAL_FONT, 11)
        text = serial_text(serial, self.prefix)
        c.drawRightString(PAGE_W - MARGIN_X, PAGE_H - MARGIN_TOP + 2, text)
        if pages == 1:
            return
        c.setFont(self.font, 9)
        c.drawCentredString(
            PAGE_W / 2, MARGIN_BOTTOM - 14, f"第 {page_no} 页 共 {pages} 页 · {text}"
        )

    def section(self, section: _Section, top: float) -> float:
        c = self.c
        form = section.form
        y = top - HEADING_SIZE
        c.setFont(self.font, HEADING_SIZE)
        heading = form.title + ("（续）" if section.continued else "")
        _bold(c, MARGIN_X, y, _cut(heading, self.font, HEADING_SIZE, WIDTH))
        y -= 8
        if section.item_lines:
            c.setFont(self.font, section.item_size)
            c.setFillColorRGB(0.2, 0.2, 0.2)
            for line in section.item_lines:
                y -= section.item_size + 2.3
                c.drawString(MARGIN_X + 2, y + 2, line)
            c.setFillColorRGB(0, 0, 0)
            y -= 4
        name_w, xs = self.geometry.columns(form)
        labels = [g.label for g in form.grades] + ([ABSTAIN_LABEL] if form.abstain else [])
        widths = [GRADE_W] * len(form.grades) + ([ABSTAIN_W] if form.abstain else [])
        table_top = y
        c.setLineWidth(0.8)
        c.setFillColorRGB(0.93, 0.93, 0.93)
        c.rect(MARGIN_X, y - HEADER_ROW, WIDTH, HEADER_ROW, stroke=0, fill=1)
        c.setFillColorRGB(0, 0, 0)
        base = y - HEADER_ROW + 5.5
        c.setFont(self.font, LABEL_SIZE)
        c.drawCentredString(MARGIN_X + NO_W / 2, base, "序号")
        c.drawCentredString(MARGIN_X + NO_W + name_w / 2, base, "测评对象（职务）")
        for x, w, label in zip(xs, widths, labels, strict=True):
            size = LABEL_SIZE
            while size > 9 and stringWidth(label, self.font, size) > w - 4:
                size -= 0.5
            c.setFont(self.font, size)
            c.drawCentredString(x + w / 2, base, label)
        y -= HEADER_ROW
        c.setLineWidth(0.5)
        c.line(MARGIN_X, y, MARGIN_X + WIDTH, y)
        for row in section.rows:
            bottom = y - row.height
            c.setFont(self.font, row.size)
            if row.number:
                c.drawCentredString(
                    MARGIN_X + NO_W / 2, bottom + row.height / 2 - row.size / 2 + 1, row.number
                )
            text_y = y - ROW_PAD - row.size + 1.5
            for line in row.lines:
                c.drawString(MARGIN_X + NO_W + 4 + row.indent, text_y, line)
                text_y -= row.size + 2.5
            if row.boxes:
                for x, w in zip(xs, widths, strict=True):
                    _box(c, x + w / 2, bottom + row.height / 2)
            y = bottom
            c.line(MARGIN_X, y, MARGIN_X + WIDTH, y)
        # Outer frame and column rules.
        c.setLineWidth(0.8)
        c.rect(MARGIN_X, y, WIDTH, table_top - y, stroke=1, fill=0)
        c.setLineWidth(0.5)
        for x in [MARGIN_X + NO_W, *xs]:
            c.line(x, y, x, table_top)
        return y - 8


def render_paper_ballots(
    *,
    round_title: str,
    stratum_name: str,
    layout: Sequence[BallotSubject],
    count: int,
    first_serial: int = 1,
    prefix: str = "",
) -> bytes:
    """``count`` copies of the stratum's ballot, serials from ``first_serial`` (after
    ``prefix``); the PDF bytes."""
    font = pdf_font_name()
    subjects = paper_order(layout)
    pages = layout_pages(subjects, round_title, font)
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"{round_title} · {stratum_name} · 纸质选票")
    canvas.setAuthor("民主测评系统")
    painter = _Painter(canvas, font, round_title, stratum_name, prefix)
    # Every copy is the same but for its serial: each page is drawn once, placed by reference.
    for page_no, sections in enumerate(pages, 1):
        canvas.beginForm(f"page{page_no}")
        top = painter.header(page_no)
        for section in sections:
            top = painter.section(section, top)
        if not subjects:
            canvas.setFont(font, 12)
            canvas.drawString(MARGIN_X, top - 20, "（本类别没有测评对象）")
        canvas.endForm()
    for copy in range(count):
        for page_no in range(1, len(pages) + 1):
            canvas.doForm(f"page{page_no}")
            painter.serial(first_serial + copy, page_no, len(pages))
            canvas.showPage()
    canvas.save()
    return buf.getvalue()


def round_heading(rnd: Round) -> str:
    """The ballot's title: the round's title, with its year in front unless already there."""
    return rnd.title if str(rnd.year) in rnd.title else f"{rnd.year}年 {rnd.title}"


def paper_ballots_pdf(
    rnd: Round, stratum: Stratum, count: int, first_serial: int = 1, prefix: str = ""
) -> bytes:
    """The paper ballots of ``stratum``: ``count`` copies numbered from ``first_serial``.

    Only the subjects this stratum rates are printed; InputError when it rates none.
    """
    count = parse_copies(count)
    first_serial = parse_first_serial(first_serial)
    layout = ballot_layout(rnd, stratum.id)
    if not layout:
        raise InputError(f"测评人员类别“{stratum.name}”没有要评价的测评对象，无法打印选票。")
    return render_paper_ballots(
        round_title=round_heading(rnd),
        stratum_name=stratum.name,
        layout=layout,
        count=count,
        first_serial=first_serial,
        prefix=prefix,
    )
