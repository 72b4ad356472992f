"""责任追究规则: the accountability rules over the integrity archive (SPEC §9). Pure: no database.

A rule set (``RuleConfig``) holds three rules; the shipped set ``000-county``
(``ballots/accountability/000-county.toml``, the defaults below) is one county's policy, 000 §五:

* **integrity** (000 §五 第三): a cadre whose 廉洁自律 form (``gansu-integrity``) has a 满意率 below
  1/3 in a year → 基本称职 (annual review); two consecutive years → 不称职; three → 警示训诫 /
  组织处理 / 纪律处分.
* **team** (000 §五 其次): a unit whose leadership team (``gansu-team``) is graded 不合格 in a
  year → 黄牌管理; two consecutive years → 警示训诫谈话 for the principal; three → 党政纪处理 /
  引咎辞职.
* **trust** (004 §五.3): a cadre whose 信任率 on a person form is below 1/2 in a year → a
  责任追究 review. The seed defers the figure to a provincial rule we do not have; 1/2 (a
  majority of trust votes) is this system's default.

A unit may choose another set (``evaluation.archive.accountability``); the flags of a subject
follow the set of the subject's current unit, so ``evaluate`` takes either one set or a
function giving each subject's set. Every flag names its set, the rule's source, the measured
value and the threshold.

Which result a year counts by: the subject's **latest valid** archived round of that year
(latest by the time the round was closed, then by round id). Rounds marked 无效 (turnout below
the minimum) never count. A year with no counting result — no round, or only invalid ones —
breaks a streak, and so does a counting result that does not meet the condition (including one
with no valid votes, which has no rate).

Every comparison is between exact fractions: 1/3 means exactly one third.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from functools import cached_property
from typing import Any

from evaluation.ballot_forms import SHORT_FORM_NAMES, parse_fraction
from evaluation.errors import FormError
from evaluation.rule_sets import fraction_words
from evaluation.tally.core import percent

INTEGRITY = "integrity"
TEAM = "team"
TRUST = "trust"

RULE_NAMES = {INTEGRITY: "廉洁自律满意率", TEAM: "领导班子测评等次", TRUST: "信任率"}

# (kind, id): ("person", person id) or ("unit", unit id).
SubjectKey = tuple[str, int]

DEFAULT_SET_ID = "000-county"
DEFAULT_SET_NAME = "某县责任追究办法（000 §五）"
DEFAULT_SET_SOURCE = (
    "000 §五：一个县（乡镇、部门）的党风廉政建设责任制责任追究规定，仅为示例；"
    "本单位可选用其他规则集"
)


class RuleConfigError(ValueError):
    """A rule set file is malformed; the message names the file and the key, in Chinese."""


@dataclass(frozen=True)
class Step:
    """One rung of a ladder: after ``years`` consecutive years, ``label`` and ``action`` apply."""

    years: int
    label: str
    action: str


INTEGRITY_STEPS = (
    Step(1, "基本称职", "公务员年度考核定为基本称职等次"),
    Step(2, "不称职", "公务员年度考核定为不称职等次"),
    Step(3, "警示训诫/组织处理/纪律处分", "给予警示训诫、组织处理或纪律处分"),
)
TEAM_STEPS = (
    Step(
        1,
        "黄牌管理",
        "实行党风廉政建设工作黄牌管理，当年不予评定综合奖、不予报批文明单位，"
        "主要领导和相关责任人不予提拔任用",
    ),
    Step(
        2,
        "警示训诫谈话",
        "对主要领导进行警示训诫谈话，对相关责任人进行组织调整，"
        "主要领导当年不评定优秀公务员、先进个人和优秀党员",
    ),
    Step(
        3,
        "党政纪处理/引咎辞职",
        "对主要领导、相关责任人给予党政纪处理，责令班子主要领导和相关责任人引咎辞职，或组织免职",
    ),
)
TRUST_STEP = Step(1, "责任追究", "信任票未达到规定要求，按责任追究的有关规定启动责任追究审查")


@dataclass(frozen=True)
class RuleConfig:
    """One accountability rule set; the defaults are the shipped 000 §五 set (SPEC §9)."""

    id: str = DEFAULT_SET_ID
    name: str = DEFAULT_SET_NAME
    source: str = DEFAULT_SET_SOURCE
    integrity_forms: tuple[str, ...] = ("gansu-integrity",)
    integrity_below: Fraction = Fraction(1, 3)
    integrity_steps: tuple[Step, ...] = INTEGRITY_STEPS
    integrity_source: str = "000 §五 第三"
    team_forms: tuple[str, ...] = ("gansu-team",)
    team_grade: str = "不合格"
    team_steps: tuple[Step, ...] = TEAM_STEPS
    team_source: str = "000 §五 其次"
    trust_forms: tuple[str, ...] = ("gansu-principal", "gansu-member", "gansu-integrity")
    trust_below: Fraction = Fraction(1, 2)
    trust_step: Step = TRUST_STEP
    trust_source: str = "004 §五.3（省实施办法未提供，1/2 为本系统默认）"

    @property
    def forms(self) -> set[str]:
        """Every form some rule of the set reads."""
        return set(self.integrity_forms + self.team_forms + self.trust_forms)

    def rule_source(self, rule: str) -> str:
        """Where the rule comes from, e.g. "000 §五 第三"."""
        return {
            INTEGRITY: self.integrity_source,
            TEAM: self.team_source,
            TRUST: self.trust_source,
        }[rule]

    def threshold(self, rule: str) -> str:
        """The rule's condition in words, e.g. "满意率低于 1/3（33.3%）"."""
        if rule == INTEGRITY:
            return f"廉洁自律测评满意率低于 {fraction_words(self.integrity_below)}"
        if rule == TEAM:
            return f"领导班子测评等次为{self.team_grade}"
        return f"信任率低于 {fraction_words(self.trust_below)}"

    def ladder(self, rule: str) -> tuple[Step, ...]:
        """The rule's rungs (trust has one)."""
        if rule == INTEGRITY:
            return self.integrity_steps
        if rule == TEAM:
            return self.team_steps
        return (self.trust_step,)

    def describe(self) -> list[tuple[str, str, str]]:
        """(rule name, condition and rungs in words, source) of each rule, for pages."""
        lines = []
        for rule in (INTEGRITY, TEAM, TRUST):
            rungs = "；".join(
                f"{'当年' if s.years == 1 else f'连续 {s.years} 年'}：{s.label}"
                for s in self.ladder(rule)
            )
            lines.append(
                (RULE_NAMES[rule], f"{self.threshold(rule)}。{rungs}", self.rule_source(rule))
            )
        return lines


# A set for every subject: one set, or a function giving each subject's.
Rules = RuleConfig | Callable[[SubjectKey], RuleConfig] | None


def _resolver(config: Rules) -> Callable[[SubjectKey], RuleConfig]:
    if config is None:
        default = RuleConfig()
        return lambda _subject: default
    if isinstance(config, RuleConfig):
        fixed = config
        return lambda _subject: fixed
    return config


# --- rule set files ----------------------------------------------------------------------------

_TOP_KEYS = {"id", "name", "source", "description", INTEGRITY, TEAM, TRUST}
_SECTION_KEYS = {
    INTEGRITY: {"source", "forms", "below", "steps"},
    TEAM: {"source", "forms", "grade", "steps"},
    TRUST: {"source", "forms", "below", "label", "action"},
}


def parse_rule_set(
    data: Mapping[str, Any],
    where: str,
    form_grades: Mapping[str, tuple[str, ...]] | None = None,
) -> RuleConfig:
    """Validate the contents of an accountability rule set file.

    ``where`` names the file in messages; ``form_grades`` (form id → grade labels), when
    given, checks that the forms exist and that the team grade is one of their grades.
    """
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise RuleConfigError(f"{where}：未知的键 {'、'.join(unknown)}")
    top = {key: _text(data, key, where) for key in ("id", "name", "source")}
    sections = {}
    for rule in (INTEGRITY, TEAM, TRUST):
        section = data.get(rule)
        if not isinstance(section, dict):
            raise RuleConfigError(f"{where}：缺少 [{rule}]（{RULE_NAMES[rule]}规则）")
        extra = sorted(set(section) - _SECTION_KEYS[rule])
        if extra:
            raise RuleConfigError(f"{where}：[{rule}] 中有未知的键 {'、'.join(extra)}")
        sections[rule] = section
    w = {rule: f"{where} [{rule}]" for rule in sections}
    integrity, team, trust = sections[INTEGRITY], sections[TEAM], sections[TRUST]
    team_forms = _forms(team, w[TEAM], form_grades)
    grade = _text(team, "grade", w[TEAM])
    if form_grades is not None:
        for form_id in team_forms:
            if grade not in form_grades[form_id]:
                raise RuleConfigError(
                    f"{w[TEAM]} grade：测评表 {form_id} 没有等次“{grade}”"
                    f"（可选：{'、'.join(form_grades[form_id])}）"
                )
    return RuleConfig(
        id=top["id"],
        name=top["name"],
        source=top["source"],
        integrity_forms=_forms(integrity, w[INTEGRITY], form_grades),
        integrity_below=_share(integrity, w[INTEGRITY]),
        integrity_steps=_steps(integrity, w[INTEGRITY]),
        integrity_source=_text(integrity, "source", w[INTEGRITY]),
        team_forms=team_forms,
        team_grade=grade,
        team_steps=_steps(team, w[TEAM]),
        team_source=_text(team, "source", w[TEAM]),
        trust_forms=_forms(trust, w[TRUST], form_grades),
        trust_below=_share(trust, w[TRUST]),
        trust_step=Step(1, _text(trust, "label", w[TRUST]), _text(trust, "action", w[TRUST])),
        trust_source=_text(trust, "source", w[TRUST]),
    )


def _text(section: Mapping[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        why = "（规则集和每条规则都须写明真实的来源）" if key in ("name", "source") else ""
        raise RuleConfigError(f"{where}：缺少 {key} 或为空{why}")
    return value.strip()


def _forms(
    section: Mapping[str, Any], where: str, form_grades: Mapping[str, tuple[str, ...]] | None
) -> tuple[str, ...]:
    value = section.get("forms")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise RuleConfigError(f'{where} forms：应列出测评表 id，如 ["gansu-integrity"]')
    forms = tuple(v.strip() for v in value)
    if form_grades is not None:
        missing = [f for f in forms if f not in form_grades]
        if missing:
            raise RuleConfigError(f"{where} forms：没有这个测评表 {'、'.join(missing)}")
    return forms


def _share(section: Mapping[str, Any], where: str) -> Fraction:
    value = section.get("below")
    if value is None or isinstance(value, bool):
        raise RuleConfigError(f'{where} below：缺少比例（应写作 "1/3" 或 0.5）')
    try:
        share = parse_fraction(value, f"{where} below")
    except FormError as exc:
        raise RuleConfigError(exc.message) from None
    if share == 0:
        raise RuleConfigError(f"{where} below：“{value}”应大于 0 且不超过 1")
    return share


def _steps(section: Mapping[str, Any], where: str) -> tuple[Step, ...]:
    value = section.get("steps")
    if not isinstance(value, list) or not value:
        raise RuleConfigError(
            f"{where} steps：应列出各级处理，如 {{ years = 1, label = …, action = … }}"
        )
    steps = []
    for i, raw in enumerate(value, 1):
        at = f"{where} steps 第 {i} 项"
        if not isinstance(raw, dict) or set(raw) - {"years", "label", "action"}:
            raise RuleConfigError(f'{at}：应写作 {{ years = 1, label = "…", action = "…" }}')
        years = raw.get("years")
        if not isinstance(years, int) or isinstance(years, bool):
            raise RuleConfigError(f"{at} years：应为连续年数（整数）")
        steps.append(Step(years, _text(raw, "label", at), _text(raw, "action", at)))
    if steps[0].years < 1 or any(
        b.years <= a.years for a, b in zip(steps, steps[1:], strict=False)
    ):
        raise RuleConfigError(f"{where} steps：年数应从 1 起且逐级递增")
    return tuple(steps)


# Sorts before any close time (a record without one is the earliest of its year).
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    """What the rules need from one archive entry."""

    entry_id: int
    subject: SubjectKey
    subject_name: str
    year: int
    form_id: str
    valid_round: bool
    round_id: int
    closed_at: datetime | None
    satisfaction: Fraction | None
    trust: Fraction | None
    grade: str | None
    weighted: bool = False

    @cached_property
    def order(self) -> tuple[bool, datetime, int, int]:
        """Later rounds sort last: by close time (none first), then round id, then entry id."""
        when = self.closed_at
        return (when is not None, when or _NEVER, self.round_id, self.entry_id)


@dataclass(frozen=True)
class Flag:
    """预警: a rule met by a subject in a year, with the consequence the rules prescribe.

    ``measured`` is the value the rule read, year by year ("满意率 25.00%（年度 2024）");
    ``threshold`` the condition; ``rule_set`` / ``rule_set_source`` the set and its source;
    ``source`` where the rule itself comes from ("000 §五 第三").
    """

    rule: str
    subject: SubjectKey
    subject_name: str
    year: int
    years: tuple[int, ...]
    level: int
    label: str
    action: str
    title: str
    form_id: str
    entry_ids: tuple[int, ...] = field(default=())
    measured: str = ""
    threshold: str = ""
    rule_set: str = ""
    rule_set_id: str = ""
    rule_set_source: str = ""
    source: str = ""

    @property
    def streak(self) -> int:
        """Number of consecutive years behind this flag."""
        return len(self.years)

    @property
    def years_text(self) -> str:
        """涉及年度, e.g. "2024、2025"."""
        return "、".join(str(y) for y in self.years)


@dataclass(frozen=True)
class Track:
    """One series judged year by year: a rule applied to a subject (and, for trust, a form)."""

    rule: str
    subject: SubjectKey
    form_id: str


def _tracks(
    records: Iterable[Record], config_for: Callable[[SubjectKey], RuleConfig]
) -> dict[Track, list[Record]]:
    tracks: dict[Track, list[Record]] = defaultdict(list)
    for rec in records:
        config = config_for(rec.subject)
        if rec.form_id in config.integrity_forms and rec.subject[0] == "person":
            tracks[Track(INTEGRITY, rec.subject, "")].append(rec)
        if rec.form_id in config.team_forms and rec.subject[0] == "unit":
            tracks[Track(TEAM, rec.subject, "")].append(rec)
        if rec.form_id in config.trust_forms and rec.subject[0] == "person":
            tracks[Track(TRUST, rec.subject, rec.form_id)].append(rec)
    return tracks


def counting_records(records: Iterable[Record]) -> dict[int, Record]:
    """Year → the record that year counts by: its latest valid round (invalid rounds never)."""
    by_year: dict[int, Record] = {}
    for rec in records:
        if not rec.valid_round:
            continue
        current = by_year.get(rec.year)
        if current is None or rec.order > current.order:
            by_year[rec.year] = rec
    return by_year


def _meets(track: Track, rec: Record, config: RuleConfig) -> bool:
    if track.rule == INTEGRITY:
        return rec.satisfaction is not None and rec.satisfaction < config.integrity_below
    if track.rule == TEAM:
        return rec.grade == config.team_grade
    return rec.trust is not None and rec.trust < config.trust_below


def _step_for(streak: int, steps: tuple[Step, ...]) -> tuple[int, Step] | None:
    reached = [(i + 1, s) for i, s in enumerate(steps) if s.years <= streak]
    return reached[-1] if reached else None


def _title(track: Track, streak: int, config: RuleConfig, form_name: str) -> str:
    years = f"连续 {streak} 年" if streak > 1 else "当年"
    if track.rule == INTEGRITY:
        return f"廉洁自律测评满意率{years}低于 {config.integrity_below}"
    if track.rule == TEAM:
        return f"领导班子测评等次{years}为{config.team_grade}"
    return f"{form_name}测评信任率低于 {config.trust_below}"


def measured_text(rule: str, rec: Record) -> str:
    """The value a rule read from one year's record: "满意率 10.75%（年度 2025）"."""
    weighted = "加权，" if rec.weighted and rule != TEAM else ""
    if rule == INTEGRITY:
        return f"满意率 {percent(rec.satisfaction)}（{weighted}年度 {rec.year}）"
    if rule == TEAM:
        return f"测评等次 {rec.grade or '—'}（年度 {rec.year}）"
    return f"信任率 {percent(rec.trust)}（{weighted}年度 {rec.year}）"


@dataclass(frozen=True)
class Judgement:
    """What the rules make of a set of records, from one pass over them."""

    flags: list[Flag]
    # Each subject's most recent year with a counting result under any rule.
    latest: dict[SubjectKey, int]
    # Ids of the entries some rule counts (the rest are invalid or superseded that year).
    counted: set[int]

    @property
    def current(self) -> list[Flag]:
        """Flags raised in their subject's most recent counting year (still in force)."""
        return [f for f in self.flags if is_current(f, self.latest)]


def judge(
    records: Iterable[Record],
    config: Rules = None,
    form_titles: Mapping[str, str] | None = None,
) -> Judgement:
    """Flags, latest years and counted entries of ``records``, grouping them once."""
    config_for = _resolver(config)
    tracks = _tracks(records, config_for)
    flags: list[Flag] = []
    latest: dict[SubjectKey, int] = {}
    counted_ids: set[int] = set()
    for track, recs in tracks.items():
        counted = counting_records(recs)
        if not counted:
            continue
        latest[track.subject] = max(latest.get(track.subject, 0), max(counted))
        counted_ids.update(r.entry_id for r in counted.values())
        flags += _track_flags(track, counted, config_for(track.subject), form_titles or {})
    flags.sort(key=lambda f: (f.subject, f.year, f.rule, f.form_id))
    return Judgement(flags, latest, counted_ids)


def evaluate(
    records: Iterable[Record],
    config: Rules = None,
    form_titles: Mapping[str, str] | None = None,
) -> list[Flag]:
    """Every flag the rules raise over ``records``, by subject, rule and year.

    ``config``: one set for every subject, or a function giving each subject's set.
    """
    return judge(records, config, form_titles).flags


def _track_flags(
    track: Track, counted: dict[int, Record], rules: RuleConfig, titles: Mapping[str, str]
) -> list[Flag]:
    """The flags of one track, from the record each year counts by."""
    flags: list[Flag] = []
    for year in sorted(counted):
        if not _meets(track, counted[year], rules):
            continue
        streak = 1
        while (year - streak) in counted and _meets(track, counted[year - streak], rules):
            streak += 1
        if track.rule == TRUST:
            step: tuple[int, Step] | None = (1, rules.trust_step)
        else:
            step = _step_for(streak, rules.ladder(track.rule))
        if step is None:
            continue
        level, rung = step
        years = tuple(range(year - streak + 1, year + 1))
        if track.rule == TRUST:
            years = (year,)
        rec = counted[year]
        flags.append(
            Flag(
                rule=track.rule,
                subject=track.subject,
                subject_name=rec.subject_name,
                year=year,
                years=years,
                level=level,
                label=rung.label,
                action=rung.action,
                title=_title(
                    track,
                    len(years),
                    rules,
                    SHORT_FORM_NAMES.get(rec.form_id) or titles.get(rec.form_id, rec.form_id),
                ),
                form_id=rec.form_id,
                entry_ids=tuple(counted[y].entry_id for y in years),
                measured="；".join(measured_text(track.rule, counted[y]) for y in years),
                threshold=rules.threshold(track.rule),
                rule_set=rules.name,
                rule_set_id=rules.id,
                rule_set_source=rules.source,
                source=rules.rule_source(track.rule),
            )
        )
    return flags


def is_current(flag: Flag, latest: Mapping[SubjectKey, int]) -> bool:
    """True when ``flag`` was raised in its subject's most recent counting year (in force)."""
    return latest.get(flag.subject) == flag.year


def current_flags(
    records: Iterable[Record],
    config: Rules = None,
    form_titles: Mapping[str, str] | None = None,
) -> list[Flag]:
    """Flags raised in each subject's most recent counting year (what is still in force)."""
    return judge(records, config, form_titles).current


def counted_entry_ids(records: Iterable[Record], config: Rules = None) -> set[int]:
    """Ids of the entries some rule counts (the rest are invalid or superseded that year)."""
    return judge(records, config).counted
