"""测评表: ballot forms as data (``ballots/*.toml``), validated into dataclasses.

A form file has the keys ``id``, ``title``, ``subject_kind`` (team | person), ``grades`` (best →
worst: ``key``, ``label``, ``score`` 0–100, ``satisfied``), ``items`` (``code`` + ``text``),
``per_item`` and ``abstain``; optionally ``items_per_round`` (items are set by each round, as for
the integrity form) and ``description``.

The grade rules are not the form's: seed 004 names the grades but sets no thresholds, so the
rules live in rule sets (``ballots/rule-sets/*.toml``, ``evaluation.rule_sets``) that a round
chooses. ``rule_sets.load_graded_forms`` gives each form the default set's rules; a round's snapshot
carries the rules of the round's own set. (A form file may still carry ``rules``: snapshots of
rounds made before rule sets do, and so may a unit's own form.)

A rule names the grade it gives (``grade``) and at most one condition on the share of valid
votes given to some grades (``share_of``: a list of grade keys, or ``"satisfied"``):
``at_least = "1/3"`` or ``below = "2/3"``. The last rule has no condition. First match wins.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from evaluation.errors import FormError

# Short names of the Gansu forms for chart labels and flag titles; other forms use their title.
SHORT_FORM_NAMES = {
    "gansu-team": "领导班子",
    "gansu-principal": "班子正职",
    "gansu-member": "班子成员",
    "gansu-discipline": "纪检监察",
    "gansu-integrity": "廉洁自律",
}

SUBJECT_KINDS = ("team", "person")

# The forms in the order of 004's 测评内容 (二(一)–(五)): 领导班子, 主要负责人 (班子正职),
# 班子成员, 纪检监察, 廉洁自律. Every list of forms follows it (``form_order``); other forms
# (a unit's own) come after, by id.
FORM_ORDER = (
    "gansu-team",
    "gansu-principal",
    "gansu-member",
    "gansu-discipline",
    "gansu-integrity",
)


def form_order(form_id: str) -> tuple[int, str]:
    """Sort key of a form id: 004's order first, then any other form by id."""
    try:
        return (FORM_ORDER.index(form_id), "")
    except ValueError:
        return (len(FORM_ORDER), form_id)


def in_form_order(forms: dict[str, Any]) -> list[tuple[str, Any]]:
    """A ``{form id: form or snapshot}`` mapping's items in ``form_order``."""
    return sorted(forms.items(), key=lambda pair: form_order(pair[0]))


@dataclass(frozen=True)
class Grade:
    """One grade of a scale (优秀, 合格 …)."""

    key: str
    label: str
    score: int
    satisfied: bool


@dataclass(frozen=True)
class Item:
    """One item of content the subject is judged on."""

    code: str
    text: str


@dataclass(frozen=True)
class Rule:
    """Gives ``grade`` when the share of ``share_of`` is ≥ ``at_least`` or < ``below``."""

    grade: str
    share_of: tuple[str, ...] = ()
    at_least: Fraction | None = None
    below: Fraction | None = None

    @property
    def unconditional(self) -> bool:
        """True for the final, catch-all rule."""
        return self.at_least is None and self.below is None


@dataclass(frozen=True)
class BallotForm:
    """A validated form; ``to_dict``/``from_dict`` give the snapshot a round stores."""

    id: str
    title: str
    subject_kind: str
    grades: tuple[Grade, ...]
    items: tuple[Item, ...]
    per_item: bool
    abstain: bool
    rules: tuple[Rule, ...]
    items_per_round: bool = False
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def grade_keys(self) -> tuple[str, ...]:
        """Grade keys, best first."""
        return tuple(g.key for g in self.grades)

    def grade(self, key: str) -> Grade:
        """The grade with this key (KeyError if none)."""
        for g in self.grades:
            if g.key == key:
                return g
        raise KeyError(key)

    def label(self, key: str | None) -> str:
        """Chinese label of a grade key; 弃权 for None."""
        return "弃权" if key is None else self.grade(key).label

    @property
    def best(self) -> Grade:
        """The best grade (优秀 / 好)."""
        return self.grades[0]

    @property
    def worst(self) -> Grade:
        """The worst grade (不合格 / 不称职 / 差)."""
        return self.grades[-1]

    def with_rules(self, rules: tuple[Rule, ...]) -> BallotForm:
        """A copy graded by ``rules`` (those of the round's rule set)."""
        return BallotForm(**{**self._fields(), "rules": tuple(rules)})

    def with_items(self, texts: list[str]) -> BallotForm:
        """A copy whose items are ``texts`` (for forms whose items are set per round)."""
        items = tuple(Item(code=str(i + 1), text=t) for i, t in enumerate(texts))
        return BallotForm(**{**self._fields(), "items": items})

    def _fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, the form of the snapshot stored on a round."""
        data = asdict(self)
        data.pop("source", None)
        data["rules"] = [_rule_to_dict(r) for r in self.rules]
        # JSON-shaped: lists, not tuples (what a JSON column gives back).
        result: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False))
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> BallotForm:
        """Validate a dict (from TOML or a snapshot) into a form; FormError names the key."""
        return _parse(data, source or str(data.get("id", "?")))


def _rule_to_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"grade": rule.grade}
    if rule.share_of:
        out["share_of"] = list(rule.share_of)
    if rule.at_least is not None:
        out["at_least"] = str(rule.at_least)
    if rule.below is not None:
        out["below"] = str(rule.below)
    return out


def parse_fraction(value: Any, where: str) -> Fraction:
    """Parse "1/3", "0.5", 0.5 or 1 into an exact Fraction in [0, 1]; FormError otherwise."""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float):
            # 0.3 written in TOML means three tenths, not the nearest binary float.
            frac = Fraction(repr(value))
        else:
            frac = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise FormError(f"{where}：“{value}”不是有效的比例（应写作 1/3 或 0.5）") from None
    if not 0 <= frac <= 1:
        raise FormError(f"{where}：比例 {value} 应在 0 到 1 之间")
    return frac


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise FormError(f"{where}：缺少键 {key}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormError(f"{where}：键 {key} 的类型不正确")
    return value


def _parse(data: dict[str, Any], source: str) -> BallotForm:
    where = source
    known = {
        "id",
        "title",
        "subject_kind",
        "grades",
        "items",
        "per_item",
        "abstain",
        "rules",
        "items_per_round",
        "description",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise FormError(f"{where}：未知的键 {', '.join(unknown)}")
    form_id = _require(data, "id", str, where).strip()
    if not form_id:
        raise FormError(f"{where}：id 不能为空")
    title = _require(data, "title", str, where)
    kind = _require(data, "subject_kind", str, where)
    if kind not in SUBJECT_KINDS:
        raise FormError(f"{where}：subject_kind 应为 team 或 person，而不是“{kind}”")

    raw_grades = _require(data, "grades", list, where)
    if len(raw_grades) < 2:
        raise FormError(f"{where}：grades 至少需要两个等次")
    grades: list[Grade] = []
    for i, g in enumerate(raw_grades, 1):
        gw = f"{where} grades 第{i}项"
        if not isinstance(g, dict):
            raise FormError(f"{gw}：应为表（key、label、score、satisfied）")
        score = _require(g, "score", int, gw)
        if not 0 <= score <= 100:
            raise FormError(f"{gw}：score 应在 0 到 100 之间")
        grades.append(
            Grade(
                key=_require(g, "key", str, gw),
                label=_require(g, "label", str, gw),
                score=score,
                satisfied=_require(g, "satisfied", bool, gw),
            )
        )
    keys = [g.key for g in grades]
    if len(set(keys)) != len(keys):
        raise FormError(f"{where}：grades 的 key 有重复")
    if len({g.label for g in grades}) != len(grades):
        raise FormError(f"{where}：grades 的 label 有重复")
    if any(g.label == "弃权" for g in grades):
        raise FormError(f"{where}：“弃权”不是等次，请用 abstain = true")

    raw_items = data.get("items", [])
    if not isinstance(raw_items, list):
        raise FormError(f"{where}：items 应为列表")
    items: list[Item] = []
    for i, it in enumerate(raw_items, 1):
        iw = f"{where} items 第{i}项"
        if not isinstance(it, dict):
            raise FormError(f"{iw}：应为表（code、text）")
        items.append(
            Item(code=str(_require(it, "code", (str, int), iw)), text=_require(it, "text", str, iw))
        )
    if len({it.code for it in items}) != len(items):
        raise FormError(f"{where}：items 的 code 有重复")
    items_per_round = data.get("items_per_round", False)
    if not isinstance(items_per_round, bool):
        raise FormError(f"{where}：items_per_round 应为 true 或 false")
    if not items and not items_per_round:
        raise FormError(f"{where}：items 不能为空（或设置 items_per_round = true）")

    per_item = _require(data, "per_item", bool, where)
    abstain = _require(data, "abstain", bool, where)

    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise FormError(f"{where}：rules 应为列表")
    rules = parse_rules(raw_rules, tuple(grades), where) if raw_rules else ()

    description = data.get("description", "")
    if not isinstance(description, str):
        raise FormError(f"{where}：description 应为文本")

    return BallotForm(
        id=form_id,
        title=title,
        subject_kind=kind,
        grades=tuple(grades),
        items=tuple(items),
        per_item=per_item,
        abstain=abstain,
        rules=rules,
        items_per_round=items_per_round,
        description=description,
        source=source,
    )


def parse_rules(raw_rules: list[Any], grades: tuple[Grade, ...], where: str) -> tuple[Rule, ...]:
    """Validate a list of grade rules for a scale; FormError names the rule and the key."""
    keys = [g.key for g in grades]
    if not raw_rules:
        raise FormError(f"{where}：rules 不能为空")
    rules: list[Rule] = []
    for i, r in enumerate(raw_rules, 1):
        rw = f"{where} rules 第{i}条"
        if not isinstance(r, dict):
            raise FormError(f"{rw}：应为表")
        extra = sorted(set(r) - {"grade", "share_of", "at_least", "below"})
        if extra:
            raise FormError(f"{rw}：未知的键 {', '.join(extra)}")
        grade = _require(r, "grade", str, rw)
        if grade not in keys:
            raise FormError(f"{rw}：grade “{grade}”不在 grades 中")
        at_least = parse_fraction(r["at_least"], f"{rw} at_least") if "at_least" in r else None
        below = parse_fraction(r["below"], f"{rw} below") if "below" in r else None
        if at_least is not None and below is not None:
            raise FormError(f"{rw}：at_least 与 below 只能写一个")
        share_of: tuple[str, ...] = ()
        if at_least is not None or below is not None:
            raw_share = r.get("share_of")
            if raw_share == "satisfied":
                share_of = tuple(g.key for g in grades if g.satisfied)
            elif (
                isinstance(raw_share, list)
                and raw_share
                and all(isinstance(k, str) for k in raw_share)
            ):
                for k in raw_share:
                    if k not in keys:
                        raise FormError(f"{rw}：share_of 中的“{k}”不在 grades 中")
                share_of = tuple(raw_share)
            else:
                raise FormError(f'{rw}：share_of 应为等次 key 的列表或 "satisfied"')
        elif "share_of" in r:
            raise FormError(f"{rw}：share_of 需要 at_least 或 below")
        rules.append(Rule(grade=grade, share_of=share_of, at_least=at_least, below=below))
    if not rules[-1].unconditional:
        raise FormError(f"{where}：最后一条 rule 必须没有条件（兜底等次）")
    if any(r.unconditional for r in rules[:-1]):
        raise FormError(f"{where}：只有最后一条 rule 可以没有条件")
    return tuple(rules)


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A rule as the plain dict of a file or a snapshot."""
    return _rule_to_dict(rule)


def load_form_file(path: Path) -> BallotForm:
    """Read and validate one form file; FormError names the file and the key."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise FormError(f"{path.name}：TOML 格式错误（{exc}）") from None
    form = _parse(data, path.name)
    if form.id != path.stem:
        raise FormError(f"{path.name}：id “{form.id}”应与文件名 {path.stem} 一致")
    return form


def load_forms(directory: str | Path) -> dict[str, BallotForm]:
    """Load every ``*.toml`` form in ``directory`` (refusing the set if any file is bad), in
    ``form_order``.

    The forms carry no grade rules (unless a file has its own): those come from a rule set,
    ``evaluation.rule_sets.load_graded_forms`` gives the forms with the default set's rules.
    """
    forms: dict[str, BallotForm] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        form = load_form_file(path)
        forms[form.id] = form
    return dict(in_form_order(forms))


def round_form(round_forms: dict[str, Any], form_id: str) -> BallotForm:
    """The snapshot of ``form_id`` stored on a round."""
    return BallotForm.from_dict(round_forms[form_id])
