"""反馈单: one printable A4 page per subject (SPEC §8, 004 §五.2), as PDF with the CJK font.

The page is handed to the person evaluated (or, for a leadership team, to the unit) and to
the unit's first responsible person (第一责任人): the round, the subject, the turnout and
validity, the counts and exact rates (in a weighted round the unweighted shares beside the
weighted ones, with the 加权说明 and any 提示), the grade and rank, the per-stratum 满意率 with
small strata pooled into 其他类别 (named), the content judged, the seal, and lines to sign.
Each subject's page is available on its own and all of them as one file for the round.
"""

from __future__ import annotations

import io
from datetime import UTC
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
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
from evaluation.models import Round, Subject
from evaluation.reports.charts import safe_filename
from evaluation.reports.workbook import (
    SUPPRESSED,
    pool_notes,
    pooling_text,
    validity_text,
    weight_warnings,
    weighting_text,
)
from evaluation.tally.core import (
    Figures,
    SubjectResult,
    TallyResult,
    decimal_text,
    fraction_text,
    percent,
    unweighted,
)

MARGIN = 16 * mm
FRAME_W = A4[0] - 2 * MARGIN
FRAME_H = A4[1] - 2 * MARGIN
COMBINED_NAME = "反馈单-全部.pdf"


def _styles() -> dict[str, ParagraphStyle]:
    font = pdf_font_name()
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK")
    return {
        "base": base,
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=24, alignment=TA_CENTER),
        "sub": ParagraphStyle("sub", parent=base, fontSize=10.5, alignment=TA_CENTER),
        "h": ParagraphStyle("h", parent=base, fontSize=11, leading=16, spaceBefore=6),
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11),
        "warn": ParagraphStyle("warn", parent=base, textColor=colors.HexColor("#b3261e")),
        "grade": ParagraphStyle("grade", parent=base, fontSize=15, leading=20),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _grid(data: list[list[object]], widths: list[float], *, header: bool = True) -> Table:
    table = Table(data, colWidths=widths, hAlign="LEFT")
    style = [
        ("FONTNAME", (0, 0), (-1, -1), pdf_font_name()),
        ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#8a939e")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f2f5")))
    table.setStyle(TableStyle(style))
    return table


def subject_page(
    rnd: Round,
    result: TallyResult,
    s: SubjectResult,
    subject: Subject | None,
    audit_head: ChainHead | None = None,
) -> list[object]:
    """The flowables of one subject's feedback page (shrunk to fit one A4 page)."""
    st = _styles()
    f = s.figures
    unit = subject.unit.path if subject is not None else rnd.unit.path
    closed = rnd.closed_at.astimezone(UTC).strftime("%Y-%m-%d") if rnd.closed_at else ""
    story: list[object] = [
        _p("民主测评结果反馈单", st["title"]),
        _p(f"{rnd.title}（{rnd.year}年度）", st["sub"]),
        Spacer(1, 4 * mm),
    ]
    half = FRAME_W / 4
    story.append(
        _grid(
            [
                ["测评对象", s.name, "职务", s.post or "—"],
                ["所在单位", unit, "测评表", _p(s.form.title, st["small"])],
                ["测评方式", f"{rnd.mode} · {rnd.kind}", "结束日期", closed],
            ],
            [half * 0.6, half * 1.4, half * 0.6, half * 1.4],
            header=False,
        )
    )
    story.append(Spacer(1, 3 * mm))
    story.append(_p(validity_text(result), st["base"] if result.valid else st["warn"]))
    if result.weighted:
        story.append(
            _p(
                "本反馈单中的比例、等次和排名为加权数字；票数为实际票数，标“未加权”的为实际票数"
                "的比例。",
                st["base"],
            )
        )

    story.append(_p("一、测评结果", st["h"]))
    raw = s.raw_figures
    labels = [g.label for g in s.form.grades]
    counts = [str(f.counts[g.key]) for g in s.form.grades]

    def shares_of(fig: Figures) -> list[str]:
        return [percent(fig.shares[g.key]) if fig.shares else "—" for g in s.form.grades]

    share_rows: list[list[object]] = (
        [["加权比例", "", "", *shares_of(f)], ["占有效票（未加权）", "", "", *shares_of(raw)]]
        if result.weighted
        else [["占有效票", "", "", *shares_of(f)]]
    )
    col = FRAME_W / (len(labels) + 3)
    story.append(
        _grid(
            [
                ["", "参评票", "有效票", *labels],
                ["票数", str(f.ballots), str(f.valid), *counts],
                *share_rows,
            ],
            [col * 1.2, col * 0.9, col * 0.9, *[col] * len(labels)],
        )
    )
    story.append(Spacer(1, 2 * mm))
    rank = f"第 {s.rank} 名（同一测评表共 {s.ranked_in_form} 个对象）" if s.rank else "无"
    rate_rows: list[list[object]] = [["", "优秀率", "满意率", "信任率", "综合得分", "弃权票"]]
    for label, fig in [("加权", f), ("未加权", raw)] if result.weighted else [("", f)]:
        rate_rows.append(
            [
                label,
                percent(fig.excellent_rate),
                percent(fig.satisfaction_rate),
                percent(fig.trust_rate),
                decimal_text(fig.score),
                str(fig.abstentions),
            ]
        )
    story.append(_grid(rate_rows, [FRAME_W * 0.1] + [FRAME_W * 0.18] * 5))
    story.append(Spacer(1, 2 * mm))
    story.append(_p(f"测评等次：{s.grade_label or '无（没有有效票）'}", st["grade"]))
    story.append(_p(f"满意率排名：{rank}", st["base"]))

    story.append(_p("二、各类别满意率（各类别内实际比例）", st["h"]))
    weight_col = ["权重", "权重（归一后）"] if result.weighted else []
    rows: list[list[object]] = [["测评人员类别", "参评票", "有效票", "满意率", *weight_col]]
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
    story.append(_grid(rows, [FRAME_W * 0.34] + [FRAME_W * 0.66 / (n - 1)] * (n - 1)))
    story.append(_p(pooling_text(result), st["small"]))
    for line in pool_notes(result, s):
        story.append(_p(line, st["small"]))
    if result.weighted:
        story.append(_p(weighting_text(result), st["small"]))
    for warning in weight_warnings(result, s):
        story.append(_p(warning, st["warn"]))

    story.append(_p("三、测评内容", st["h"]))
    for item in s.form.items:
        graded = next((i for i in s.items if i.code == item.code), None)
        extra = ""
        if graded is not None:
            rate = percent(graded.figures.satisfaction_rate)
            raw_rate = percent(unweighted(s.form, graded.figures).satisfaction_rate)
            extra = (
                f"（加权满意率 {rate}，未加权 {raw_rate}）"
                if result.weighted
                else f"（满意率 {rate}）"
            )
        story.append(_p(f"{item.code}. {item.text}{extra}", st["small"]))
    if not s.form.items:
        story.append(_p("（本测评表未设测评内容）", st["small"]))

    story.append(_p("四、说明", st["h"]))
    story.append(
        _p(
            "各比例以有效票（不含弃权）为分母，按精确分数计算后保留两位小数显示。"
            "根据民主测评制度第五条第2款，测评结果直接或以书面形式反馈给被测评人，并向班子"
            "“第一责任人”反馈，归入领导干部廉政档案。",
            st["small"],
        )
    )
    story.append(_p(f"封存码（SHA-256）：{rnd.seal or '未封存'}", st["small"]))
    if audit_head is not None:
        story.append(_p(f"{HEAD_LABEL}：{audit_head}", st["small"]))
    story.append(Spacer(1, 8 * mm))
    line = "________________"
    story.append(
        _grid(
            [
                ["被测评人（签收）", line, "日期", "____年__月__日"],
                ["第一责任人（签收）", line, "日期", "____年__月__日"],
                ["反馈人", line, "日期", "____年__月__日"],
            ],
            [FRAME_W * 0.24, FRAME_W * 0.36, FRAME_W * 0.1, FRAME_W * 0.3],
            header=False,
        )
    )
    fitted = KeepInFrame(FRAME_W, FRAME_H, story, mode="shrink")
    return [fitted]


def feedback_pdf(
    rnd: Round,
    result: TallyResult,
    subject_ids: list[int] | None = None,
    *,
    audit_head: ChainHead | None = None,
) -> bytes:
    """A PDF with one page per subject (all of the round's subjects by default).

    ``audit_head``: the audit log's head printed on each page (by default the current one).
    """
    head = audit_head or chain_head()
    subjects = {s.id: s for s in rnd.subjects}
    chosen = [s for s in result.subjects if subject_ids is None or s.subject_id in subject_ids]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"民主测评结果反馈单 · {rnd.title}",
        author="民主测评系统",
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
