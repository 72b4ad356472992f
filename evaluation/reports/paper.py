"""纸质票 in the outputs (issue 16): what every output of a round says about its paper ballots.

The sealed turnout already counts them: a stratum's ``issued`` includes the paper ballots
printed and its ``used`` the paper ballots entered, valid or 废票 (a 废票 counts in turnout but
in no subject's figures). Each output that prints turnout says so, with the same words:

* ``used_note``: "（含纸质票 n 张，其中废票 m 张）" beside a stratum's 实参评;
* ``invalid_rules_text``: "废票认定：空白票 1 张；按弃权计 2 处（多选 2）";
* ``paper_explanation``: how paper ballots and 废票 count;
* ``subject_paper``: the paper of the strata that rate one subject (feedback, archive).

A round without paper ballots gets none of these words: its outputs stay as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from evaluation.models import Round
from evaluation.tally.core import StratumTurnoutResult, TallyResult


def entered(t: StratumTurnoutResult) -> int:
    """Paper ballots of a stratum entered (valid and 废票): those among its 实参评."""
    return t.paper.valid + t.paper.invalid


def with_paper(turnout: Iterable[StratumTurnoutResult]) -> list[StratumTurnoutResult]:
    """The strata that had paper ballots (printed or entered)."""
    return [t for t in turnout if t.paper.any]


def has_paper(result: TallyResult) -> bool:
    """True when any stratum of the round had paper ballots."""
    return bool(with_paper(result.turnout))


def used_note(ballots: int, invalid: int) -> str:
    """ "（含纸质票 n 张，其中废票 m 张）"."""
    return f"（含纸质票 {ballots} 张，其中废票 {invalid} 张）"


def stratum_used_note(t: StratumTurnoutResult) -> str:
    """The note beside a stratum's 实参评: empty without paper."""
    return used_note(entered(t), t.paper.invalid) if t.paper.any else ""


def _summed(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for label, n in pairs:
        if n:
            out[label] = out.get(label, 0) + n
    return out


def invalid_rules_text(
    turnout: Iterable[StratumTurnoutResult], *, abstained_marks: bool = True
) -> str:
    """ "废票认定：空白票 1 张、方框外有标记 1 张；按弃权计 3 处（多选 2 处、未勾选 1 处）。"

    Over the strata given, by rule label; empty when no ballot was void and no mark counted
    弃权 by a rule. ``abstained_marks=False`` leaves out the marks counted 弃权 (they are
    counted per stratum over every subject, so they say nothing about one subject).
    """
    rows = list(turnout)
    invalid = _summed(p for t in rows for p in t.paper.invalid_by_rule)
    abstained = (
        _summed(p for t in rows for p in t.paper.abstained_by_rule) if abstained_marks else {}
    )
    if not invalid and not abstained:
        return ""
    text = "废票认定：" + ("、".join(f"{k} {n} 张" for k, n in invalid.items()) or "无废票")
    if abstained:
        detail = "、".join(f"{k} {n} 处" for k, n in abstained.items())
        text += f"；按弃权计 {sum(abstained.values())} 处（{detail}）"
    return text + "。"


PAPER_EXPLANATION = (
    "纸质票与手机投票合并计票：印制的纸质选票计入发放数，录入的纸质票（含废票）计入实参评和参测率；"
    "有效纸质票与手机选票一样计入各测评对象的票数，废票不计入任何测评对象；"
    "纸质票上按弃权计的项目计入该对象的弃权。"
)


def paper_explanation() -> str:
    """How paper ballots and 废票 count (printed wherever paper figures appear)."""
    return PAPER_EXPLANATION


def round_paper_lines(result: TallyResult) -> list[str]:
    """The lines a round-wide output adds about paper: totals, 废票认定, how they count."""
    strata = with_paper(result.turnout)
    if not strata:
        return []
    ballots = sum(entered(t) for t in strata)
    invalid = sum(t.paper.invalid for t in strata)
    lines = [
        f"纸质票：实参评 {result.used} 人中含纸质票 {ballots} 张，其中废票 {invalid} 张"
        f"（{'、'.join(f'{t.name} {entered(t)} 张、废票 {t.paper.invalid} 张' for t in strata)}）。"
    ]
    rules = invalid_rules_text(strata)
    if rules:
        lines.append(rules)
    lines.append(PAPER_EXPLANATION)
    return lines


# --- one subject: the strata that rate it --------------------------------------------------------


def rater_ids(rnd: Round, subject_id: int) -> set[int]:
    """The ids of the round's strata that rate the subject (issue 16 item 4)."""
    return {st.id for st in rnd.strata if st.rates_all or any(s.id == subject_id for s in st.rated)}


@dataclass(frozen=True)
class SubjectPaper:
    """The paper ballots of the strata that rate one subject."""

    strata: tuple[str, ...]  # the rating strata (all of them, with or without paper)
    all_strata: bool  # True when every stratum of the round rates the subject
    used: int  # 实参评 of those strata (phone and paper)
    ballots: int  # paper ballots entered in them, valid and 废票
    invalid: int  # 废票
    invalid_by_rule: dict[str, int]
    rules: str  # 废票认定 line ("" when none)

    def line(self) -> str:
        """ "实参评 43 人，含纸质票 10 张，其中废票 1 张；废票不计入任何测评对象的票数。" """
        who = "" if self.all_strata else f"评价本对象的类别（{'、'.join(self.strata)}）"
        text = (
            f"{who}实参评 {self.used} 人，含纸质票 {self.ballots} 张，其中废票 {self.invalid} 张"
            "；废票计入参测率，不计入任何测评对象的票数。"
        )
        return text + (self.rules or "")

    def to_json(self) -> dict[str, object]:
        """What an archive entry keeps (``figures["paper"]``)."""
        return {
            "strata": list(self.strata),
            "used": self.used,
            "ballots": self.ballots,
            "invalid": self.invalid,
            "invalid_by_rule": dict(self.invalid_by_rule),
        }


def subject_paper(result: TallyResult, raters: set[int] | None) -> SubjectPaper | None:
    """The paper of the strata in ``raters`` (None: every stratum); None when they had none."""
    strata = [t for t in result.turnout if raters is None or t.stratum_id in raters]
    paper = with_paper(strata)
    if not paper:
        return None
    return SubjectPaper(
        strata=tuple(t.name for t in strata),
        all_strata=len(strata) == len(result.turnout),
        used=sum(t.used for t in strata),
        ballots=sum(entered(t) for t in paper),
        invalid=sum(t.paper.invalid for t in paper),
        invalid_by_rule=_summed(p for t in paper for p in t.paper.invalid_by_rule),
        rules=invalid_rules_text(paper, abstained_marks=False),
    )
