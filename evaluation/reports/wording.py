"""What every output of a round says beside its figures (SPEC §4, §8): one wording for the
results page, the workbook, the feedback sheets and the charts.

* ``validity_text``: 有效 / 无效 with the turnout that decides it.
* ``rule_set_lines``: the round's grading rule set — name, true source, and each form's
  thresholds in words — printed by every output.
* ``weighting_text`` (加权说明) and ``weight_warnings`` (提示): wherever weighted rates appear,
  the raw counts and raw shares stand beside them, and a weighted stratum or pool with fewer
  valid votes than the group size, a turnout below the minimum, or a ballot worth many times
  another's is flagged.
* ``pooling_text`` / ``pool_notes``: which small strata were pooled into 其他类别.
* ``rules_text``: how the figures and the rank are computed.
"""

from __future__ import annotations

from fractions import Fraction

from evaluation.ballot_forms import SHORT_FORM_NAMES, BallotForm
from evaluation.rule_sets import RuleSet, describe_rules
from evaluation.tally.core import (
    POOL_NAME,
    StratumCell,
    SubjectResult,
    TallyResult,
    fraction_text,
    percent,
)

# 提示 when one stratum's valid ballot weighs this many times another's in a subject's figures.
BALLOT_WEIGHT_RATIO = 3


def rule_set_lines(rule_set: RuleSet, forms: list[BallotForm]) -> list[str]:
    """The rule set as printed: "等次规则：<name>（来源：…）", then one line per form used."""
    lines = [
        f"等次规则：{rule_set.title}（来源：{rule_set.source}）。最低参测率 "
        f"{fraction_text(rule_set.min_turnout)}。"
    ]
    seen: set[str] = set()
    for form in forms:
        if form.id in seen or not form.rules:
            continue
        seen.add(form.id)
        name = SHORT_FORM_NAMES.get(form.id, form.title)
        lines.append(f"{name}：{describe_rules(form)}。")
    return lines


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
        out.extend(_ballot_weight_warning(s))
    return out


def _ballot_weight_warning(subject: SubjectResult) -> list[str]:
    """提示 when one group's valid ballot counts many times another's in the weighted figures."""
    per_ballot = [
        (c.name, c.weight / c.figures.valid)
        for c in subject.strata
        if c.weight is not None and c.figures is not None and c.figures.valid > 0 and c.weight > 0
    ]
    if len(per_ballot) < 2:
        return []
    heavy = max(per_ballot, key=lambda p: p[1])
    light = min(per_ballot, key=lambda p: p[1])
    ratio = heavy[1] / light[1]
    if ratio < BALLOT_WEIGHT_RATIO:
        return []
    return [
        f"提示：在“{subject.name}”的加权数字中，“{heavy[0]}”的一张有效票相当于“{light[0]}”的 "
        f"{float(ratio):.1f} 张；加权比例可能与票数比例相差较大，请对照旁边的实际票数和未加权比例。"
    ]


def rules_text(result: TallyResult | None = None) -> str:
    """How the figures and the rank are computed."""
    rank = (
        "排名在同一测评表内先按测评等次（好的在前），再按满意率、优秀率，完全相同的并列（1、1、3）；"
        "只有一个测评对象的测评表不排名。"
        if result is None or result.rank_by_grade
        else "排名按满意率在同一测评表内并列排名（1、1、3）（本活动按旧规则封存）。"
    )
    return (
        "各比例均以有效票（不含弃权）为分母，按精确分数计算后显示（三分之一即 1/3，不是 0.333）。"
        "优秀率 = 最好等次票 / 有效票；满意率 = 满意等次票 / 有效票；信任率 = 除最差等次外的票 / "
        "有效票；综合得分 = Σ 等次分值 × 票数 / 有效票。测评等次按本活动选用的等次规则依次判断，"
        f"先满足的为准。{rank}"
    )
