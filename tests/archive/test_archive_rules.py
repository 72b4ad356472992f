"""The accountability rules over the archive: a pure core, tested without a database."""

from __future__ import annotations

import copy
import itertools
import re
import tomllib
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from evaluation.archive.rules import (
    INTEGRITY,
    TEAM,
    TRUST,
    Record,
    RuleConfig,
    RuleConfigError,
    counted_entry_ids,
    counting_records,
    current_flags,
    evaluate,
    parse_rule_set,
)

_ids = itertools.count(1)
ZHANG = ("person", 1)
CITY = ("unit", 7)


def rec(
    year: int,
    *,
    subject: tuple[str, int] = ZHANG,
    form: str = "gansu-integrity",
    satisfaction: Fraction | None = Fraction(9, 10),
    trust: Fraction | None = Fraction(1),
    grade: str | None = None,
    valid: bool = True,
    month: int = 12,
    round_id: int | None = None,
) -> Record:
    """A record closed on the 1st of ``month`` in ``year``."""
    entry_id = next(_ids)
    return Record(
        entry_id=entry_id,
        subject=subject,
        subject_name="张三" if subject[0] == "person" else "市局领导班子",
        year=year,
        form_id=form,
        valid_round=valid,
        round_id=round_id if round_id is not None else entry_id,
        closed_at=datetime(year, month, 1, tzinfo=UTC),
        satisfaction=satisfaction,
        trust=trust,
        grade=grade,
    )


LOW = Fraction(1, 4)  # below 1/3
OK = Fraction(2, 3)


def only(flags, rule):  # type: ignore[no-untyped-def]
    return [(f.year, f.level, f.label, f.years) for f in flags if f.rule == rule]


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_are_those_of_the_spec() -> None:
    config = RuleConfig()
    assert config.integrity_below == Fraction(1, 3)
    assert [s.years for s in config.integrity_steps] == [1, 2, 3]
    assert [s.label for s in config.integrity_steps] == [
        "基本称职",
        "不称职",
        "警示训诫/组织处理/纪律处分",
    ]
    assert config.team_grade == "不合格"
    assert [s.label for s in config.team_steps] == [
        "黄牌管理",
        "警示训诫谈话",
        "党政纪处理/引咎辞职",
    ]
    assert config.trust_below == Fraction(1, 2)
    assert config.integrity_forms == ("gansu-integrity",)
    assert config.team_forms == ("gansu-team",)


# --- integrity: 满意率 < 1/3 -------------------------------------------------------------------


def test_one_two_three_consecutive_years_climb_the_ladder() -> None:
    flags = evaluate(
        [rec(2024, satisfaction=LOW), rec(2025, satisfaction=LOW), rec(2026, satisfaction=LOW)]
    )
    assert only(flags, INTEGRITY) == [
        (2024, 1, "基本称职", (2024,)),
        (2025, 2, "不称职", (2024, 2025)),
        (2026, 3, "警示训诫/组织处理/纪律处分", (2024, 2025, 2026)),
    ]
    assert flags[1].title == "廉洁自律测评满意率连续 2 年低于 1/3"
    assert flags[0].title == "廉洁自律测评满意率当年低于 1/3"
    assert flags[2].action == "给予警示训诫、组织处理或纪律处分"


def test_a_fourth_year_stays_on_the_top_rung() -> None:
    flags = evaluate([rec(y, satisfaction=LOW) for y in (2023, 2024, 2025, 2026)])
    last = [f for f in flags if f.year == 2026][0]
    assert (last.level, last.years) == (3, (2023, 2024, 2025, 2026))


def test_exactly_one_third_is_not_below_one_third() -> None:
    assert evaluate([rec(2026, satisfaction=Fraction(1, 3))]) == []
    assert evaluate([rec(2026, satisfaction=Fraction(2, 6))]) == []
    # 0.3333 is below one third: exact fractions, not rounded decimals
    assert only(evaluate([rec(2026, satisfaction=Fraction("0.3333"))]), INTEGRITY) == [
        (2026, 1, "基本称职", (2026,))
    ]


def test_a_year_without_any_round_breaks_the_streak() -> None:
    flags = evaluate(
        [rec(2023, satisfaction=LOW), rec(2025, satisfaction=LOW), rec(2026, satisfaction=LOW)]
    )
    assert only(flags, INTEGRITY) == [
        (2023, 1, "基本称职", (2023,)),
        (2025, 1, "基本称职", (2025,)),
        (2026, 2, "不称职", (2025, 2026)),
    ]


def test_a_good_year_breaks_the_streak() -> None:
    flags = evaluate(
        [rec(2024, satisfaction=LOW), rec(2025, satisfaction=OK), rec(2026, satisfaction=LOW)]
    )
    assert only(flags, INTEGRITY) == [
        (2024, 1, "基本称职", (2024,)),
        (2026, 1, "基本称职", (2026,)),
    ]


def test_invalid_rounds_never_count() -> None:
    # 2025 has only an invalid round: the year has no result, so the streak breaks.
    flags = evaluate(
        [
            rec(2024, satisfaction=LOW),
            rec(2025, satisfaction=LOW, valid=False),
            rec(2026, satisfaction=LOW),
        ]
    )
    assert only(flags, INTEGRITY) == [
        (2024, 1, "基本称职", (2024,)),
        (2026, 1, "基本称职", (2026,)),
    ]
    # an invalid round alone raises nothing, even when its figures are low
    assert evaluate([rec(2026, satisfaction=Fraction(0), valid=False)]) == []


def test_an_invalid_later_round_does_not_replace_a_valid_one() -> None:
    records = [
        rec(2026, satisfaction=LOW, month=3),
        rec(2026, satisfaction=OK, month=11, valid=False),
    ]
    assert only(evaluate(records), INTEGRITY) == [(2026, 1, "基本称职", (2026,))]


def test_several_rounds_in_a_year_the_latest_valid_counts() -> None:
    early_low = rec(2026, satisfaction=LOW, month=3)
    late_ok = rec(2026, satisfaction=OK, month=11)
    assert evaluate([early_low, late_ok]) == []
    early_ok = rec(2025, satisfaction=OK, month=3)
    late_low = rec(2025, satisfaction=LOW, month=11)
    assert only(evaluate([late_low, early_ok]), INTEGRITY) == [(2025, 1, "基本称职", (2025,))]
    assert counting_records([early_low, late_ok])[2026] is late_ok


def test_latest_means_latest_closed_not_highest_id() -> None:
    # The round created later (higher id) was closed earlier; the one closed last counts.
    closed_last = rec(2026, satisfaction=LOW, month=12, round_id=1)
    closed_first = rec(2026, satisfaction=OK, month=6, round_id=2)
    assert only(evaluate([closed_last, closed_first]), INTEGRITY) == [
        (2026, 1, "基本称职", (2026,))
    ]


def test_no_valid_votes_has_no_rate_and_breaks_the_streak() -> None:
    flags = evaluate(
        [rec(2024, satisfaction=LOW), rec(2025, satisfaction=None), rec(2026, satisfaction=LOW)]
    )
    assert [f.years for f in flags if f.rule == INTEGRITY] == [(2024,), (2026,)]


def test_only_the_integrity_form_feeds_the_integrity_rule() -> None:
    flags = evaluate([rec(2026, form="gansu-member", satisfaction=LOW)])
    assert only(flags, INTEGRITY) == []


def test_streaks_are_per_person() -> None:
    other = ("person", 2)
    flags = evaluate([rec(2025, satisfaction=LOW), rec(2026, subject=other, satisfaction=LOW)])
    assert {(f.subject, f.level) for f in flags if f.rule == INTEGRITY} == {(ZHANG, 1), (other, 1)}


# --- team graded 不合格 ------------------------------------------------------------------------


def team(year: int, grade: str, **kw) -> Record:  # type: ignore[no-untyped-def]
    return rec(year, subject=CITY, form="gansu-team", grade=grade, **kw)


def test_team_failing_one_two_three_years() -> None:
    flags = evaluate([team(2024, "不合格"), team(2025, "不合格"), team(2026, "不合格")])
    assert only(flags, TEAM) == [
        (2024, 1, "黄牌管理", (2024,)),
        (2025, 2, "警示训诫谈话", (2024, 2025)),
        (2026, 3, "党政纪处理/引咎辞职", (2024, 2025, 2026)),
    ]
    assert "对主要领导进行警示训诫谈话" in flags[1].action
    assert flags[2].title == "领导班子测评等次连续 3 年为不合格"


def test_team_gap_and_pass_break_the_streak() -> None:
    flags = evaluate([team(2023, "不合格"), team(2025, "不合格"), team(2026, "合格")])
    assert only(flags, TEAM) == [(2023, 1, "黄牌管理", (2023,)), (2025, 1, "黄牌管理", (2025,))]


def test_team_invalid_round_and_no_grade_do_not_count() -> None:
    flags = evaluate([team(2025, "不合格", valid=False), team(2026, None)])  # type: ignore[arg-type]
    assert flags == []


def test_discipline_organ_is_not_the_team_rule() -> None:
    assert evaluate([rec(2026, subject=CITY, form="gansu-discipline", grade="不合格")]) == []


# --- trust -------------------------------------------------------------------------------------


def test_trust_below_half_asks_for_a_review_per_form() -> None:
    flags = evaluate(
        [
            rec(2026, form="gansu-principal", trust=Fraction(49, 100)),
            rec(2026, form="gansu-integrity", trust=Fraction(1, 2)),  # exactly 1/2: not below
        ]
    )
    assert [(f.rule, f.form_id, f.label) for f in flags] == [(TRUST, "gansu-principal", "责任追究")]
    assert flags[0].title == "班子正职测评信任率低于 1/2"


def test_trust_rule_ignores_team_forms_and_invalid_rounds() -> None:
    flags = evaluate(
        [
            rec(2026, subject=CITY, form="gansu-team", trust=Fraction(0), grade="合格"),
            rec(2026, form="gansu-member", trust=Fraction(0), valid=False),
        ]
    )
    assert flags == []


# --- current flags -----------------------------------------------------------------------------


def test_current_flags_are_those_of_the_latest_counting_year() -> None:
    history = [rec(2024, satisfaction=LOW), rec(2025, satisfaction=LOW), rec(2026, satisfaction=OK)]
    assert len(evaluate(history)) == 2
    assert current_flags(history) == []
    still = [rec(2025, satisfaction=LOW), rec(2026, satisfaction=LOW)]
    assert [(f.year, f.level) for f in current_flags(still)] == [(2026, 2)]
    # an invalid later round does not lift a flag: the last counting year is still 2026
    still.append(rec(2027, satisfaction=OK, valid=False))
    assert [(f.year, f.level) for f in current_flags(still)] == [(2026, 2)]


def test_an_old_flag_of_another_form_is_not_current_after_a_later_year() -> None:
    records = [
        rec(2024, form="gansu-member", trust=Fraction(1, 3)),
        rec(2025, satisfaction=OK),
        rec(2026, satisfaction=LOW),
    ]
    assert [(f.rule, f.year) for f in evaluate(records)] == [(TRUST, 2024), (INTEGRITY, 2026)]
    assert [(f.rule, f.year) for f in current_flags(records)] == [(INTEGRITY, 2026)]


def test_counted_entries_leave_out_invalid_and_superseded_rounds() -> None:
    early = rec(2026, month=3)
    late = rec(2026, month=10)
    invalid = rec(2026, month=12, valid=False)
    assert counted_entry_ids([early, late, invalid]) == {late.entry_id}


# --- rule set files ----------------------------------------------------------------------------

SHIPPED = Path(__file__).resolve().parents[2] / "ballots" / "accountability" / "000-county.toml"


def shipped_data() -> dict[str, Any]:
    with SHIPPED.open("rb") as fh:
        return tomllib.load(fh)


def test_the_shipped_set_is_the_spec_defaults_with_true_sources() -> None:
    config = parse_rule_set(shipped_data(), "accountability/000-county.toml")
    assert config == RuleConfig()
    assert config.id == "000-county" and config.name == "某县责任追究办法（000 §五）"
    assert config.source.startswith("000 §五：一个县") and "仅为示例" in config.source
    assert config.rule_source(INTEGRITY) == "000 §五 第三"
    assert config.rule_source(TEAM) == "000 §五 其次"
    assert config.rule_source(TRUST) == "004 §五.3（省实施办法未提供，1/2 为本系统默认）"


def test_a_set_file_changes_thresholds_years_and_forms() -> None:
    data = copy.deepcopy(shipped_data())
    data["id"], data["name"], data["source"] = "strict", "从严示例", "测试用，自拟"
    data["integrity"]["below"] = "1/2"
    data["integrity"]["steps"] = [
        {"years": 1, "label": "一", "action": "甲"},
        {"years": 3, "label": "三", "action": "丙"},
        {"years": 5, "label": "五", "action": "戊"},
    ]
    data["team"]["steps"] = [{"years": y, "label": f"第{y}年", "action": "处理"} for y in (2, 3, 4)]
    data["trust"]["below"] = 0.6
    data["team"]["forms"] = ["gansu-team", "gansu-discipline"]
    config = parse_rule_set(data, "accountability/strict.toml")
    assert config.integrity_below == Fraction(1, 2)
    assert config.trust_below == Fraction(3, 5)
    assert config.team_forms == ("gansu-team", "gansu-discipline")
    records = [rec(2025, satisfaction=Fraction(2, 5)), rec(2026, satisfaction=Fraction(2, 5))]
    # 2/5 < 1/2 now; two years is still the first rung when the second needs three
    flags = evaluate(records, config)
    assert only(flags, INTEGRITY) == [(2025, 1, "一", (2025,)), (2026, 1, "一", (2025, 2026))]
    assert {(f.rule_set, f.source) for f in flags} == {("从严示例", "000 §五 第三")}
    assert flags[0].threshold == "廉洁自律测评满意率低于 50%"
    assert flags[1].measured == "满意率 40.00%（年度 2025）；满意率 40.00%（年度 2026）"
    # one failing year raises nothing when the first rung needs two
    assert only(evaluate([team(2026, "不合格")], config), TEAM) == []


def test_each_subject_is_judged_by_its_own_set() -> None:
    strict = replace(RuleConfig(), id="strict", name="从严", integrity_below=Fraction(1, 2))
    other = ("person", 2)
    records = [
        rec(2026, satisfaction=Fraction(2, 5)),
        rec(2026, subject=other, satisfaction=Fraction(2, 5)),
    ]
    flags = evaluate(records, lambda subject: strict if subject == other else RuleConfig())
    assert [(f.subject, f.rule_set) for f in flags] == [(other, "从严")]


def test_every_flag_shows_measured_value_threshold_set_and_source() -> None:
    records = [
        rec(2025, satisfaction=Fraction(43, 400), trust=Fraction(9, 20)),
        team(2025, "不合格"),
    ]
    by_rule = {f.rule: f for f in evaluate(records)}
    assert by_rule[INTEGRITY].measured == "满意率 10.75%（年度 2025）"
    assert by_rule[TRUST].measured == "信任率 45.00%（年度 2025）"
    assert by_rule[TRUST].threshold == "信任率低于 50%"
    assert by_rule[TEAM].measured == "测评等次 不合格（年度 2025）"
    assert by_rule[TEAM].threshold == "领导班子测评等次为不合格"
    for flag in by_rule.values():
        assert flag.rule_set == "某县责任追究办法（000 §五）"
        assert flag.rule_set_source.startswith("000 §五：一个县")
        assert flag.source
    weighted = replace(records[0], weighted=True)
    assert evaluate([weighted])[0].measured == "满意率 10.75%（加权，年度 2025）"


def _without(data: dict[str, Any], section: str | None, key: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    del (data[section] if section else data)[key]
    return data


def _with(data: dict[str, Any], section: str | None, key: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    (data[section] if section else data)[key] = value
    return data


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: _without(d, None, "source"), "source"),
        (lambda d: _with(d, None, "name", "  "), "name"),
        (lambda d: _with(d, None, "extra", 1), "extra"),
        (lambda d: _without(d, None, "team"), "[team]"),
        (lambda d: _without(d, "integrity", "source"), "[integrity]"),
        (lambda d: _with(d, "integrity", "below", "三分之一"), "below"),
        (lambda d: _with(d, "integrity", "below", "0"), "below"),
        (lambda d: _with(d, "trust", "below", "3/2"), "below"),
        (
            lambda d: _with(d, "team", "steps", [{"years": 1, "label": "甲", "action": "乙"}] * 2),
            "steps",
        ),
        (
            lambda d: _with(d, "team", "steps", [{"years": 0, "label": "甲", "action": "乙"}]),
            "steps",
        ),
        (
            lambda d: _with(d, "team", "steps", [{"years": "一", "label": "甲", "action": "乙"}]),
            "years",
        ),
        (lambda d: _with(d, "trust", "forms", []), "forms"),
        (lambda d: _with(d, "trust", "colour", "red"), "colour"),
    ],
)
def test_a_bad_set_file_is_refused_naming_file_and_key(change, named) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleConfigError) as info:
        parse_rule_set(change(shipped_data()), "accountability/bad.toml")
    message = str(info.value)
    assert message.startswith("accountability/bad.toml") and named in message
    assert re.search(r"[\u4e00-\u9fff]", message)


def test_set_files_are_checked_against_the_forms() -> None:
    grades = {"gansu-team": ("优秀", "合格", "不合格"), "gansu-integrity": ("好", "中", "差")}
    data = _with(shipped_data(), "team", "grade", "差")
    with pytest.raises(RuleConfigError, match="没有等次“差”"):
        parse_rule_set(data, "accountability/bad.toml", grades)
    with pytest.raises(RuleConfigError, match="没有这个测评表 gansu-principal"):
        parse_rule_set(shipped_data(), "accountability/bad.toml", grades)
