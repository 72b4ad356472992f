"""等次规则集: the grading rules a round chooses, as data (SPEC §4). Pure: no database.

Seed 004 names each form's grades (优秀 / 合格 / 不合格 …) but never says what share of votes
gives which grade, nor the minimum turnout: those are each unit's own. So they live in rule-set
files beside the forms, ``ballots/rule-sets/<id>.toml``::

    id = "default"
    name = "本系统默认规则（可修改）"
    source = "本系统默认规则，非004原文……"     # true: where these thresholds come from
    min_turnout = "2/3"

    [forms.gansu-team]
    rules = [
      { grade = "unqualified", share_of = ["unqualified"], at_least = "1/3" },
      { grade = "excellent", share_of = ["excellent"], at_least = "1/2" },
      { grade = "qualified" },
    ]

Rules are those of ``evaluation.ballot_forms`` (first match wins; the last has no condition),
validated against the grades of the form they are for. A round snapshots its set
(``RuleSet.to_dict``) when it is created, may change set or edit thresholds while in draft, and
keeps the snapshot frozen from open on; the rules are also copied into the round's form
snapshots, so the tally reads them from the forms as always.

Shipped: ``default`` (本系统默认规则) and ``satisfaction`` (按测评满意率确定等次, 000 §四,
thresholds set by the unit).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from evaluation.ballot_forms import (
    BallotForm,
    Rule,
    load_forms,
    parse_fraction,
    parse_rules,
    rule_to_dict,
)
from evaluation.errors import FormError

DEFAULT_ID = "default"
RULE_SETS_DIR = "rule-sets"


@dataclass(frozen=True)
class RuleSet:
    """A named, sourced set of grade rules per form and a minimum turnout."""

    id: str
    name: str
    source: str
    min_turnout: Fraction
    rules: Mapping[str, tuple[Rule, ...]]
    # True once a round changed a threshold of the shipped set (outputs say so).
    edited: bool = False
    description: str = field(default="", compare=False)

    @property
    def title(self) -> str:
        """The name, marked when this round changed its thresholds."""
        return f"{self.name}（本次测评修改了比例）" if self.edited else self.name

    def covers(self, form_id: str) -> bool:
        """True when the set has rules for this form."""
        return form_id in self.rules

    def apply(self, form: BallotForm) -> BallotForm:
        """The form graded by this set's rules (FormError when the set has none for it)."""
        if form.id not in self.rules:
            raise FormError(
                f"规则集“{self.name}”没有测评表“{form.title}”（{form.id}）的等次规则；"
                "请换用其他规则集，或在规则集文件中补充"
            )
        return form.with_rules(self.rules[form.id])

    def with_threshold(self, form_id: str, index: int, value: Fraction) -> RuleSet:
        """A copy with rule ``index`` of ``form_id`` given a new threshold (same direction)."""
        rules = list(self.rules[form_id])
        rule = rules[index]
        if rule.unconditional:
            raise FormError("兜底等次没有比例")
        if rule.at_least is not None:
            rules[index] = replace(rule, at_least=value)
        else:
            rules[index] = replace(rule, below=value)
        return replace(self, rules={**self.rules, form_id: tuple(rules)}, edited=True)

    def to_dict(self) -> dict[str, Any]:
        """The snapshot stored on a round (JSON-shaped)."""
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "min_turnout": str(self.min_turnout),
            "edited": self.edited,
            "forms": {fid: [rule_to_dict(r) for r in rules] for fid, rules in self.rules.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Read a round's snapshot back (the rules were validated when it was made)."""
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            source=str(data.get("source", "")),
            min_turnout=Fraction(str(data.get("min_turnout", "2/3"))),
            rules={
                fid: tuple(_rule_from_snapshot(r) for r in rules)
                for fid, rules in dict(data.get("forms", {})).items()
            },
            edited=bool(data.get("edited", False)),
            description=str(data.get("description", "")),
        )


def _rule_from_snapshot(data: Mapping[str, Any]) -> Rule:
    share = data.get("share_of", ())
    return Rule(
        grade=str(data["grade"]),
        share_of=tuple(share) if isinstance(share, list | tuple) else (),
        at_least=Fraction(data["at_least"]) if data.get("at_least") is not None else None,
        below=Fraction(data["below"]) if data.get("below") is not None else None,
    )


# --- files -------------------------------------------------------------------------------------


def parse_rule_set(data: Mapping[str, Any], forms: Mapping[str, BallotForm], where: str) -> RuleSet:
    """Validate a rule-set file's contents against the forms' grades; FormError names the key."""
    known = {"id", "name", "source", "min_turnout", "description", "forms"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise FormError(f"{where}：未知的键 {', '.join(unknown)}")
    values: dict[str, str] = {}
    for key in ("id", "name", "source"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise FormError(f"{where}：缺少 {key}（规则集须写明名称和真实的来源）")
        values[key] = value.strip()
    turnout = parse_fraction(data.get("min_turnout", "2/3"), f"{where} min_turnout")
    raw_forms = data.get("forms")
    if not isinstance(raw_forms, dict) or not raw_forms:
        raise FormError(f"{where}：forms 应列出各测评表的等次规则")
    rules: dict[str, tuple[Rule, ...]] = {}
    for form_id, entry in raw_forms.items():
        fw = f"{where} forms.{form_id}"
        form = forms.get(form_id)
        if form is None:
            raise FormError(f"{fw}：没有这个测评表（ballots/{form_id}.toml）")
        if not isinstance(entry, dict) or not isinstance(entry.get("rules"), list):
            raise FormError(f"{fw}：应写作 rules = [ … ]")
        rules[form_id] = parse_rules(entry["rules"], form.grades, fw)
    description = data.get("description", "")
    return RuleSet(
        id=values["id"],
        name=values["name"],
        source=values["source"],
        min_turnout=turnout,
        rules=rules,
        description=description if isinstance(description, str) else "",
    )


def load_rule_sets(ballots_dir: str | Path) -> dict[str, RuleSet]:
    """Every rule set in ``<ballots_dir>/rule-sets/``, default first; FormError names a bad file."""
    directory = Path(ballots_dir)
    folder = directory / RULE_SETS_DIR
    if not folder.is_dir():
        return {}
    forms = load_forms(directory)
    sets: dict[str, RuleSet] = {}
    for path in sorted(folder.glob("*.toml"), key=lambda p: (p.stem != DEFAULT_ID, p.stem)):
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise FormError(f"{RULE_SETS_DIR}/{path.name}：TOML 格式错误（{exc}）") from None
        rule_set = parse_rule_set(data, forms, f"{RULE_SETS_DIR}/{path.name}")
        if rule_set.id != path.stem:
            raise FormError(f"{path.name}：id “{rule_set.id}”应与文件名 {path.stem} 一致")
        sets[rule_set.id] = rule_set
    return sets


def load_graded_forms(ballots_dir: str | Path) -> dict[str, BallotForm]:
    """The forms of ``ballots_dir``, each graded by the default rule set where it covers it
    (what an organiser chooses from; a round then applies its own set)."""
    forms = load_forms(ballots_dir)
    default = load_rule_sets(ballots_dir).get(DEFAULT_ID)
    if default is None:
        return forms
    return {
        fid: (default.apply(f) if not f.rules and default.covers(fid) else f)
        for fid, f in forms.items()
    }


# --- saying what the rules are -----------------------------------------------------------------


def _share_name(form: BallotForm, share_of: tuple[str, ...]) -> str:
    satisfied = tuple(g.key for g in form.grades if g.satisfied)
    if set(share_of) == set(satisfied):
        labels = "+".join(form.label(k) for k in satisfied)
        return f"满意率（{labels}）"
    if share_of == (form.best.key,) and len(share_of) == 1:
        return f"{form.best.label}票占有效票"
    return "、".join(form.label(k) for k in share_of) + "票占有效票"


def rule_lead(form: BallotForm, rule: Rule) -> str:
    """What a conditional rule compares, before its sign: "不合格：不合格票占有效票"."""
    return f"{form.label(rule.grade)}：{_share_name(form, rule.share_of)}"


def describe_rule(form: BallotForm, rule: Rule) -> str:
    """One rule in words: "不合格：不合格票占有效票 ≥ 1/3（33.3%）"; "其余为合格"."""
    if rule.unconditional:
        return f"其余为{form.label(rule.grade)}"
    value = rule.at_least if rule.at_least is not None else rule.below
    assert value is not None
    sign = "≥" if rule.at_least is not None else "<"
    return f"{rule_lead(form, rule)} {sign} {fraction_words(value)}"


def describe_rules(form: BallotForm) -> str:
    """The form's rules in order, one sentence: "不合格：…；优秀：…；其余为合格"."""
    return "；".join(describe_rule(form, r) for r in form.rules)


def fraction_words(value: Fraction) -> str:
    """1/3 → "1/3（33.3%）"; 9/10 → "90%" (a threshold as typed, exact where it matters)."""
    percent = value * 100
    if percent.denominator == 1:
        return f"{percent.numerator}%"
    return f"{value.numerator}/{value.denominator}（{float(percent):.1f}%）"
