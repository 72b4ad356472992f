"""反馈单: one printable A4 page per subject (SPEC §8, 004 §五), as PDF with the CJK font.

Whom a sheet goes to follows 004 §五:

* a leadership team or a 纪检 organ (forms whose ``subject_kind`` is ``team``): §五.1 — the
  result goes to the 上级党组, who uses it in its 综合考评 of the unit;
* a person (正职, 班子成员, 廉洁自律): §五.2 — to the person evaluated and to the unit's
  班子“第一责任人”, the round's 正职 (form ``gansu-principal``) of the same unit, by name. The
  subject and the 第一责任人 are never the same person: the 正职's own sheets (his 正职 and his
  廉洁自律 sheet) go to him and to the 上级党组（纪检组）.

The page reads as a document: the 内部资料 marking, the issuing body (the round's unit, or its
parent for a 上级抽测 round), the title "<测评对象>党风廉政建设民主测评结果反馈单", the 测评时间 in
Beijing time, the rule set, the raw counts with their shares (and, in a weighted round, the
weighted rates labelled 加权 with the 加权说明 and any 提示), the grade, the rank when the form
ranks, the 评价意见 and 整改要求 typed by the organiser (``evaluation.reports.notes``) or ruled
lines to write them by hand, and lines to sign. With paper ballots in the strata that rate the
subject, a line under the turnout counts them and their 废票 (issue 16). Digests stay out of
the body: the footer carries a short seal reference and the audit log's sequence number; the
full seal and audit head are in the PDF's metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepInFrame,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from evaluation.audit import HEAD_LABEL, ChainHead, chain_head
from evaluation.fonts import pdf_font_name
from evaluation.models import Round, Subject, Unit
from evaluation.reports.charts import safe_filename
from evaluation.reports.paper import rater_ids, subject_paper
from evaluation.reports.wording import (
    pool_notes,
    pooling_text,
    rule_set_lines,
    validity_text,
    weight_warnings,
    weighting_text,
)
from evaluation.rounds.operations import LOCAL_TZ
from evaluation.rounds.state import round_rule_set
from evaluation.tally.core import (
    Figures,
    SubjectResult,
    TallyResult,
    fraction_text,
    percent,
    unweighted,
)

MARGIN = 16 * mm
FRAME_W = A4[0] - 2 * MARGIN
FRAME_H = A4[1] - 2 * MARGIN
# The room text is set in: the page's frame less its padding (6 pt on each side).
TEXT_W = FRAME_W - 12
TEXT_H = FRAME_H - 12
COMBINED_NAME = "反馈单-全部.pdf"

SUPPRESSED = "—"
MARKING = "内部资料　注意保存"
PRINCIPAL_FORM = "gansu-principal"
DOCUMENT = "《党风廉政建设责任制民主测评制度》"
CLAUSE_TEAM = "第五条第1款"
CLAUSE_PERSON = "第五条第2款"
NO_PRINCIPAL = "本单位党组（党委）主要负责人"
SEAL_REF_LEN = 12  # hex digits of the seal printed in the footer
BLANK_LINES = 4  # ruled lines for 评价意见 / 整改要求 written by hand


# --- whom the sheet goes to (004 §五) -------------------------------------------------------------


@dataclass(frozen=True)
class Addressees:
    """Whom one subject's sheet goes to, and under which clause of 004 §五."""

    clause: str  # CLAUSE_TEAM or CLAUSE_PERSON
    recipients: str  # 送达 line
    basis: str  # the clause's words
    first_responsible: str | None  # the 第一责任人 named on a person's sheet (None otherwise)
    signers: tuple[str, ...]  # who signs for receipt, besides 反馈人


def _superior(unit: Unit) -> str:
    """The 上级党组 of a unit, named by the parent unit when there is one."""
    return f"上级党组（{unit.parent.name}）" if unit.parent is not None else "上级党组"


def _same_person(a: Subject, b: Subject) -> bool:
    if a.id == b.id:
        return True
    return a.person_id is not None and a.person_id == b.person_id


def first_responsible(rnd: Round, subject: Subject) -> Subject | None:
    """The unit's 第一责任人 for ``subject``: the round's 正职 of the same unit, by position.

    None when the round has no other 正职 in that unit: the subject's own sheets never name him
    as his own 第一责任人.
    """
    for other in rnd.subjects:
        if other.form_id != PRINCIPAL_FORM or other.unit_id != subject.unit_id:
            continue
        if not _same_person(other, subject):
            return other
    return None


def _is_principal(rnd: Round, subject: Subject) -> bool:
    """True when the subject is (the same person as) a 正职 of his unit in this round."""
    return any(
        other.form_id == PRINCIPAL_FORM
        and other.unit_id == subject.unit_id
        and _same_person(other, subject)
        for other in rnd.subjects
    )


def addressees(rnd: Round, s: SubjectResult, subject: Subject | None) -> Addressees:
    """Whom ``s``'s sheet goes to: §五.1 for teams and 纪检, §五.2 for persons."""
    unit = subject.unit if subject is not None else rnd.unit
    superior = _superior(unit)
    if s.form.subject_kind == "team":
        return Addressees(
            clause=CLAUSE_TEAM,
            recipients=f"报送{superior}，供上级党组综合考评。",
            basis=(
                f"依据{DOCUMENT}{CLAUSE_TEAM}：对领导班子的测评结果，综合各项指标因素，研究确定"
                "对被考核领导班子的考核等次后，由上级党组作为综合考评各单位落实党风廉政建设"
                "责任制的重要依据。"
            ),
            first_responsible=None,
            signers=("被反馈单位负责人",),
        )
    basis = (
        f"依据{DOCUMENT}{CLAUSE_PERSON}：对领导班子成员、领导干部的测评结果，除直接或以书面"
        "形式反馈给被测评人外，应向班子“第一责任人”反馈，并将测评结果归入领导干部廉政档案。"
    )
    person = s.name
    if subject is not None and subject.person is not None:
        person = subject.person.name
    if subject is not None and _is_principal(rnd, subject):
        return Addressees(
            clause=CLAUSE_PERSON,
            recipients=(
                f"送被测评人{person}本人；被测评人为本单位班子“第一责任人”，"
                f"测评结果同时报{superior}及其纪检组。"
            ),
            basis=basis,
            first_responsible=None,
            signers=("被反馈人",),
        )
    principal = first_responsible(rnd, subject) if subject is not None else None
    if principal is not None:
        name = principal.person.name if principal.person is not None else principal.name
        who = f"班子“第一责任人”{name}"
        post = f"（{principal.post}）" if principal.post else ""
        recipients = f"送被测评人{person}本人，并送{who}{post}。"
    else:
        name = NO_PRINCIPAL
        recipients = f"送被测评人{person}本人，并送班子“第一责任人”（{NO_PRINCIPAL}）。"
    return Addressees(
        clause=CLAUSE_PERSON,
        recipients=recipients,
        basis=basis,
        first_responsible=name,
        signers=("被反馈人", "第一责任人"),
    )


# --- wording of the page ---------------------------------------------------------------------


def issuing_body(rnd: Round) -> str:
    """The unit that issues the sheet: the round's, or its parent's for a 上级抽测 round."""
    if rnd.kind == "上级抽测" and rnd.unit.parent is not None:
        return rnd.unit.parent.name
    return rnd.unit.name


def date_text(moment: datetime | None) -> str:
    """A moment as a Beijing-time date, 2026年11月30日 ("" if None)."""
    if moment is None:
        return ""
    local = moment.astimezone(LOCAL_TZ)
    return f"{local.year}年{local.month}月{local.day}日"


def round_title(rnd: Round) -> str:
    """The round's title with its year, never the year twice."""
    if str(rnd.year) in rnd.title:
        return rnd.title
    return f"{rnd.year}年度{rnd.title}"


def sheet_title(name: str) -> str:
    """The sheet's title for one subject."""
    return f"{name}党风廉政建设民主测评结果反馈单"


def seal_reference(rnd: Round, audit_head: ChainHead | None) -> str:
    """The footer's short reference: the seal's first hex digits and the audit entry number."""
    parts = [f"封存编号 {rnd.seal[:SEAL_REF_LEN]}" if rnd.seal else "未封存"]
    if audit_head is not None:
        parts.append(f"审计日志第 {audit_head.seq} 条")
    return " · ".join(parts)


# --- layout ----------------------------------------------------------------------------------


def _styles() -> dict[str, ParagraphStyle]:
    font = pdf_font_name()
    base = ParagraphStyle("base", fontName=font, fontSize=10, leading=15, wordWrap="CJK")
    return {
        "base": base,
        "marking": ParagraphStyle("marking", parent=base, fontSize=10.5, leading=14),
        "issuer": ParagraphStyle(
            "issuer", parent=base, fontSize=13, leading=18, alignment=TA_CENTER
        ),
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=24, alignment=TA_CENTER),
        "sub": ParagraphStyle("sub", parent=base, fontSize=10.5, alignment=TA_CENTER),
        "h": ParagraphStyle("h", parent=base, fontSize=11.5, leading=17, spaceBefore=5),
        "small": ParagraphStyle("small", parent=base, fontSize=8.5, leading=12),
        "warn": ParagraphStyle("warn", parent=base, fontSize=8.5, leading=12),
        # 测评无效: boxed, at the size of the sheet's text (the font has no bold face)
        "alert": ParagraphStyle(
            "alert",
            parent=base,
            fontSize=10.5,
            leading=15,
            borderWidth=0.8,
            borderColor=colors.black,
            borderPadding=(3, 4, 3, 4),
            spaceBefore=5,
            spaceAfter=5,
        ),
        "grade": ParagraphStyle("grade", parent=base, fontSize=13, leading=19),
        "note": ParagraphStyle("note", parent=base, fontSize=10.5, leading=17),
        "footer": ParagraphStyle(
            "footer", parent=base, fontSize=7.5, leading=10, alignment=TA_RIGHT
        ),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _grid(data: list[list[object]], widths: list[float], *, header: bool = True) -> Table:
    table = Table(data, colWidths=widths, hAlign="LEFT")
    style = [
        ("FONTNAME", (0, 0), (-1, -1), pdf_font_name()),
        ("FONTSIZE", (0, 0), (-1, -1), 9.5),
        ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")))
    table.setStyle(TableStyle(style))
    return table


def _ruled_lines(count: int, width: float) -> Table:
    """Blank ruled lines to write on by hand."""
    table = Table(
        [[""] for _ in range(count)],
        colWidths=[width],
        rowHeights=[8 * mm] * count,
        hAlign="LEFT",
    )
    table.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.5, colors.black)]))
    return table


def _notes_block(
    heading: str, text: str, st: dict[str, ParagraphStyle], width: float
) -> list[object]:
    out: list[object] = [_p(heading, st["h"])]
    if text.strip():
        out.append(_p(text.strip(), st["note"]))
    else:
        out.append(_ruled_lines(BLANK_LINES, width))
    return out


def _shares(form_grades: list[str], fig: Figures) -> list[str]:
    return [percent(fig.shares[key]) if fig.shares else SUPPRESSED for key in form_grades]


def _figures_table(result: TallyResult, s: SubjectResult, width: float) -> Table:
    """Counts with their raw shares per grade, 弃权, 有效票 (and the weighted shares)."""
    raw = s.raw_figures
    keys = [g.key for g in s.form.grades]
    raw_shares = _shares(keys, raw)
    header: list[object] = ["等次", "票数", "百分比（占有效票）"]
    if result.weighted:
        header = ["等次", "票数", "占有效票（未加权）", "加权比例"]
        weighted = _shares(keys, s.figures)
    rows: list[list[object]] = [header]
    for i, g in enumerate(s.form.grades):
        row: list[object] = [g.label, str(s.figures.counts[g.key]), raw_shares[i]]
        if result.weighted:
            row.append(weighted[i])
        rows.append(row)
    valid = s.figures.valid
    rows.append(["弃权", str(s.figures.abstentions), "不计入", *([""] if result.weighted else [])])
    rows.append(
        [
            "有效票",
            str(valid),
            "100.00%" if valid else SUPPRESSED,
            *(["—"] if result.weighted else []),
        ]
    )
    n = len(header)
    widths = [width * 0.28] + [width * 0.72 / (n - 1)] * (n - 1)
    table = _grid(rows, widths)
    table.setStyle(TableStyle([("ALIGN", (1, 1), (-1, -1), "RIGHT")]))
    return table


def _rates_table(result: TallyResult, s: SubjectResult, width: float) -> Table:
    """优秀率 / 满意率 / 信任率: labelled 加权 beside the raw ones in a weighted round."""
    f, raw = s.figures, s.raw_figures
    names = (
        ("优秀率", f.excellent_rate, raw.excellent_rate),
        ("满意率", f.satisfaction_rate, raw.satisfaction_rate),
        ("信任率", f.trust_rate, raw.trust_rate),
    )
    rows: list[list[object]]
    if result.weighted:
        rows = [
            [f"{name}（加权）", percent(w), f"{name}（未加权）", percent(r)] for name, w, r in names
        ]
        widths = [width * 0.3, width * 0.2] * 2
    else:
        rows = [[cell for name, w, _ in names for cell in (name, percent(w))]]
        widths = [width * 0.16, width * (1 / 3 - 0.16)] * 3
    table = _grid(rows, widths, header=False)
    right = [("ALIGN", (c, 0), (c, -1), "RIGHT") for c in range(1, len(widths), 2)]
    table.setStyle(TableStyle(right))
    return table


def _strata_table(
    result: TallyResult, s: SubjectResult, st: dict[str, ParagraphStyle], width: float
) -> Table:
    weight_col = ["权重", "权重（归一后）"] if result.weighted else []
    header = ["测评人员类别", "参评票", "有效票", "满意率（类别内）", *weight_col]
    rows: list[list[object]] = [[_p(h, st["small"]) for h in header]]
    for c in s.strata:
        weight = (
            [fraction_text(c.base_weight) or "—", fraction_text(c.weight) or "—"]
            if result.weighted
            else []
        )
        name = _p(c.name, st["small"]) if c.pooled else c.name
        if c.figures is None:
            rows.append([name, SUPPRESSED, SUPPRESSED, SUPPRESSED, *weight])
        else:
            rows.append(
                [
                    name,
                    str(c.ballots),
                    str(c.figures.valid),
                    percent(c.figures.satisfaction_rate),
                    *weight,
                ]
            )
    n = len(rows[0])
    table = _grid(rows, [width * 0.34] + [width * 0.66 / (n - 1)] * (n - 1))
    # numbers right-aligned, as in the results table above it
    table.setStyle(
        TableStyle([("FONTSIZE", (0, 0), (-1, -1), 8.5), ("ALIGN", (1, 1), (-1, -1), "RIGHT")])
    )
    return table


def subject_page(
    rnd: Round,
    result: TallyResult,
    s: SubjectResult,
    subject: Subject | None,
    audit_head: ChainHead | None = None,
) -> list[object]:
    """The flowables of one subject's feedback sheet, shrunk to fit one A4 page if need be.

    A page that is too long is set wider and drawn smaller (``KeepInFrame``): its paragraphs
    then fill the wider measure, so the tables are made as wide again, to line up with them.
    """
    measure = Canvas(io.BytesIO(), pagesize=A4)  # laid out to be measured, never drawn
    width = TEXT_W
    for _ in range(4):
        page = KeepInFrame(
            TEXT_W,
            TEXT_H,
            _subject_story(rnd, result, s, subject, audit_head, width),
            mode="shrink",
        )
        page.wrapOn(measure, TEXT_W, TEXT_H)
        wanted = TEXT_W * getattr(page, "_scale", 1.0)
        if abs(wanted - width) < 0.5:
            break
        width = wanted
    return [page]


def _subject_story(
    rnd: Round,
    result: TallyResult,
    s: SubjectResult,
    subject: Subject | None,
    audit_head: ChainHead | None,
    width: float,
) -> list[object]:
    """One subject's feedback sheet set ``width`` wide, top to bottom."""
    st = _styles()
    to = addressees(rnd, s, subject)
    unit = subject.unit.path if subject is not None else rnd.unit.path
    issuer = issuing_body(rnd)
    story: list[object] = [
        _p(MARKING, st["marking"]),
        Spacer(1, 2 * mm),
        _p(issuer, st["issuer"]),
        _p(sheet_title(s.name), st["title"]),
        _p(round_title(rnd), st["sub"]),
        Spacer(1, 3 * mm),
    ]
    quarter = width / 4
    info = _grid(
        [
            ["测评对象", _p(s.name, st["base"]), "职务", _p(s.post or "—", st["base"])],
            ["所在单位", _p(unit, st["base"]), "测评时间", date_text(rnd.closed_at) or "—"],
            ["测评表", _p(s.form.title, st["small"]), "测评方式", f"{rnd.mode} · {rnd.kind}"],
            ["送达", _p(to.recipients, st["base"]), "", ""],
        ],
        [quarter * 0.56, quarter * 1.9, quarter * 0.56, quarter * 0.98],
        header=False,
    )
    info.setStyle(TableStyle([("SPAN", (1, 3), (3, 3)), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(info)
    story.append(Spacer(1, 1.5 * mm))
    story.append(_p(to.basis, st["small"]))
    # An invalid round says so where it cannot be missed (the sheet's figures stand for nothing).
    story.append(_p(validity_text(result), st["small"] if result.valid else st["alert"]))
    # 纸质票 among the ballots of the strata that rate the subject (none: nothing said).
    paper_ballots = subject_paper(result, rater_ids(rnd, s.subject_id))
    if paper_ballots is not None:
        story.append(_p(paper_ballots.line(), st["small"]))

    story.append(_p("一、测评结果", st["h"]))
    story.append(_figures_table(result, s, width))
    story.append(Spacer(1, 1.5 * mm))
    story.append(_rates_table(result, s, width))
    story.append(Spacer(1, 1.5 * mm))
    grade = f"测评等次：{s.grade_label or '无（没有有效票）'}"
    if s.ranked_in_form > 0 and s.rank is not None:
        grade += f"　　排名：第 {s.rank} 名（同一测评表共 {s.ranked_in_form} 个测评对象）"
    story.append(_p(grade, st["grade"]))
    if result.weighted:
        story.append(_p(weighting_text(result), st["small"]))
    for warning in weight_warnings(result, s):
        story.append(_p(warning, st["warn"]))
    if s.strata:
        story.append(_strata_table(result, s, st, width))
        story.append(Spacer(1, 1.5 * mm))
        if s.pool is not None or any(c.figures is None for c in s.strata):
            story.append(_p(pooling_text(result), st["small"]))
        for line in pool_notes(result, s):
            story.append(_p(line, st["small"]))
    for item in s.items:
        spec = next((i for i in s.form.items if i.code == item.code), None)
        rate = percent(item.figures.satisfaction_rate)
        text = f"{item.code}. {spec.text if spec else ''}"
        if result.weighted:
            raw_rate = percent(unweighted(s.form, item.figures).satisfaction_rate)
            text += f"（加权满意率 {rate}，未加权 {raw_rate}）"
        else:
            text += f"（满意率 {rate}）"
        story.append(_p(text, st["small"]))
    for line in rule_set_lines(round_rule_set(rnd), [s.form]):
        story.append(_p(line, st["small"]))

    story.extend(_notes_block("二、评价意见", subject.opinion if subject else "", st, width))
    story.extend(_notes_block("三、整改要求", subject.rectification if subject else "", st, width))

    story.append(Spacer(1, 5 * mm))
    line = "________________"
    date = "____年__月__日"
    signs: list[list[object]] = [[f"反馈单位（盖章）：{issuer}", "", "日期", date]]
    signs.append(["反馈人（签名）", line, "日期", date])
    for who in to.signers:
        label = f"{who}签收" if who != "第一责任人" else f"第一责任人（{to.first_responsible}）签收"
        signs.append([_p(label, st["base"]), line, "日期", date])
    table = Table(
        signs,
        colWidths=[width * 0.34, width * 0.3, width * 0.08, width * 0.28],
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), pdf_font_name()),
                ("FONTSIZE", (0, 0), (-1, -1), 10),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                ("SPAN", (0, 0), (1, 0)),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    story.append(table)
    story.append(Spacer(1, 4 * mm))
    story.append(_p(seal_reference(rnd, audit_head), st["footer"]))
    return story


def feedback_pdf(
    rnd: Round,
    result: TallyResult,
    subject_ids: list[int] | None = None,
    *,
    audit_head: ChainHead | None = None,
) -> bytes:
    """A PDF with one page per subject (all of the round's subjects by default).

    ``audit_head``: the audit log's head (by default the current one): its number is printed in
    each page's footer, the head itself and the full seal in the PDF's metadata.
    """
    head = audit_head or chain_head()
    subjects = {s.id: s for s in rnd.subjects}
    chosen = [s for s in result.subjects if subject_ids is None or s.subject_id in subject_ids]
    buffer = io.BytesIO()
    title = sheet_title(chosen[0].name) if len(chosen) == 1 else "党风廉政建设民主测评结果反馈单"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{title} · {round_title(rnd)}",
        author=issuing_body(rnd),
        subject=f"封存码：{rnd.seal or '未封存'}",
        keywords=f"{HEAD_LABEL}：{head}",
        creator="民主测评系统",
    )
    story: list[object] = []
    for index, s in enumerate(chosen):
        if index:
            story.append(PageBreak())
        story.extend(subject_page(rnd, result, s, subjects.get(s.subject_id), head))
    doc.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()


def write_feedback(
    rnd: Round, result: TallyResult, folder: Path, *, audit_head: ChainHead | None = None
) -> list[Path]:
    """Write one PDF per subject and one for the whole round; return the paths."""
    written = []
    for s in result.subjects:
        path = folder / f"反馈单-{safe_filename(s.name)}.pdf"
        path.write_bytes(feedback_pdf(rnd, result, [s.subject_id], audit_head=audit_head))
        written.append(path)
    path = folder / COMBINED_NAME
    path.write_bytes(feedback_pdf(rnd, result, audit_head=audit_head))
    written.append(path)
    return written
