"""报表: the workbook of SPEC §8, and ``flask report`` writing every output of a round.

Sheets: ``汇总`` (one header row, one row per subject, rates as numbers 0–1 in percent format),
``分项``, ``分类别`` (small groups shown as "—"), ``参测情况``, ``原始选票`` (every ballot, in
the stored random order, for an independent recount), ``核验`` (the seal and how to check it)
and ``图表``. Everything goes through the one writer in ``evaluation.spreadsheets``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from PIL import Image as PILImage

from evaluation.models import Round
from evaluation.reports import charts
from evaluation.spreadsheets import (
    BOLD_FONT,
    BOLD_WARN_FONT,
    INTEGER,
    Sheet,
    Styled,
    decimal_cell,
    new_workbook,
    percent_cell,
)
from evaluation.tally.aggregate import stored_ballots
from evaluation.tally.core import (
    OVERALL,
    Figures,
    StratumCell,
    SubjectResult,
    TallyResult,
    fraction_text,
    percent,
)
from evaluation.tally.seal import ALGORITHM, CANONICAL_DESCRIPTION

SUPPRESSED = "—"
WORKBOOK_NAME = "测评结果.xlsx"
SUMMARY_FIXED = ("测评对象", "职务", "测评表", "参评票", "有效票", "弃权")
RATE_COLUMNS = ("优秀率", "满意率", "信任率", "综合得分")


# --- what every output says ----------------------------------------------------------------------


def grade_columns(result: TallyResult) -> list[str]:
    """The union of the forms' grade labels, in form order (blank where a form lacks one)."""
    labels: dict[str, None] = {}
    for s in result.subjects:
        for g in s.form.grades:
            labels.setdefault(g.label, None)
    return list(labels)


def validity_text(result: TallyResult) -> str:
    """有效 / 无效 with the turnout that decides it."""
    turnout = f"参测率 {percent(result.turnout_rate)}（{result.used}/{result.issued}）"
    minimum = f"最低参测率 {percent(result.min_turnout)}（{fraction_text(result.min_turnout)}）"
    if result.valid:
        return f"测评有效：{turnout}，不低于{minimum}。"
    return f"测评无效：{turnout}，低于{minimum}，本次测评结果无效。"


def weighting_text(result: TallyResult) -> str:
    """Whether and how the figures are weighted."""
    if not result.weighted:
        return "不加权：各比例为有效票中的实际比例。"
    weights = "、".join(
        f"{t.name} {fraction_text(t.weight) if t.weight is not None else '0（未设权重）'}"
        for t in result.turnout
    )
    return (
        f"加权：各类别权重为 {weights}。优秀率、满意率、信任率、综合得分、测评等次和排名均按加权"
        "比例计算——先算各类别的比例，再按对该对象投出有效票的类别的权重（重新归一）合并；"
        "票数为实际票数。"
    )


def suppression_text(result: TallyResult) -> str:
    """What "—" means."""
    return (
        f"“—”表示该分组的选票少于 {result.min_group_size} 张，为保护测评人匿名不予显示；"
        "各测评对象的总体结果不受影响。"
    )


def rules_text() -> str:
    """How the figures are computed."""
    return (
        "各比例均以有效票（不含弃权）为分母，按精确分数计算后显示（三分之一即 1/3，不是 0.333）。"
        "优秀率 = 最好等次票 / 有效票；满意率 = 满意等次票 / 有效票；信任率 = 除最差等次外的票 / "
        "有效票；综合得分 = Σ 等次分值 × 票数 / 有效票。测评等次按测评表规则依次判断；排名按满意率"
        "在同一测评表内并列排名（1、1、3）。"
    )


# --- the workbook --------------------------------------------------------------------------------


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


def _labels(subject: SubjectResult) -> dict[str, str]:
    return {g.key: g.label for g in subject.form.grades}


def _widths(labels: list[str], head: list[float], tail: list[float]) -> list[float]:
    return [*head, *([9.0] * len(labels)), *([10.0] * len(RATE_COLUMNS)), *tail]


def _page_title(rnd: Round) -> str:
    return f"{rnd.title}（{rnd.year}年度）"


def _summary(wb: Any, rnd: Round, result: TallyResult, seal: str | None) -> None:
    labels = grade_columns(result)
    sheet = Sheet(
        wb,
        "汇总",
        widths=_widths(labels, [22, 12, 16, 8, 8, 8], [11, 8]),
        page_title=_page_title(rnd),
    )
    sheet.header([*SUMMARY_FIXED, *labels, *RATE_COLUMNS, "测评等次", "排名"])
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
            ]
        )
    sheet.blank()
    sheet.note(validity_text(result), warn=not result.valid)
    if result.weighted:
        sheet.note("本表各比例为加权数字。" + weighting_text(result), warn=False)
    sheet.note(rules_text())
    sheet.note(f"封存码（{ALGORITHM}）：{seal or '未封存'}")
    for anomaly in result.anomalies:
        sheet.note(f"异常数据：{anomaly}", warn=True)


def _items(wb: Any, rnd: Round, result: TallyResult) -> None:
    labels = grade_columns(result)
    sheet = Sheet(
        wb,
        "分项",
        widths=_widths(labels, [18, 14, 6, 50, 10], []),
        page_title=_page_title(rnd),
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
        ]
    )
    for s in result.subjects:
        graded = {i.code: i for i in s.items}
        for item in s.form.items:
            head = [s.name, s.form.title, item.code, Styled(item.text, wrap=True)]
            if item.code in graded:
                sheet.row([*head, "是", *_fig_cells(_labels(s), labels, graded[item.code].figures)])
            else:
                sheet.row([*head, "否（按总体等次评价）"])
    sheet.blank()
    sheet.note(
        "“逐项评分”为“否”的测评表只对测评对象给出总体等次，测评内容为评价时依据的内容，"
        "总体结果见“汇总”。"
    )
    if result.weighted:
        sheet.note("各比例为加权数字。")


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
        tail = [fraction_text(c.weight) or ""] if weighted else []
        sheet.row([s.name, s.form.title, item, c.name, ballots, *figs, *tail])


def _strata(wb: Any, rnd: Round, result: TallyResult) -> None:
    labels = grade_columns(result)
    tail = ["权重（归一后）"] if result.weighted else []
    sheet = Sheet(
        wb,
        "分类别",
        widths=_widths(labels, [18, 14, 10, 12, 8, 8, 8], [14] if tail else []),
        page_title=_page_title(rnd),
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
    sheet.note(suppression_text(result))
    if result.weighted:
        sheet.note(
            "各类别的比例为该类别内的实际比例；“权重（归一后）”为该类别在该对象加权数字中的份量。"
        )


def _turnout(wb: Any, rnd: Round, result: TallyResult) -> None:
    sheet = Sheet(
        wb,
        "参测情况",
        widths=[16, 12, 12, 10, 10, 10],
        landscape=False,
        page_title=_page_title(rnd),
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
    sheet.note("参测率 = 已使用的测评码 / 发放的测评码（作废的测评码不计）。")


def raw_stratum_labels(result: TallyResult) -> dict[int, str]:
    """The stratum shown for each ballot in 原始选票: "—" for strata below the group size.

    When the hidden strata together still hold fewer ballots than the group size (so "—"
    would itself single them out), no stratum is shown at all.
    """
    small = {t.stratum_id for t in result.turnout if t.used < result.min_group_size}
    hidden = sum(t.used for t in result.turnout if t.stratum_id in small)
    if small and hidden < result.min_group_size:
        return {t.stratum_id: SUPPRESSED for t in result.turnout}
    return {t.stratum_id: (SUPPRESSED if t.stratum_id in small else t.name) for t in result.turnout}


def raw_ballots(rnd: Round) -> Iterator[tuple[int, dict[tuple[int, str], str | None]]]:
    """Stream every ballot of the round (stratum, answers), ordered by its random key."""
    for stratum, answers in stored_ballots(rnd):
        yield stratum, {(subject, item): grade for subject, item, _, grade in answers}


def _raw(wb: Any, rnd: Round, result: TallyResult) -> None:
    columns: list[tuple[SubjectResult, str]] = []
    for s in result.subjects:
        columns.append((s, OVERALL))
        if s.form.per_item:
            columns.extend((s, item.code) for item in s.form.items)
    names = [s.name if item == OVERALL else f"{s.name}·第{item}项" for s, item in columns]
    sheet = Sheet(
        wb, "原始选票", widths=[8, 14, *([12] * len(columns))], page_title=_page_title(rnd)
    )
    sheet.header(["序号", "测评人员类别", *names])
    strata = raw_stratum_labels(result)
    forms = {s.subject_id: s.form for s in result.subjects}
    for number, (stratum, answers) in enumerate(raw_ballots(rnd), 1):
        values: list[Any] = [number, strata.get(stratum, SUPPRESSED)]
        for s, item in columns:
            key = (s.subject_id, item)
            if key not in answers:
                values.append("")
                continue
            grade = answers[key]
            try:
                values.append(forms[s.subject_id].label(grade))
            except KeyError:
                values.append(f"（无效等次 {grade}）")
        sheet.row(values)


# Pages, workbooks, feedback sheets and the archive all read the result sealed at close.
SOURCE_TEXT = (
    "全部数字取自测评结束时封存的计票结果，不再重新计票；"
    "flask verify 按原始选票重新计票并与封存结果逐项比对。"
)


def _verification(wb: Any, rnd: Round, result: TallyResult, seal: str | None) -> None:
    sheet = Sheet(wb, "核验", widths=[18, 100], landscape=False, page_title=_page_title(rnd))
    sheet.header(["项目", "内容"])
    closed = rnd.closed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if rnd.closed_at else ""
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
        ("规范化方法", CANONICAL_DESCRIPTION),
        (
            "核验方法",
            f"在服务器上运行 flask verify {rnd.id}：从数据库中的原始选票重新计算封存码和"
            "全部计票结果，与封存时的记录逐项比对；有任何差异即以非零状态退出并逐项指出。",
        ),
        ("数字来源", SOURCE_TEXT),
        ("加权", weighting_text(result)),
        ("结果有效性", validity_text(result)),
        ("小组抑制", suppression_text(result)),
        ("计算规则", rules_text()),
        (
            "原始选票",
            "“原始选票”表按选票的随机编号顺序列出每一张选票（与投票先后无关），可据此独立"
            "复核“汇总”的全部数字；所属类别选票少于最小分组人数的，类别显示为“—”。",
        ),
        ("生成时间", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
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


def _charts(wb: Any, result: TallyResult, images: list[tuple[str, bytes]]) -> None:
    sheet = Sheet(wb, "图表", widths=[12] * 12, landscape=False, freeze=None)
    sheet.note(
        "图表（与“汇总”数字相同；"
        + ("加权" if result.weighted else "不加权")
        + ("；测评无效" if not result.valid else "")
        + "）"
    )
    row = 3
    for _, png in images:
        sheet.image(png, f"A{row}", width=760)
        with PILImage.open(io.BytesIO(png)) as img:
            height = img.height * 760 / img.width
        row += int(height / 20) + 2


def write_workbook(
    rnd: Round,
    result: TallyResult,
    out: Path | IO[bytes],
    *,
    images: list[tuple[str, bytes]] | None = None,
) -> None:
    """Write the workbook of SPEC §8 for a closed round (``result``: its sealed result)."""
    wb = new_workbook()
    _summary(wb, rnd, result, rnd.seal)
    _items(wb, rnd, result)
    _strata(wb, rnd, result)
    _turnout(wb, rnd, result)
    _raw(wb, rnd, result)
    _verification(wb, rnd, result, rnd.seal)
    _charts(wb, result, images if images is not None else chart_images(result, rnd.seal))
    wb.save(out)
