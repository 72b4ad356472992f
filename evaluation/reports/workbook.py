"""报表: the workbook of SPEC §8, and ``flask report`` writing every output of a round.

Sheets, in order: the print sheets ``汇总表-<form>`` (the official 测评汇总表, one per form used,
A4 landscape one page wide: title, 测评时间, 应参评/实参评, per grade 票数 and 百分比 under a
merged header, rates, 测评等次, 排名, the rule set, signature lines), then ``汇总`` (one header
row, one row per subject, rates as numbers 0–1 in percent format; in a weighted round the
unweighted rates stand beside the weighted ones: for tools), ``分项`` (only when a form is graded
per item), ``分类别`` (small strata pooled into "其他类别（含：…）"), ``参测情况``, ``原始选票``
(each subject's answers as separate lines with their stratum or pool, in an order drawn
independently per subject and item — never a whole ballot; every figure of 汇总 can be
recomputed from it, and so can the seal), ``核验`` (the seal and how to check it) and ``图表``.
Everything goes through the one writer in ``evaluation.spreadsheets``.

纸质票 (issue 16): 实参评 and 已参测 count the paper ballots entered, 废票 included. With paper, the
print sheets say "（含纸质票 n 张，其中废票 m 张）" beside each stratum's 实参评 and add a
"废票认定：…" line under it (the table then starts one row lower); ``参测情况`` gets a 纸质票 table
after its existing rows. ``汇总`` and the other machine columns are unchanged; a round without
paper prints exactly what it printed before.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.pagebreak import Break
from PIL import Image as PILImage

from evaluation import audit
from evaluation.ballot_forms import SHORT_FORM_NAMES, BallotForm
from evaluation.models import Round
from evaluation.reports import charts, paper
from evaluation.reports.wording import (
    pool_notes,
    pooling_text,
    rule_set_lines,
    rules_text,
    validity_text,
    weight_warnings,
    weighting_text,
)
from evaluation.rounds.operations import LOCAL_TZ
from evaluation.rounds.state import round_rule_set
from evaluation.spreadsheets import (
    BOLD_FONT,
    BOLD_WARN_FONT,
    DATA_PRINT_SCALE,
    GRID,
    HEADER_FILL,
    INTEGER,
    PERCENT,
    PRINT_WIDTH_PX,
    Sheet,
    Styled,
    column_px,
    decimal_cell,
    new_workbook,
    percent_cell,
    row_height,
    text_width,
)
from evaluation.tally.aggregate import raw_lines
from evaluation.tally.core import (
    OVERALL,
    POOL_NAME,
    Figures,
    StratumCell,
    SubjectResult,
    TallyResult,
    fraction_text,
    unweighted,
)
from evaluation.tally.seal import (
    ALGORITHM,
    CANONICAL_DESCRIPTION,
    LEGACY_DESCRIPTION,
    LEGACY_SEAL_VERSION,
    RAW_COLUMNS,
    seal_version_of,
    shuffled,
)

SUPPRESSED = "—"
WORKBOOK_NAME = "测评结果.xlsx"
SUMMARY_FIXED = ("测评对象", "职务", "测评表", "参评票", "有效票", "弃权")
RATE_COLUMNS = ("优秀率", "满意率", "信任率", "综合得分")
RAW_RATE_COLUMNS = tuple(f"{c}（未加权）" for c in RATE_COLUMNS)
SHEET_NAMES = ("汇总", "分项", "分类别", "参测情况", "原始选票", "核验", "图表")


# --- what every output says ----------------------------------------------------------------------


def grade_columns(result: TallyResult) -> list[str]:
    """The union of the forms' grade labels, in form order (blank where a form lacks one)."""
    labels: dict[str, None] = {}
    for s in result.subjects:
        for g in s.form.grades:
            labels.setdefault(g.label, None)
    return list(labels)


# --- the workbook --------------------------------------------------------------------------------


def _rate_cells(f: Figures) -> list[Any]:
    return [
        percent_cell(f.excellent_rate),
        percent_cell(f.satisfaction_rate),
        percent_cell(f.trust_rate),
        decimal_cell(f.score),
    ]


def _fig_cells(form_labels: dict[str, str], labels: list[str], f: Figures | None) -> list[Any]:
    """Valid, abstentions, one count per grade column, and the four figures."""
    if f is None:
        return [SUPPRESSED] * (2 + len(labels) + len(RATE_COLUMNS))
    by_label = {form_labels[k]: n for k, n in f.counts.items()}
    return [
        f.valid,
        f.abstentions,
        *[by_label.get(label, None) for label in labels],
        percent_cell(f.excellent_rate),
        percent_cell(f.satisfaction_rate),
        percent_cell(f.trust_rate),
        decimal_cell(f.score),
    ]


def _fit(texts: list[str], least: float, most: float) -> float:
    """A column width for ``texts`` (longer ones wrap)."""
    return min(max([least, *(text_width(t) + 2 for t in texts)]), most)


def _name_widths(result: TallyResult) -> list[float]:
    """Widths for the 测评对象 and 测评表 columns."""
    return [
        _fit([s.name for s in result.subjects], 12, 30),
        _fit([s.form.title for s in result.subjects], 12, 40),
    ]


def _stratum_names(result: TallyResult) -> list[str]:
    return [c.name for s in result.subjects for c in s.strata]


def _forms(result: TallyResult) -> list[BallotForm]:
    """The forms used, in print order."""
    return [form for form, _ in round_forms_in_order(result)]


def _labels(subject: SubjectResult) -> dict[str, str]:
    return {g.key: g.label for g in subject.form.grades}


def _widths(labels: list[str], head: list[float], tail: list[float]) -> list[float]:
    return [*head, *([9.0] * len(labels)), *([10.0] * len(RATE_COLUMNS)), *tail]


def _page_title(rnd: Round) -> str:
    return f"{rnd.title}（{rnd.year}年度）"


# --- the official 测评汇总表: one print sheet per form ---------------------------------------

PRINT_PREFIX = "汇总表-"
SHEET_NAME_MAX = 31
INVALID_SHEET_CHARS = str.maketrans({c: "_" for c in "[]:*?/\\"})
# Room for a name written by hand: a dozen underscores print about 22 mm long.
SIGNATURE_LINE = (
    "制表人：____________    监票人：____________    审核人：____________    "
    "日期：______年____月____日"
)
STAMP_LINE = "（盖章）"
SEAL_REFERENCE = 12
TITLE_FONT = Font(bold=True, size=16)
INFO_FONT = Font(size=11)
HEAD_FONT = Font(bold=True, size=11)
SMALL_FONT = Font(size=9, color="5B6470")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
NUMBER = Alignment(horizontal="center", vertical="center")
HEADER_ROWS = (5, 6)  # the table's two header rows, repeated on every printed page


def local_moment(moment: datetime | None) -> datetime | None:
    """A stored time in Beijing time (SQLite hands back naive UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL_TZ)


def chinese_date(moment: datetime | None) -> str:
    """2026年11月30日 (Beijing time); "" for none."""
    local = local_moment(moment)
    return f"{local.year}年{local.month}月{local.day}日" if local else ""


def chinese_time(moment: datetime | None) -> str:
    """2026年11月30日 23:39（北京时间）; "" for none."""
    local = local_moment(moment)
    return f"{chinese_date(moment)} {local:%H:%M}（北京时间）" if local else ""


def evaluation_dates(rnd: Round) -> str:
    """测评时间: the round's opening to its close, as dates in Beijing time."""
    start = chinese_date(rnd.opens_at)
    end = chinese_date(rnd.closed_at or rnd.closes_at)
    if start and end and start != end:
        return f"{start}至{end}"
    return end or start or "未记录"


def round_forms_in_order(result: TallyResult) -> list[tuple[BallotForm, list[SubjectResult]]]:
    """The forms used, 班子 / 正职 / 班子成员 / 纪检 / 廉洁自律 first, others as they come."""
    groups: dict[str, tuple[BallotForm, list[SubjectResult]]] = {}
    for s in result.subjects:
        groups.setdefault(s.form.id, (s.form, []))[1].append(s)
    known = list(SHORT_FORM_NAMES)
    order = sorted(
        enumerate(groups),
        key=lambda p: (known.index(p[1]) if p[1] in known else len(known), p[0]),
    )
    return [groups[form_id] for _, form_id in order]


def form_short_name(form: BallotForm) -> str:
    """领导班子, 班子正职 … for the shipped forms; a shortened title for others."""
    if form.id in SHORT_FORM_NAMES:
        return SHORT_FORM_NAMES[form.id]
    title = form.title
    for tail in ("民主测评表", "测评表"):
        if title.endswith(tail) and len(title) > len(tail):
            title = title[: -len(tail)]
            break
    return title


def print_sheet_names(forms: list[BallotForm]) -> list[str]:
    """Valid, unique Excel sheet names (≤ 31 characters) for the forms' print sheets."""
    names: list[str] = []
    for form in forms:
        base = (PRINT_PREFIX + form_short_name(form)).translate(INVALID_SHEET_CHARS)
        base = base.strip("'")[:SHEET_NAME_MAX]
        name, n = base, 2
        while name in names or name in SHEET_NAMES:
            suffix = f"-{n}"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
            n += 1
        names.append(name)
    return names


def print_title(rnd: Round, form: BallotForm) -> str:
    """<unit><year>年度<title>测评汇总表（<form>）, the year and 测评 not said twice."""
    title = rnd.title
    year = f"{rnd.year}年度"
    if f"{rnd.year}年" not in title:  # "示例：2026年度…" has its year too
        title = year + title
    tail = "汇总表" if title.endswith("测评") else "测评汇总表"
    unit = "" if rnd.unit.name in title else rnd.unit.name  # "2026年度榆中县局…" names it
    return f"{unit}{title}{tail}（{form_short_name(form)}）"


def turnout_lines(result: TallyResult) -> tuple[str, str]:
    """应参评 and 实参评 per stratum, with the totals; 实参评 counts paper ballots and 废票,
    said beside each stratum that had paper ("（含纸质票 n 张，其中废票 m 张）")."""
    planned = "、".join(f"{t.name} {t.planned} 人" for t in result.turnout)
    used = "、".join(f"{t.name} {t.used} 人{paper.stratum_used_note(t)}" for t in result.turnout)
    total_planned = sum(t.planned for t in result.turnout)
    return (
        f"应参评：{planned}，合计 {total_planned} 人",
        f"实参评：{used}，合计 {result.used} 人",
    )


def _share(count: int, valid: int) -> Fraction | None:
    return Fraction(count, valid) if valid else None


def _print_columns(
    form: BallotForm, subjects: list[SubjectResult], weighted: bool
) -> list[tuple[str, str | None, float]]:
    """(upper header, lower header or None, width) for each column of a print sheet."""
    name_width = max([10.0, *(text_width(s.name) + 2 for s in subjects)])
    post_width = max([6.0, *(text_width(s.post) + 2 for s in subjects)])
    cols: list[tuple[str, str | None, float]] = [
        ("序号", None, 5.5),
        ("测评对象", None, min(name_width, 24.0)),
        ("职务", None, min(post_width, 18.0)),
    ]
    for g in form.grades:
        cols += [(g.label, "票数", 6.5), (g.label, "百分比", 9.0)]
    cols += [("弃权", None, 6.5), ("有效票", None, 7.5)]
    if weighted:
        cols += [(f"{n}\n（加权）", None, 10.0) for n in ("优秀率", "满意率", "信任率")]
        cols += [(f"{n}\n（未加权）", None, 10.0) for n in ("优秀率", "满意率")]
    else:
        cols += [(n, None, 9.0) for n in ("优秀率", "满意率", "信任率")]
    cols.append(("测评等次", None, 9.0))
    if _ranked(subjects):
        cols.append(("排名", None, 6.0))
    return cols


def _ranked(subjects: list[SubjectResult]) -> bool:
    """A form with one subject is not ranked."""
    return len(subjects) > 1 and any(s.rank is not None for s in subjects)


def _print_sheet(
    wb: Any,
    name: str,
    rnd: Round,
    result: TallyResult,
    form: BallotForm,
    subjects: list[SubjectResult],
) -> None:
    weighted = result.weighted
    cols = _print_columns(form, subjects, weighted)
    span = len(cols)
    seal = f"封存码 {rnd.seal[:SEAL_REFERENCE]}" if rnd.seal else "未封存"
    # With paper ballots, how 废票 were decided stands under the turnout, one row more.
    rules = paper.invalid_rules_text(result.turnout)
    first, last = (row + (1 if rules else 0) for row in HEADER_ROWS)
    sheet = Sheet(
        wb,
        name,
        widths=[w for _, _, w in cols],
        freeze=None,
        title_rows=f"{first}:{last}",
        footer=seal,
    )
    margins = sheet.ws.page_margins
    margins.left = margins.right = 0.4
    margins.top = margins.bottom = 0.6
    margins.header = margins.footer = 0.3

    def line(text: str, font: Font = INFO_FONT, *, height: float | None = None) -> None:
        sheet.append(
            [Styled(text, font=font, alignment=LEFT if font is not TITLE_FONT else CENTER)],
            spans={0: span},
            height=height,
        )

    # rows 1–4: title, the form, 测评时间 and validity, 应参评 / 实参评 (then 废票认定, if any)
    line(print_title(rnd, form), TITLE_FONT)
    line(f"测评表：{form.title}")
    line(
        f"测评单位：{rnd.unit.path}　　测评时间：{evaluation_dates(rnd)}　　{validity_text(result)}"
    )
    planned, used = turnout_lines(result)
    line(f"{planned}；{used}。")
    if rules:
        line(rules)

    # rows 5–6 (6–7 under a 废票认定 line): the two header rows
    head = Styled(None, font=HEAD_FONT, border=GRID, alignment=CENTER, fill=HEADER_FILL)
    upper: list[Any] = []
    lower: list[Any] = []
    upper_spans: dict[int, int] = {}
    index = 0
    while index < span:
        top, sub, _ = cols[index]
        if sub is None:
            upper.append(
                Styled(top, font=HEAD_FONT, border=GRID, alignment=CENTER, fill=HEADER_FILL)
            )
            lower.append(head)
            index += 1
        else:
            upper += [
                Styled(top, font=HEAD_FONT, border=GRID, alignment=CENTER, fill=HEADER_FILL),
                head,
            ]
            upper_spans[index] = 2
            for offset in (0, 1):
                lower.append(
                    Styled(
                        cols[index + offset][1],
                        font=HEAD_FONT,
                        border=GRID,
                        alignment=CENTER,
                        fill=HEADER_FILL,
                    )
                )
            index += 2
    # A header standing alone spans both rows: share its lines between them.
    lines = 1
    for i, (top, sub, _) in enumerate(cols):
        n = sheet.lines(top, i, upper_spans.get(i, 1))
        lines = max(lines, n if sub is not None else -(-n // 2))
    first = sheet.append(upper, spans=upper_spans, height=row_height(lines))
    sheet.append(lower, height=row_height(lines))
    for i, (_, sub, _) in enumerate(cols):
        if sub is None:
            sheet.merge(first, i + 1, first + 1, i + 1)

    # one row per subject
    for number, s in enumerate(subjects, 1):
        f = s.figures
        raw = s.raw_figures
        cells: list[Any] = [
            number,
            Styled(s.name, alignment=LEFT),
            Styled("" if form.subject_kind == "team" else s.post, alignment=LEFT),
        ]
        for g in form.grades:
            count = f.counts.get(g.key, 0)
            cells += [count, Styled(_share(count, f.valid), PERCENT)]
        cells += [f.abstentions, f.valid]
        cells += [
            Styled(f.excellent_rate, PERCENT),
            Styled(f.satisfaction_rate, PERCENT),
            Styled(f.trust_rate, PERCENT),
        ]
        if weighted:
            cells += [
                Styled(raw.excellent_rate, PERCENT),
                Styled(raw.satisfaction_rate, PERCENT),
            ]
        cells.append(Styled(s.grade_label or "", alignment=CENTER))
        if _ranked(subjects):
            cells.append(Styled(s.rank, INTEGER) if s.rank is not None else "")
        sheet.append([_gridded(c) for c in cells])

    # under the table: what the figures mean, the rules, the signatures
    sheet.blank()
    notes = [
        (
            "百分比为该等次票数占有效票（不含弃权）的比例（未加权）；"
            + (
                "标“加权”的优秀率、满意率、信任率和测评等次、排名按类别权重计算，"
                "标“未加权”的为实际票数的比例。"
                if weighted
                else "各比例均未加权。"
            )
        ),
        *rule_set_lines(round_rule_set(rnd), [form]),
    ]
    if weighted:
        notes.append(weighting_text(result))
    if paper.has_paper(result):
        notes.append(paper.paper_explanation())
    warnings: list[str] = []
    for s in subjects:
        warnings += weight_warnings(result, s)
        notes += pool_notes(result, s)
    for text in notes:
        sheet.note(text)
    for text in warnings:
        sheet.note(text, warn=True)
    if not result.valid:
        sheet.note(validity_text(result), warn=True)
    sheet.blank()
    line(SIGNATURE_LINE, HEAD_FONT, height=row_height(1) + 12)
    stamp = Styled(STAMP_LINE, font=INFO_FONT, alignment=Alignment(horizontal="right"))
    sheet.append([stamp], spans={0: span}, height=60)
    line(
        f"{seal}（完整封存码和核验方法见“核验”表）",
        SMALL_FONT,
    )


def _gridded(value: Any) -> Styled:
    """A table cell with thin borders, numbers centred."""
    styled = value if isinstance(value, Styled) else Styled(value)
    alignment = styled.alignment or NUMBER
    return Styled(
        styled.value,
        styled.number_format,
        styled.font,
        styled.wrap,
        GRID,
        alignment,
        styled.fill,
    )


def _print_sheets(wb: Any, rnd: Round, result: TallyResult) -> None:
    groups = round_forms_in_order(result)
    names = print_sheet_names([form for form, _ in groups])
    for name, (form, subjects) in zip(names, groups, strict=True):
        _print_sheet(wb, name, rnd, result, form, subjects)


def _summary(wb: Any, rnd: Round, result: TallyResult, seal: str | None) -> None:
    labels = grade_columns(result)
    sheet = Sheet(
        wb,
        "汇总",
        widths=_widths(
            labels,
            [
                _fit([s.name for s in result.subjects], 12, 30),
                _fit([s.post for s in result.subjects], 8, 20),
                _fit([s.form.title for s in result.subjects], 12, 40),
                8,
                8,
                8,
            ],
            [11, 8, *([12.0] * len(RATE_COLUMNS) if result.weighted else [])],
        ),
        page_title=_page_title(rnd),
        min_print_scale=DATA_PRINT_SCALE,
    )
    raw = list(RAW_RATE_COLUMNS) if result.weighted else []
    sheet.header([*SUMMARY_FIXED, *labels, *RATE_COLUMNS, "测评等次", "排名", *raw])
    for s in result.subjects:
        figs = _fig_cells(_labels(s), labels, s.figures)
        sheet.row(
            [
                s.name,
                s.post,
                s.form.title,
                s.figures.ballots,
                *figs,
                s.grade_label or "",
                Styled(s.rank, INTEGER) if s.rank is not None else "",
                *(_rate_cells(s.raw_figures) if result.weighted else []),
            ]
        )
    sheet.blank()
    sheet.note(validity_text(result), warn=not result.valid)
    if result.weighted:
        sheet.note(
            "本表“优秀率”至“综合得分”、测评等次和排名为加权数字；各等次票数为实际票数，"
            "标“（未加权）”的列为实际票数的比例。"
        )
        sheet.note(weighting_text(result))
        for warning in weight_warnings(result):
            sheet.note(warning, warn=True)
    for line in pool_notes(result):
        sheet.note(line)
    for line in rule_set_lines(round_rule_set(rnd), _forms(result)):
        sheet.note(line)
    sheet.note(rules_text(result))
    sheet.note(f"封存码（{ALGORITHM}）：{seal or '未封存'}")
    for anomaly in result.anomalies:
        sheet.note(f"异常数据：{anomaly}", warn=True)


def _items(wb: Any, rnd: Round, result: TallyResult) -> None:
    labels = grade_columns(result)
    sheet = Sheet(
        wb,
        "分项",
        widths=_widths(labels, [*_name_widths(result), 6, 50, 10], []),
        page_title=_page_title(rnd),
        min_print_scale=DATA_PRINT_SCALE,
    )
    sheet.header(
        [
            "测评对象",
            "测评表",
            "序号",
            "测评内容",
            "逐项评分",
            "有效票",
            "弃权",
            *labels,
            *RATE_COLUMNS,
            *(RAW_RATE_COLUMNS if result.weighted else ()),
        ]
    )
    for s in result.subjects:
        graded = {i.code: i for i in s.items}
        for item in s.form.items:
            head = [s.name, s.form.title, item.code, Styled(item.text, wrap=True)]
            if item.code in graded:
                f = graded[item.code].figures
                raw = _rate_cells(unweighted(s.form, f)) if result.weighted else []
                sheet.row([*head, "是", *_fig_cells(_labels(s), labels, f), *raw])
            else:
                sheet.row([*head, "否（按总体等次评价）"])
    sheet.blank()
    sheet.note(
        "“逐项评分”为“否”的测评表只对测评对象给出总体等次，测评内容为评价时依据的内容，"
        "总体结果见“汇总”。"
    )
    if result.weighted:
        sheet.note(
            "“优秀率”至“综合得分”为加权数字，按该对象的类别合并计算；标“（未加权）”的列为"
            "实际票数的比例。"
        )
        sheet.note(weighting_text(result))
    for line in pool_notes(result):
        sheet.note(line)


def _stratum_rows(
    sheet: Sheet,
    s: SubjectResult,
    labels: list[str],
    item: str,
    cells: tuple[StratumCell, ...],
    weighted: bool,
) -> None:
    for c in cells:
        figs = _fig_cells(_labels(s), labels, c.figures)
        ballots: Any = SUPPRESSED if c.suppressed else c.ballots
        tail = (
            [fraction_text(c.base_weight) or "", fraction_text(c.weight) or ""] if weighted else []
        )
        name = Styled(c.name, wrap=True) if c.pooled else c.name
        sheet.row([s.name, s.form.title, item, name, ballots, *figs, *tail])


def _strata(wb: Any, rnd: Round, result: TallyResult) -> None:
    labels = grade_columns(result)
    tail = ["权重", "权重（归一后）"] if result.weighted else []
    sheet = Sheet(
        wb,
        "分类别",
        widths=_widths(
            labels,
            [*_name_widths(result), 10, _fit(_stratum_names(result), 12, 40), 8, 8, 8],
            [10, 14] if tail else [],
        ),
        page_title=_page_title(rnd),
        min_print_scale=DATA_PRINT_SCALE,
    )
    sheet.header(
        [
            "测评对象",
            "测评表",
            "测评内容",
            "测评人员类别",
            "参评票",
            "有效票",
            "弃权",
            *labels,
            *RATE_COLUMNS,
            *tail,
        ]
    )
    for s in result.subjects:
        _stratum_rows(sheet, s, labels, "总体", s.strata, result.weighted)
        for item in s.items:
            _stratum_rows(sheet, s, labels, f"第{item.code}项", item.strata, result.weighted)
    sheet.blank()
    sheet.note(pooling_text(result))
    for line in pool_notes(result):
        sheet.note(line)
    if result.weighted:
        sheet.note(
            "各类别的比例为该类别内的实际比例（未加权）；“权重”为设定的权重（其他类别为所含"
            "类别权重之和），“权重（归一后）”为该类别在该对象加权数字中的份量。"
        )
        sheet.note(weighting_text(result))
        for warning in weight_warnings(result):
            sheet.note(warning, warn=True)


def _turnout(wb: Any, rnd: Round, result: TallyResult) -> None:
    sheet = Sheet(
        wb,
        "参测情况",
        widths=[16, 12, 12, 10, 10, 10],
        landscape=False,
        page_title=_page_title(rnd),
        min_print_scale=DATA_PRINT_SCALE,
    )
    sheet.header(["测评人员类别", "应参加人数", "发放测评码", "已参测", "参测率", "权重"])
    for t in result.turnout:
        sheet.row(
            [
                t.name,
                t.planned,
                t.issued,
                t.used,
                percent_cell(t.rate),
                fraction_text(t.weight) or "",
            ]
        )
    sheet.row(
        [
            Styled("合计", font=BOLD_FONT),
            sum(t.planned for t in result.turnout),
            result.issued,
            result.used,
            percent_cell(result.turnout_rate),
            "",
        ]
    )
    sheet.blank()
    sheet.row(["最低参测率", percent_cell(result.min_turnout)])
    sheet.row(["结果", "有效" if result.valid else "无效"])
    sheet.note(validity_text(result), warn=not result.valid)
    if any(t.paper.any for t in result.turnout):
        sheet.note(
            "参测率 = 已参测 / 发放；发放含测评码和印制的纸质票（作废的测评码不计），"
            "已参测含已使用的测评码和交回录入的纸质票（废票也算参测）。"
        )
    else:
        sheet.note("参测率 = 已使用的测评码 / 发放的测评码（作废的测评码不计）。")
    _paper_turnout(sheet, result)


PAPER_TURNOUT_COLUMNS = (
    "测评人员类别",
    "印制纸质票",
    "录入纸质票",
    "其中有效",
    "其中废票",
    "废票认定",
)


def _paper_turnout(sheet: Sheet, result: TallyResult) -> None:
    """纸质票 rows under 参测情况 (only when the round had paper): rows after the existing
    ones, so tools reading the sheet's first table find it unchanged."""
    strata = paper.with_paper(result.turnout)
    if not strata:
        return
    sheet.blank()
    sheet.header(PAPER_TURNOUT_COLUMNS)
    for t in strata:
        sheet.row(
            [
                t.name,
                t.paper.printed,
                paper.entered(t),
                t.paper.valid,
                t.paper.invalid,
                Styled(
                    "、".join(f"{k} {n}" for k, n in t.paper.invalid_by_rule if n) or "—",
                    wrap=True,
                ),
            ]
        )
    sheet.row(
        [
            Styled("合计", font=BOLD_FONT),
            sum(t.paper.printed for t in strata),
            sum(paper.entered(t) for t in strata),
            sum(t.paper.valid for t in strata),
            sum(t.paper.invalid for t in strata),
            "",
        ]
    )
    rules = paper.invalid_rules_text(strata)
    if rules:
        sheet.note(rules)
    sheet.note(paper.paper_explanation())


def _raw(wb: Any, rnd: Round, result: TallyResult) -> None:
    """原始选票: each subject's answers as lines, never a whole ballot (SPEC §5.5, §8).

    Each (subject, item) block is listed in its own random order, drawn with
    ``secrets.SystemRandom``: nothing in a line's position ties it to a line of another
    subject or item, so no ballot can be put back together from the sheet.
    """
    sheet = Sheet(
        wb,
        "原始选票",
        widths=[22, 10, 40, 12],
        page_title=_page_title(rnd),
        min_print_scale=DATA_PRINT_SCALE,
    )
    sheet.header(RAW_COLUMNS)
    lines = raw_lines(rnd, result)
    for s in result.subjects:
        blocks = lines.get(s.subject_id, {})
        order = [OVERALL, *(i.code for i in s.form.items)]
        order += sorted(code for code in blocks if code not in order)
        for code in order:
            for line in shuffled(blocks.get(code, {})):
                sheet.row([line.subject, line.item, line.stratum, line.grade])
    sheet.blank()
    sheet.note(raw_sheet_text(result, seal_version_of(rnd.sealed_result)))


def raw_sheet_text(result: TallyResult, seal_version: str) -> str:
    """What 原始选票 holds and how to recount 汇总 (and the seal) from it."""
    text = (
        "每行是一条答案（某测评对象的总体等次或某一项的等次），不是一张选票：同一张选票的各条"
        "答案分散在不同位置，各测评对象、各项的行分别随机排列，与投票先后无关。"
        f"“测评人员类别”为类别名称，或合并的“{POOL_NAME}（含：…）”。"
        "按“测评内容”为“总体”的行即可复算“汇总”的全部数字；"
    )
    if result.weighted:
        text += (
            "加权数字：先按类别（其他类别作为一个类别）计算各等次比例，类别权重见“参测情况”表"
            "“权重”列，其他类别的权重为其所含类别权重之和，再按对该对象投出有效票的类别权重"
            "（重新归一）合并。"
        )
    if seal_version == LEGACY_SEAL_VERSION:
        text += (
            "本活动的封存码为旧格式（v1，按整张选票计算），不能由本表复算，请用 flask verify 核验。"
        )
    else:
        text += "封存码也可由本表复算，方法见“核验”表。"
    return text


# Pages, workbooks, feedback sheets and the archive all read the result sealed at close.
SOURCE_TEXT = (
    "全部数字取自测评结束时封存的计票结果，不再重新计票；"
    "flask verify 按存储的答案重新计票并与封存结果逐项比对。"
)


def _verification(
    wb: Any, rnd: Round, result: TallyResult, seal: str | None, head: audit.ChainHead
) -> None:
    sheet = Sheet(
        wb,
        "核验",
        widths=[18, 100],
        landscape=False,
        page_title=_page_title(rnd),
        min_print_scale=DATA_PRINT_SCALE,
    )
    sheet.header(["项目", "内容"])
    version = seal_version_of(rnd.sealed_result)
    legacy = version == LEGACY_SEAL_VERSION
    closed = chinese_time(rnd.closed_at)
    rows: list[tuple[str, Any]] = [
        ("测评活动", rnd.title),
        ("活动编号", rnd.id),
        ("单位", rnd.unit.path),
        ("年度", rnd.year),
        ("方式", f"{rnd.mode} · {rnd.kind}"),
        ("结束时间", closed),
        ("选票数", result.ballots),
        ("封存码", seal or "未封存"),
        ("封存算法", ALGORITHM),
        ("封存格式", "v1（旧格式）" if legacy else "v2"),
        ("规范化方法", LEGACY_DESCRIPTION if legacy else CANONICAL_DESCRIPTION),
        (
            "核验方法",
            ("" if legacy else "任何人都可以按“规范化方法”由“原始选票”表复算封存码。")
            + f"在服务器上运行 flask verify {rnd.id}：从数据库中存储的答案重新计算封存码和"
            "全部计票结果，与封存时的记录逐项比对；有任何差异即以非零状态退出并逐项指出。",
        ),
        ("数字来源", SOURCE_TEXT),
        ("加权", weighting_text(result)),
        ("结果有效性", validity_text(result)),
        ("小类别合并", pooling_text(result)),
        ("等次规则", "\n".join(rule_set_lines(round_rule_set(rnd), _forms(result)))),
        ("计算规则", rules_text(result)),
        ("原始选票", raw_sheet_text(result, version)),
        (audit.HEAD_LABEL, str(head)),
        ("审计日志核验", audit.HEAD_METHOD),
        ("生成时间", chinese_time(datetime.now(UTC))),
    ]
    for key, value in rows:
        warn = key == "结果有效性" and not result.valid
        sheet.row(
            [
                Styled(key, font=BOLD_FONT),
                Styled(
                    value,
                    wrap=True,
                    font=BOLD_WARN_FONT if warn else None,
                ),
            ]
        )


def chart_images(result: TallyResult, seal: str | None) -> list[tuple[str, bytes]]:
    """The charts every output shows: (file stem, PNG) for the round and for each subject."""
    images = [
        (f"图表-{title}", draw(result, seal=seal)) for title, draw in charts.ROUND_CHARTS.values()
    ]
    for s in result.subjects:
        images.append(
            (f"图表-{charts.safe_filename(s.name)}", charts.subject_png(result, s, seal=seal))
        )
        profile = charts.item_profile_png(result, s, seal=seal)
        if profile is not None:
            images.append((f"图表-{charts.safe_filename(s.name)}-分项", profile))
    return images


# The 图表 sheet printed: A4 portrait, 0.5″ side and 0.7″ top and bottom margins, fitted to
# the width of its twelve columns, together just wider than a chart (so that the charts fill
# the page's width, not half of it). Rows are 20 px (15 pt).
CHART_PX = 760
ROW_PX = 20
CHART_COLUMNS = [8.5] * 12
_SHEET_PX = sum(column_px(w) for w in CHART_COLUMNS)
_PRINT_SCALE = min(1.0, PRINT_WIDTH_PX[False] / _SHEET_PX)
# Rows a printed page holds, less a tenth for the header and for Excel measuring differently.
CHART_ROWS_PER_PAGE = int((11.69 - 2 * 0.7) * 96 / _PRINT_SCALE / ROW_PX * 0.9)


def _charts(wb: Any, rnd: Round, result: TallyResult, images: list[tuple[str, bytes]]) -> None:
    sheet = Sheet(
        wb,
        "图表",
        widths=CHART_COLUMNS,
        landscape=False,
        freeze=None,
        page_title=_page_title(rnd),
    )
    sheet.note(
        "图表（与“汇总”数字相同；"
        + ("加权" if result.weighted else "不加权")
        + ("；测评无效" if not result.valid else "")
        + "）"
    )
    row, page_top = 3, 1  # the first page starts with the note above the charts
    for _, png in images:
        with PILImage.open(io.BytesIO(png)) as img:
            height = img.height * CHART_PX / img.width
        rows = int(height / ROW_PX) + 2
        if row > page_top + 2 and row - page_top + rows > CHART_ROWS_PER_PAGE:
            # A chart that would run over the page's foot starts the next page: printed, no
            # chart is cut in two.
            sheet.ws.row_breaks.append(Break(id=row - 1))
            page_top = row
        sheet.image(png, f"A{row}", width=CHART_PX)
        row += rows


def write_workbook(
    rnd: Round,
    result: TallyResult,
    out: Path | IO[bytes],
    *,
    images: list[tuple[str, bytes]] | None = None,
    audit_head: audit.ChainHead | None = None,
) -> None:
    """Write the workbook of SPEC §8 for a closed round (``result``: its sealed result).

    ``audit_head``: the audit log's head to print in 核验 (by default the current one).
    """
    wb = new_workbook()
    _print_sheets(wb, rnd, result)
    _summary(wb, rnd, result, rnd.seal)
    if any(s.form.per_item for s in result.subjects):
        _items(wb, rnd, result)
    _strata(wb, rnd, result)
    _turnout(wb, rnd, result)
    _raw(wb, rnd, result)
    _verification(wb, rnd, result, rnd.seal, audit_head or audit.chain_head())
    _charts(wb, rnd, result, images if images is not None else chart_images(result, rnd.seal))
    wb.save(out)
