"""The accountability rules over the archive: a pure core, tested without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from fractions import Fraction

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


# --- configuration -----------------------------------------------------------------------------


def test_configuration_keys_change_thresholds_years_and_forms() -> None:
    config = RuleConfig.from_mapping(
        {
            "ARCHIVE_INTEGRITY_BELOW": "1/2",
            "ARCHIVE_INTEGRITY_YEARS": "1,3,5",
            "ARCHIVE_TEAM_YEARS": [2, 3, 4],
            "ARCHIVE_TRUST_BELOW": 0.6,
            "ARCHIVE_TEAM_FORMS": "gansu-team, gansu-discipline",
        }
    )
    assert config.integrity_below == Fraction(1, 2)
    assert config.trust_below == Fraction(3, 5)
    assert config.team_forms == ("gansu-team", "gansu-discipline")
    records = [rec(2025, satisfaction=Fraction(2, 5)), rec(2026, satisfaction=Fraction(2, 5))]
    # 2/5 < 1/2 now; two years is still the first rung when the second needs three
    assert only(evaluate(records, config), INTEGRITY) == [
        (2025, 1, "基本称职", (2025,)),
        (2026, 1, "基本称职", (2025, 2026)),
    ]
    # one failing year raises nothing when the first rung needs two
    assert only(evaluate([team(2026, "不合格")], config), TEAM) == []
    assert RuleConfig.from_mapping({}) == RuleConfig()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ARCHIVE_INTEGRITY_BELOW", "三分之一"),
        ("ARCHIVE_INTEGRITY_BELOW", "0"),
        ("ARCHIVE_TRUST_BELOW", "3/2"),
        ("ARCHIVE_INTEGRITY_YEARS", "1,2"),
        ("ARCHIVE_TEAM_YEARS", "1,1,2"),
        ("ARCHIVE_TEAM_YEARS", "0,1,2"),
        ("ARCHIVE_TEAM_YEARS", "一,二,三"),
        ("ARCHIVE_TRUST_FORMS", " , "),
    ],
)
def test_bad_configuration_is_refused_with_the_key_named(key: str, value: str) -> None:
    with pytest.raises(RuleConfigError) as info:
        RuleConfig.from_mapping({key: value})
    assert key in str(info.value)
