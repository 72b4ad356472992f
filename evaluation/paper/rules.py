"""废票规则 as data (``BALLOTS_DIR/paper/invalid-ballots.toml``): what a paper mark means.

Two scopes: a rule about the whole ballot (空白票, marks outside the boxes) makes it invalid;
a rule about one question (a subject's or an item's grade: none ticked, more than one) counts
that question as 弃权 or makes the whole ballot invalid. Nothing makes one question alone
invalid: a phone ballot never holds such an answer, so storing one would tell paper ballots
from phone ballots (SPEC §5.1). Each rule has the keystroke a 计票员 types for it.

A pure core: the file is read and checked here, and ``interpret`` turns the keystrokes of one
ballot into what the box stores, or into the rule that voids it.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.errors import FormError

FILE_NAME = "paper/invalid-ballots.toml"
SCOPES = ("ballot", "question")
EFFECTS = ("invalid", "abstain")
ABSTAIN_STROKE = "0"
DIGITS = "0123456789"


def normalise_stroke(text: str | None) -> str:
    """A keystroke as compared and stored: full-width forms folded (a Chinese input method in
    全角 mode types "１" or "＊"), spaces dropped, lower case."""
    return unicodedata.normalize("NFKC", text or "").strip().lower()


def is_digit_stroke(stroke: str) -> bool:
    """True for one ASCII digit (not "²", "01" or "١")."""
    return len(stroke) == 1 and stroke in DIGITS


@dataclass(frozen=True)
class InvalidRule:
    """One 废票 rule."""

    key: str
    label: str
    description: str
    scope: str  # "ballot" | "question"
    effect: str  # "invalid" | "abstain"
    stroke: str

    @property
    def voids_ballot(self) -> bool:
        """True when the rule makes the whole ballot invalid."""
        return self.effect == "invalid"


@dataclass(frozen=True)
class InvalidRules:
    """The rules of the file, with its name and source."""

    name: str
    source: str
    rules: tuple[InvalidRule, ...]

    def of_scope(self, scope: str) -> tuple[InvalidRule, ...]:
        """The rules about a whole ballot ("ballot") or one question ("question")."""
        return tuple(r for r in self.rules if r.scope == scope)

    def by_key(self, key: str) -> InvalidRule | None:
        """The rule with this key."""
        return next((r for r in self.rules if r.key == key), None)

    def question_rule(self, stroke: str) -> InvalidRule | None:
        """The question rule typed with ``stroke`` ("" = nothing typed)."""
        return next((r for r in self.of_scope("question") if r.stroke == stroke), None)

    def ballot_rule(self, stroke: str) -> InvalidRule | None:
        """The ballot rule typed with ``stroke`` in the 票面 field (never ""): None = 正常."""
        if not stroke:
            return None
        return next((r for r in self.of_scope("ballot") if r.stroke == stroke), None)

    def blank_rule(self) -> InvalidRule | None:
        """The ballot rule for a ballot with nothing ticked (stroke "" among ballot rules)."""
        return next((r for r in self.of_scope("ballot") if r.stroke == ""), None)

    def labels(self) -> dict[str, str]:
        """key → label, kept with the counts so outputs name rules even if the file changes."""
        return {r.key: r.label for r in self.rules}


def _text(data: dict[str, object], key: str, where: str, *, empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise FormError(f"{where}：缺少“{key}”或不是文字")
    return value.strip()


def parse_rules(data: dict[str, object], where: str) -> InvalidRules:
    """Check a parsed file; FormError names the file and the rule at fault."""
    raw = data.get("rule")
    if not isinstance(raw, list) or not raw:
        raise FormError(f"{where}：没有 [[rule]]")
    rules: list[InvalidRule] = []
    for index, entry in enumerate(raw, 1):
        at = f"{where} 第 {index} 条规则"
        if not isinstance(entry, dict):
            raise FormError(f"{at}：格式不对")
        rule = InvalidRule(
            key=_text(entry, "key", at),
            label=_text(entry, "label", at),
            description=_text(entry, "description", at, empty=True),
            scope=_text(entry, "scope", at),
            effect=_text(entry, "effect", at),
            stroke=normalise_stroke(_text(entry, "stroke", at, empty=True)),
        )
        if rule.scope not in SCOPES:
            raise FormError(f"{at}：scope 应为 ballot 或 question")
        if rule.effect not in EFFECTS or (rule.scope == "ballot" and rule.effect != "invalid"):
            raise FormError(
                f"{at}：effect 应为 invalid（整张作废）"
                + ("" if rule.scope == "ballot" else " 或 abstain（按弃权计）")
            )
        if any(ch.isdigit() for ch in rule.stroke) or len(rule.stroke) > 1:
            raise FormError(f"{at}：stroke 应为一个非数字的键（数字用于等次），或空字符串")
        rules.append(rule)
    keys = [r.key for r in rules]
    if len(set(keys)) != len(keys):
        raise FormError(f"{where}：规则的 key 有重复")
    for scope in SCOPES:
        strokes = [r.stroke for r in rules if r.scope == scope]
        if len(set(strokes)) != len(strokes):
            raise FormError(f"{where}：同一范围（{scope}）内两条规则用了同一个键")
    if not any(r.scope == "question" and r.stroke == "" for r in rules):
        raise FormError(f"{where}：需要一条 stroke 为空的 question 规则（未勾选时怎么算）")
    return InvalidRules(
        name=_text(data, "name", where),
        source=_text(data, "source", where),
        rules=tuple(rules),
    )


def load_rules(ballots_dir: str | Path) -> InvalidRules:
    """The 废票 rules of ``BALLOTS_DIR``; FormError when the file is missing or wrong."""
    path = Path(ballots_dir) / FILE_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormError(f"缺少废票规则文件 {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormError(f"{FILE_NAME}：不是有效的 TOML（{exc}）") from None
    return parse_rules(data, FILE_NAME)


# --- one ballot ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interpreted:
    """What one entered paper ballot comes to.

    ``invalid``: the rule that voids it (None: valid). ``grades``: per question, the grade key
    or None (弃权), in the order given; ``abstained``: rule key → questions counted 弃权 by it.
    """

    invalid: InvalidRule | None
    grades: tuple[str | None, ...]
    abstained: dict[str, int]


def check_stroke(stroke: str, grade_count: int, rules: InvalidRules) -> str | None:
    """Why ``stroke`` is not a valid keystroke for a question with ``grade_count`` grades."""
    if stroke == ABSTAIN_STROKE:
        return None
    if is_digit_stroke(stroke):
        return None if 1 <= int(stroke) <= grade_count else f"等次只有 1 至 {grade_count}"
    if any(ch.isdigit() for ch in stroke):
        return f"每栏只输入一个键（等次为 1 至 {grade_count}）"
    if rules.question_rule(stroke) is None:
        return f"不认识的键“{stroke}”"
    return None


def interpret(
    mark: str,
    strokes: Sequence[str],
    grade_keys: Sequence[Sequence[str]],
    rules: InvalidRules,
    abstain: Sequence[bool] | None = None,
) -> Interpreted:
    """Apply the rules to one ballot: ``mark`` is the 票面 stroke ("" = nothing wrong),
    ``strokes`` one per question, ``grade_keys`` the grades of each question (best first),
    ``abstain`` whether each question has a 弃权 box (None: all have).

    Digits pick a grade (1 = the first), ``0`` is the 弃权 box; any other stroke is a rule.
    A rule counted 按弃权计 on a question without 弃权 voids the whole ballot: a phone
    ballot cannot leave such a question unanswered, so storing it would mark the ballot as
    paper.
    """
    if abstain is None:
        abstain = [True] * len(grade_keys)
    ballot_rule = rules.ballot_rule(mark)
    if mark and ballot_rule is None:
        raise ValueError(f"unknown ballot stroke {mark!r}")
    if ballot_rule is not None:
        return Interpreted(ballot_rule, (), {})
    blank = rules.blank_rule()
    if blank is not None and all(s == "" for s in strokes):
        return Interpreted(blank, (), {})
    grades: list[str | None] = []
    abstained: dict[str, int] = {}
    for stroke, keys, may_abstain in zip(strokes, grade_keys, abstain, strict=True):
        if stroke == ABSTAIN_STROKE:
            if not may_abstain:
                raise ValueError("this question has no 弃权 box")
            grades.append(None)
        elif is_digit_stroke(stroke):
            grades.append(keys[int(stroke) - 1])
        else:
            rule = rules.question_rule(stroke)
            if rule is None:
                raise ValueError(f"unknown question stroke {stroke!r}")
            if rule.voids_ballot or not may_abstain:
                return Interpreted(rule, (), {})
            grades.append(None)
            abstained[rule.key] = abstained.get(rule.key, 0) + 1
    return Interpreted(None, tuple(grades), abstained)
