"""报表: the workbook of SPEC §8, and ``flask report`` writing every output of a round.

Sheets: ``汇总`` (one header row, one row per subject, rates as numbers 0–1 in percent format;
in a weighted round the unweighted rates stand beside the weighted ones), ``分项``, ``分类别``
(small strata pooled into "其他类别（含：…）"), ``参测情况``, ``原始选票`` (each subject's answers
as separate lines with their stratum or pool, in an order drawn independently per subject and
item — never a whole ballot; every figure of 汇总 can be recomputed from it, and so can the
seal), ``核验`` (the seal and how to check it) and ``图表``. Everything goes through the one
writer in ``evaluation.spreadsheets``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from PIL import Image as PILImage

from evaluation import audit
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
from evaluation.tally.aggregate import raw_lines
from evaluation.tally.core import (
    OVERALL,
    POOL_NAME,
    Figures,
    StratumCell,
    SubjectResult,
    TallyResult,
    fraction_text,
    percent,
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
    """加权说明: whether and how the figures are weighted."""
    if not result.weighted:
        return "不加权：各比例为有效票中的实际比例。"
    weights = "、".join(
        f"{t.name} {fraction_text(t.weight) if t.weight is not None else '0（未设权重）'}"
        for t in result.turnout
    )
    pooled = (
        f"“{POOL_NAME}”作为一个类别参与加权，权重为其所含类别权重之和，比例按合并后的票数计算；"
        if result.pooling
        else ""
    )
    return (
        f"加权说明：各类别权重为 {weights}。优秀率、满意率、信任率、综合得分、测评等次和排名均按"
        "加权比例计算——先算各类别的比例，再按对该对象投出有效票的类别的权重（重新归一）合并；"
        f"{pooled}票数为实际票数，旁边标“未加权”的比例为实际票数的比例。"
    )


def pooling_text(result: TallyResult) -> str:
    """How small strata are pooled (or, in results sealed before pooling, hidden)."""
    n = result.min_group_size
    if not result.pooling:
        return (
            f"“—”表示该分组的选票少于 {n} 张，为保护测评人匿名不予显示（本活动按旧规则封存）；"
            "各测评对象的总体结果不受影响。"
        )
    return (
        f"小类别合并：某测评对象的选票少于 {n} 张的类别不单独列出，与票数次少的类别合并为"
        f"“{POOL_NAME}”，直到合并后不少于 {n} 张（必要时全部类别合并），并写明所含类别；"
        "逐项结果沿用同一合并。各测评对象的总体结果不合并。"
    )


def pool_notes(result: TallyResult, subject: SubjectResult | None = None) -> list[str]:
    """One line per subject that pools strata, naming them."""
    notes = []
    for s in [subject] if subject is not None else result.subjects:
        pool = s.pool
        if pool is not None:
            notes.append(
                f"测评对象“{s.name}”：{'、'.join(pool.members)} 合并为“{POOL_NAME}”"
                f"（共 {pool.ballots} 张选票）。"
            )
    return notes


def _cell_turnout(result: TallyResult, cell: StratumCell) -> tuple[int, int]:
    ids = set(cell.member_ids) if cell.pooled else {cell.stratum_id}
    rows = [t for t in result.turnout if t.stratum_id in ids]
    return sum(t.used for t in rows), sum(t.issued for t in rows)


def weight_warnings(result: TallyResult, subject: SubjectResult | None = None) -> list[str]:
    """提示 lines: a weighted stratum (or pool) with few valid votes or a low turnout."""
    if not result.weighted:
        return []
    out: list[str] = []
    n = result.min_group_size
    for s in [subject] if subject is not None else result.subjects:
        for c in s.strata:
            if c.weight is None:
                continue
            share = f"在“{s.name}”的加权数字中占 {percent(c.weight)}（{fraction_text(c.weight)}）"
            if c.figures is None:
                out.append(f"提示：“{c.name}”的选票少于 {n} 张，{share}。")
            elif c.figures.valid < n:
                out.append(
                    f"提示：“{c.name}”只有 {c.figures.valid} 张有效票（少于 {n} 张），{share}。"
                )
            used, issued = _cell_turnout(result, c)
            if issued and Fraction(used, issued) < result.min_turnout:
                out.append(
                    f"提示：“{c.name}”参测率 {percent(Fraction(used, issued))}（{used}/{issued}）"
                    f"低于最低参测率 {percent(result.min_turnout)}，{share}。"
                )
    return out


def rules_text() -> str:
    """How the figures are computed."""
    return (
        "各比例均以有效票（不含弃权）为分母，按精确分数计算后显示（三分之一即 1/3，不是 0.333）。"
        "优秀率 = 最好等次票 / 有效票；满意率 = 满意等次票 / 有效票；信任率 = 除最差等次外的票 / "
        "有效票；综合得分 = Σ 等次分值 × 票数 / 有效票。测评等次按测评表规则依次判断；排名按满意率"
        "在同一测评表内并列排名（1、1、3）。"
    )


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
        widths=_widths(labels, [18, 14, 10, 22, 8, 8, 8], [10, 14] if tail else []),
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


def _raw(wb: Any, rnd: Round, result: TallyResult) -> None:
    """原始选票: each subject's answers as lines, never a whole ballot (SPEC §5.5, §8).

    Each (subject, item) block is listed in its own random order, drawn with
    ``secrets.SystemRandom``: nothing in a line's position ties it to a line of another
    subject or item, so no ballot can be put back together from the sheet.
    """
    sheet = Sheet(wb, "原始选票", widths=[22, 10, 26, 12], page_title=_page_title(rnd))
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
    sheet = Sheet(wb, "核验", widths=[18, 100], landscape=False, page_title=_page_title(rnd))
    sheet.header(["项目", "内容"])
    version = seal_version_of(rnd.sealed_result)
    legacy = version == LEGACY_SEAL_VERSION
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
        ("计算规则", rules_text()),
        ("原始选票", raw_sheet_text(result, version)),
        (audit.HEAD_LABEL, str(head)),
        ("审计日志核验", audit.HEAD_METHOD),
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
    audit_head: audit.ChainHead | None = None,
) -> None:
    """Write the workbook of SPEC §8 for a closed round (``result``: its sealed result).

    ``audit_head``: the audit log's head to print in 核验 (by default the current one).
    """
    wb = new_workbook()
    _summary(wb, rnd, result, rnd.seal)
    _items(wb, rnd, result)
    _strata(wb, rnd, result)
    _turnout(wb, rnd, result)
    _raw(wb, rnd, result)
    _verification(wb, rnd, result, rnd.seal, audit_head or audit.chain_head())
    _charts(wb, result, images if images is not None else chart_images(result, rnd.seal))
    wb.save(out)
