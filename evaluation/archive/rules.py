"""责任追究规则: the accountability rules over the integrity archive (SPEC §9). Pure: no database.

Three rules, with the defaults of the seeds:

* **integrity** (000 §五 第三): a cadre whose 廉洁自律 form (``gansu-integrity``) has a 满意率 below
  1/3 in a year → 基本称职 (annual review); two consecutive years → 不称职; three → 警示训诫 /
  组织处理 / 纪律处分.
* **team** (000 §五 其次): a unit whose leadership team (``gansu-team``) is graded 不合格 in a
  year → 黄牌管理; two consecutive years → 警示训诫谈话 for the principal; three → 党政纪处理 /
  引咎辞职.
* **trust** (004 §五.3): a cadre whose 信任率 on a person form is below 1/2 in a year → a
  责任追究 review. The seed defers the figure to a provincial rule we do not have; 1/2 (a
  majority of trust votes) is our default and is configurable.

Which result a year counts by: the subject's **latest valid** archived round of that year
(latest by the time the round was closed, then by round id). Rounds marked 无效 (turnout below
the minimum) never count. A year with no counting result — no round, or only invalid ones —
breaks a streak, and so does a counting result that does not meet the condition (including one
with no valid votes, which has no rate).

Every comparison is between exact fractions: 1/3 means exactly one third.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from functools import cached_property
from typing import Any

from evaluation.ballot_forms import SHORT_FORM_NAMES

INTEGRITY = "integrity"
TEAM = "team"
TRUST = "trust"

RULE_NAMES = {INTEGRITY: "廉洁自律满意率", TEAM: "领导班子测评等次", TRUST: "信任率"}

# (kind, id): ("person", person id) or ("unit", unit id).
SubjectKey = tuple[str, int]


class RuleConfigError(ValueError):
    """A rule setting in the configuration is malformed; the message says which, in Chinese."""


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
    """The rules' settings; the defaults are those of SPEC §9."""

    integrity_forms: tuple[str, ...] = ("gansu-integrity",)
    integrity_below: Fraction = Fraction(1, 3)
    integrity_steps: tuple[Step, ...] = INTEGRITY_STEPS
    team_forms: tuple[str, ...] = ("gansu-team",)
    team_grade: str = "不合格"
    team_steps: tuple[Step, ...] = TEAM_STEPS
    trust_forms: tuple[str, ...] = ("gansu-principal", "gansu-member", "gansu-integrity")
    trust_below: Fraction = Fraction(1, 2)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> RuleConfig:
        """Build from app config keys ``ARCHIVE_*`` (missing keys keep the defaults)."""
        default = cls()
        return cls(
            integrity_forms=_forms(config, "ARCHIVE_INTEGRITY_FORMS", default.integrity_forms),
            integrity_below=_share(config, "ARCHIVE_INTEGRITY_BELOW", default.integrity_below),
            integrity_steps=_steps(config, "ARCHIVE_INTEGRITY_YEARS", default.integrity_steps),
            team_forms=_forms(config, "ARCHIVE_TEAM_FORMS", default.team_forms),
            team_grade=str(config.get("ARCHIVE_TEAM_GRADE") or default.team_grade).strip(),
            team_steps=_steps(config, "ARCHIVE_TEAM_YEARS", default.team_steps),
            trust_forms=_forms(config, "ARCHIVE_TRUST_FORMS", default.trust_forms),
            trust_below=_share(config, "ARCHIVE_TRUST_BELOW", default.trust_below),
        )


def _forms(config: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = config.get(key)
    if value is None or value == "":
        return default
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    forms = tuple(str(p).strip() for p in parts if str(p).strip())
    if not forms:
        raise RuleConfigError(f"配置 {key} 应为以逗号分隔的测评表 id，如 gansu-integrity")
    return forms


def _share(config: Mapping[str, Any], key: str, default: Fraction) -> Fraction:
    value = config.get(key)
    if value is None or value == "":
        return default
    try:
        share = Fraction(repr(value)) if isinstance(value, float) else Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise RuleConfigError(f"配置 {key}=“{value}”不是有效的比例（应写作 1/3 或 0.5）") from None
    if not 0 < share <= 1:
        raise RuleConfigError(f"配置 {key}=“{value}”应大于 0 且不超过 1")
    return share


def _steps(config: Mapping[str, Any], key: str, default: tuple[Step, ...]) -> tuple[Step, ...]:
    value = config.get(key)
    if value is None or value == "":
        return default
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    try:
        years = [int(str(p).strip()) for p in parts]
    except ValueError:
        raise RuleConfigError(f"配置 {key}=“{value}”应为逗号分隔的年数，如 1,2,3") from None
    if len(years) != len(default):
        raise RuleConfigError(
            f"配置 {key} 应给出 {len(default)} 个年数（依次对应："
            + "、".join(s.label for s in default)
            + "）"
        )
    if years[0] < 1 or any(b <= a for a, b in zip(years, years[1:], strict=False)):
        raise RuleConfigError(f"配置 {key}=“{value}”的年数应从 1 起且逐级递增")
    return tuple(Step(y, s.label, s.action) for y, s in zip(years, default, strict=True))


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

    @cached_property
    def order(self) -> tuple[str, int, int]:
        """Later rounds sort last: by close time, then round id, then entry id."""
        when = self.closed_at.strftime("%Y-%m-%dT%H:%M:%S.%f") if self.closed_at else ""
        return (when, self.round_id, self.entry_id)


@dataclass(frozen=True)
class Flag:
    """预警: a rule met by a subject in a year, with the consequence the rules prescribe."""

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


def _tracks(records: Iterable[Record], config: RuleConfig) -> dict[Track, list[Record]]:
    tracks: dict[Track, list[Record]] = defaultdict(list)
    for rec in records:
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


def evaluate(
    records: Iterable[Record],
    config: RuleConfig | None = None,
    form_titles: Mapping[str, str] | None = None,
) -> list[Flag]:
    """Every flag the rules raise over ``records``, by subject, rule and year."""
    config = config or RuleConfig()
    titles = form_titles or {}
    flags: list[Flag] = []
    for track, recs in _tracks(records, config).items():
        counted = counting_records(recs)
        for year in sorted(counted):
            if not _meets(track, counted[year], config):
                continue
            streak = 1
            while (year - streak) in counted and _meets(track, counted[year - streak], config):
                streak += 1
            if track.rule == TRUST:
                step: tuple[int, Step] | None = (1, TRUST_STEP)
            else:
                ladder = config.integrity_steps if track.rule == INTEGRITY else config.team_steps
                step = _step_for(streak, ladder)
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
                        config,
                        SHORT_FORM_NAMES.get(rec.form_id) or titles.get(rec.form_id, rec.form_id),
                    ),
                    form_id=rec.form_id,
                    entry_ids=tuple(counted[y].entry_id for y in years),
                )
            )
    flags.sort(key=lambda f: (f.subject, f.year, f.rule, f.form_id))
    return flags


def latest_years(
    records: Iterable[Record], config: RuleConfig | None = None
) -> dict[SubjectKey, int]:
    """Each subject's most recent year with a counting result under any rule."""
    config = config or RuleConfig()
    latest: dict[SubjectKey, int] = {}
    for track, recs in _tracks(records, config).items():
        counted = counting_records(recs)
        if counted:
            latest[track.subject] = max(latest.get(track.subject, 0), max(counted))
    return latest


def is_current(flag: Flag, latest: Mapping[SubjectKey, int]) -> bool:
    """True when ``flag`` was raised in its subject's most recent counting year (in force)."""
    return latest.get(flag.subject) == flag.year


def current_flags(
    records: Iterable[Record],
    config: RuleConfig | None = None,
    form_titles: Mapping[str, str] | None = None,
) -> list[Flag]:
    """Flags raised in each subject's most recent counting year (what is still in force)."""
    records = list(records)
    latest = latest_years(records, config)
    return [f for f in evaluate(records, config, form_titles) if is_current(f, latest)]


def counted_entry_ids(records: Iterable[Record], config: RuleConfig | None = None) -> set[int]:
    """Ids of the entries some rule counts (the rest are invalid or superseded that year)."""
    config = config or RuleConfig()
    ids: set[int] = set()
    for recs in _tracks(records, config).values():
        ids.update(r.entry_id for r in counting_records(recs).values())
    return ids
