"""The pure tally core, with hand-computed expectations for every rule and boundary (SPEC §4)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction as F
from pathlib import Path

import pytest

from evaluation.ballot_forms import BallotForm
from evaluation.rule_sets import load_graded_forms
from evaluation.tally.core import (
    POOL_ID,
    RESULT_VERSION,
    CountRow,
    Figures,
    StratumInput,
    SubjectInput,
    SubjectResult,
    TallyInput,
    choose_pool,
    competition_ranks,
    decide_grade,
    decimal_text,
    fraction_text,
    from_json,
    percent,
    tally,
    to_json,
)

FORMS = load_graded_forms(Path(__file__).resolve().parents[2] / "ballots")
TEAM = FORMS["gansu-team"]
PRINCIPAL = FORMS["gansu-principal"]
MEMBER = FORMS["gansu-member"]
INTEGRITY = FORMS["gansu-integrity"].with_items(["八项规定", "管好身边人"])

ONE = (StratumInput(1, "一般干部", issued=100, used=100),)


def run(
    form: BallotForm,
    counts: dict[str | None, int],
    strata: tuple[StratumInput, ...] = ONE,
    *,
    stratum_id: int = 1,
    group: int = 5,
) -> SubjectResult:
    """Tally one subject whose votes all come from one stratum."""
    rows = tuple(CountRow(10, "", stratum_id, g, n) for g, n in counts.items())
    return tally(
        TallyInput(strata, (SubjectInput(10, "对象", form),), rows, min_group_size=group)
    ).subjects[0]


# --- rates ------------------------------------------------------------------------------------


def test_team_rates_counts_and_score_over_valid_votes_only() -> None:
    # 优秀 5, 合格 3, 不合格 2, 弃权 4 → valid 10
    s = run(TEAM, {"excellent": 5, "qualified": 3, "unqualified": 2, None: 4})
    f = s.figures
    assert f.counts == {"excellent": 5, "qualified": 3, "unqualified": 2}
    assert (f.valid, f.abstentions, f.ballots) == (10, 4, 14)
    assert f.excellent_rate == F(1, 2)
    assert f.satisfaction_rate == F(8, 10)
    assert f.trust_rate == F(8, 10)
    assert f.score == F(5 * 100 + 3 * 80 + 2 * 0, 10)  # 74
    assert s.grade == "excellent"  # 优秀 exactly 1/2
    assert s.grade_label == "优秀"


def test_principal_rates_four_grades() -> None:
    # 优秀 2, 称职 4, 基本称职 2, 不称职 1 → valid 9
    f = run(PRINCIPAL, {"excellent": 2, "competent": 4, "basic": 2, "incompetent": 1}).figures
    assert f.excellent_rate == F(2, 9)
    assert f.satisfaction_rate == F(6, 9)
    assert f.trust_rate == F(8, 9)  # all but 不称职
    assert f.score == F(200 + 320 + 120, 9)


def test_integrity_rates() -> None:
    f = run(INTEGRITY, {"good": 3, "fair": 1, "poor": 0}).figures
    assert (f.excellent_rate, f.satisfaction_rate, f.trust_rate) == (F(3, 4), F(3, 4), F(1))
    assert f.score == F(360, 4)


def test_no_valid_votes_no_rates_no_grade_no_rank() -> None:
    s = run(TEAM, {None: 6})
    assert s.figures.valid == 0 and s.figures.abstentions == 6
    assert s.figures.satisfaction_rate is None and s.figures.score is None
    assert s.grade is None and s.grade_label is None and s.rank is None
    empty = run(TEAM, {})
    assert empty.figures.ballots == 0 and empty.grade is None and empty.rank is None


# --- grade rules at their boundaries ------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "grade"),
    [
        # 不合格 exactly 1/3 → 不合格, even though 优秀 is 2/3 (first match wins)
        ({"excellent": 2, "qualified": 0, "unqualified": 1}, "unqualified"),
        ({"excellent": 20, "qualified": 10, "unqualified": 15}, "unqualified"),  # 15/45 = 1/3
        # 不合格 just below 1/3 (14/43) → not 不合格
        ({"excellent": 22, "qualified": 7, "unqualified": 14}, "excellent"),  # 22/43 > 1/2
        ({"excellent": 21, "qualified": 8, "unqualified": 14}, "qualified"),  # 21/43 < 1/2
        # 优秀 exactly 1/2 → 优秀; just below → 合格
        ({"excellent": 5, "qualified": 5, "unqualified": 0}, "excellent"),
        ({"excellent": 49, "qualified": 51, "unqualified": 0}, "qualified"),
        # 0.333… as a float would say 333/1000 ≥ 1/3 is false but 1/3 itself must be true
        ({"excellent": 0, "qualified": 2, "unqualified": 1}, "unqualified"),
    ],
)
def test_team_rules(counts: dict[str, int], grade: str) -> None:
    assert run(TEAM, counts).grade == grade


@pytest.mark.parametrize(
    ("counts", "grade"),
    [
        # 不称职 exactly 1/3 → 不称职
        ({"excellent": 4, "competent": 0, "basic": 0, "incompetent": 2}, "incompetent"),
        # 不称职 just below 1/3 (32/97) and 满意率 65/97 ≥ 2/3 (64.67/97) → by 优秀
        ({"excellent": 49, "competent": 16, "basic": 0, "incompetent": 32}, "excellent"),
        # 满意率 exactly 2/3 → NOT 基本称职; 优秀 1/3 → 称职
        ({"excellent": 1, "competent": 1, "basic": 1, "incompetent": 0}, "competent"),
        # 满意率 exactly 2/3 and 优秀 exactly 1/2 → 优秀
        ({"excellent": 3, "competent": 1, "basic": 2, "incompetent": 0}, "excellent"),
        # 满意率 just below 2/3 (199/300) → 基本称职, even with 优秀 ≥ 1/2
        ({"excellent": 160, "competent": 39, "basic": 101, "incompetent": 0}, "basic"),
        # 优秀 just below 1/2 with 满意率 ≥ 2/3 → 称职
        ({"excellent": 99, "competent": 101, "basic": 0, "incompetent": 0}, "competent"),
    ],
)
def test_principal_and_member_rules(counts: dict[str, int], grade: str) -> None:
    assert run(PRINCIPAL, counts).grade == grade
    assert run(MEMBER, counts).grade == grade


@pytest.mark.parametrize(
    ("counts", "grade"),
    [
        ({"good": 2, "fair": 0, "poor": 1}, "poor"),  # 差 exactly 1/3
        ({"good": 51, "fair": 0, "poor": 49}, "poor"),  # 差 49% ≥ 1/3 wins over 好 > 1/2
        ({"good": 68, "fair": 0, "poor": 32}, "good"),  # 差 32% < 1/3, 好 > 1/2
        ({"good": 1, "fair": 1, "poor": 0}, "good"),  # 好 exactly 1/2
        ({"good": 5, "fair": 6, "poor": 0}, "fair"),  # 好 just below 1/2
    ],
)
def test_integrity_rules(counts: dict[str, int], grade: str) -> None:
    assert run(INTEGRITY, counts).grade == grade


def test_decide_grade_uses_exact_fractions_not_floats() -> None:
    # 1/3 as a float sum would be 0.3333…; the rule says ≥ 1/3 exactly
    shares = {"excellent": F(2, 3), "qualified": F(0), "unqualified": F(1, 3)}
    assert decide_grade(TEAM, shares) == "unqualified"
    shares = {"excellent": F(2, 3) + F(1, 10**12), "qualified": F(0)}
    shares["unqualified"] = 1 - shares["excellent"]
    assert decide_grade(TEAM, shares) == "excellent"
    assert decide_grade(TEAM, None) is None


# --- ranks -------------------------------------------------------------------------------------


def test_competition_ranking_with_ties() -> None:
    ranks = competition_ranks({1: F(9, 10), 2: F(9, 10), 3: F(1, 2), 4: None, 5: F(1, 3)})
    assert ranks == {1: 1, 2: 1, 3: 3, 4: None, 5: 4}


def test_ranks_go_by_grade_then_satisfaction_then_excellence_within_each_form() -> None:
    subjects = (
        SubjectInput(1, "王芳", PRINCIPAL),
        SubjectInput(2, "李明", PRINCIPAL),
        SubjectInput(3, "丙", PRINCIPAL),
        SubjectInput(4, "班子", TEAM),
        SubjectInput(5, "丁", PRINCIPAL),
        SubjectInput(6, "戊", PRINCIPAL),
    )
    rows = (
        # 王芳: 满意 9/10 but 优秀 4/10 → 称职; 李明: 满意 7/10, 优秀 6/10 → 优秀.
        CountRow(1, "", 1, "excellent", 4),
        CountRow(1, "", 1, "competent", 5),
        CountRow(1, "", 1, "basic", 1),
        CountRow(2, "", 1, "excellent", 6),
        CountRow(2, "", 1, "competent", 1),
        CountRow(2, "", 1, "basic", 3),
        # 丙 and 戊: both 称职 with 满意 9/10 and 优秀 4/10 — a tie with 王芳.
        CountRow(3, "", 1, "excellent", 4),
        CountRow(3, "", 1, "competent", 5),
        CountRow(3, "", 1, "incompetent", 1),
        CountRow(6, "", 1, "excellent", 2),
        CountRow(6, "", 1, "competent", 7),
        CountRow(6, "", 1, "basic", 1),
        CountRow(4, "", 1, "unqualified", 1),
        CountRow(5, "", 1, None, 3),
    )
    result = tally(TallyInput(ONE, subjects, rows))
    grades = [s.grade_label for s in result.subjects]
    assert grades == ["称职", "优秀", "称职", "不合格", None, "称职"]
    # 李明 (优秀) before 王芳 (称职) although 王芳's 满意率 is higher; 王芳 and 丙 tie on every
    # key (1, 1, 3 style); 戊 has the same 满意率 but a lower 优秀率; 丁 has no valid vote.
    assert [s.rank for s in result.subjects] == [2, 1, 2, None, None, 4]
    # A form with one subject (the team) prints no rank at all.
    assert [s.ranked_in_form for s in result.subjects] == [4, 4, 4, 0, 4, 4]


def test_results_sealed_before_version_4_are_recounted_with_their_own_ranks() -> None:
    subjects = (SubjectInput(1, "王芳", PRINCIPAL), SubjectInput(2, "李明", PRINCIPAL))
    subjects += (SubjectInput(3, "班子", TEAM),)
    rows = (
        CountRow(1, "", 1, "excellent", 4),
        CountRow(1, "", 1, "competent", 5),
        CountRow(1, "", 1, "basic", 1),
        CountRow(2, "", 1, "excellent", 6),
        CountRow(2, "", 1, "competent", 1),
        CountRow(2, "", 1, "basic", 3),
        CountRow(3, "", 1, "excellent", 1),
    )
    old = tally(TallyInput(ONE, subjects, rows), version=3)
    assert [s.rank for s in old.subjects] == [1, 2, 1]
    assert old.version == 3 and not old.rank_by_grade


# --- weights -----------------------------------------------------------------------------------

WEIGHTED = (
    StratumInput(1, "班子成员", weight=F(3, 10), issued=10, used=10),
    StratumInput(2, "中层干部", weight=F(3, 10), issued=10, used=10),
    StratumInput(3, "一般干部", weight=F(4, 10), issued=10, used=10),
)


def test_weighted_shares_rules_and_ranks_counts_stay_counts() -> None:
    # 班子成员: 优秀 2 / 合格 0 (share 优秀 1)      weight 3/10
    # 中层干部: 优秀 0 / 不合格 5 (不合格 1)          weight 3/10
    # 一般干部: 优秀 5 / 合格 5 (优秀 1/2, 合格 1/2) weight 4/10
    rows = (
        CountRow(10, "", 1, "excellent", 2),
        CountRow(10, "", 2, "unqualified", 5),
        CountRow(10, "", 3, "excellent", 5),
        CountRow(10, "", 3, "qualified", 5),
        CountRow(10, "", 3, None, 1),
    )
    result = tally(TallyInput(WEIGHTED, (SubjectInput(10, "班子", TEAM),), rows, min_group_size=1))
    s = result.subjects[0]
    assert result.weighted
    assert s.figures.counts == {"excellent": 7, "qualified": 5, "unqualified": 5}
    assert s.figures.abstentions == 1 and s.figures.valid == 17
    # 优秀 = 3/10·1 + 3/10·0 + 4/10·1/2 = 1/2 ; 不合格 = 3/10 ; 合格 = 1/5
    assert s.figures.excellent_rate == F(1, 2)
    assert s.figures.shares == {"excellent": F(1, 2), "qualified": F(1, 5), "unqualified": F(3, 10)}
    assert s.figures.satisfaction_rate == F(7, 10)
    assert s.figures.trust_rate == F(7, 10)
    assert s.figures.score == F(1, 2) * 100 + F(1, 5) * 80
    # unweighted 优秀 would be 7/17 < 1/2 → 合格; weighted 1/2 → 优秀
    assert s.grade == "excellent"
    assert [c.weight for c in s.strata] == [F(3, 10), F(3, 10), F(4, 10)]


def test_weights_renormalised_over_strata_with_a_valid_vote() -> None:
    # 中层干部 casts only 弃权: weights 3/10 and 4/10 renormalise to 3/7 and 4/7
    rows = (
        CountRow(10, "", 1, "unqualified", 1),
        CountRow(10, "", 2, None, 4),
        CountRow(10, "", 3, "excellent", 1),
    )
    s = tally(
        TallyInput(WEIGHTED, (SubjectInput(10, "班子", TEAM),), rows, min_group_size=1)
    ).subjects[0]
    assert s.figures.shares == {"excellent": F(4, 7), "qualified": F(0), "unqualified": F(3, 7)}
    assert s.grade == "unqualified"  # 3/7 ≥ 1/3
    assert [c.weight for c in s.strata] == [F(3, 7), None, F(4, 7)]


def test_weighted_rank_uses_weighted_satisfaction() -> None:
    # 甲: 班子成员 (weight 9/10) all 称职, 一般干部 (1/10) all 基本称职 → weighted 满意率 9/10
    # 乙: the reverse → 1/10. Unweighted the order flips: 甲 3/10, 乙 7/10.
    strata = (
        StratumInput(1, "班子成员", weight=F(9, 10)),
        StratumInput(2, "一般干部", weight=F(1, 10)),
    )
    rows = (
        CountRow(1, "", 1, "competent", 3),
        CountRow(1, "", 2, "basic", 7),
        CountRow(2, "", 1, "basic", 3),
        CountRow(2, "", 2, "competent", 7),
    )
    subjects = (SubjectInput(1, "甲", MEMBER), SubjectInput(2, "乙", MEMBER))
    result = tally(TallyInput(strata, subjects, rows, min_group_size=3))
    a, b = result.subjects
    assert a.figures.satisfaction_rate == F(9, 10) and b.figures.satisfaction_rate == F(1, 10)
    assert (a.rank, b.rank) == (1, 2)  # unweighted would be 3/10 vs 7/10: the opposite


def test_weighted_round_stratum_without_weight_counts_zero_and_all_zero_falls_back() -> None:
    strata = (StratumInput(1, "甲类", weight=F(1)), StratumInput(2, "乙类", weight=None))
    rows = (CountRow(10, "", 1, "excellent", 1), CountRow(10, "", 2, "unqualified", 9))
    team = (SubjectInput(10, "班子", TEAM),)
    s = tally(TallyInput(strata, team, rows, min_group_size=1)).subjects[0]
    assert s.figures.excellent_rate == F(1)
    only_unweighted = (CountRow(10, "", 2, "unqualified", 1), CountRow(10, "", 2, "excellent", 3))
    s = tally(TallyInput(strata, team, only_unweighted, min_group_size=1)).subjects[0]
    assert s.figures.excellent_rate == F(3, 4)


# --- small groups: pooling, not hiding ----------------------------------------------------------

# 班子成员 cast 4 ballots (min size 5): pooled with the next smallest, 服务对象 (6), into 其他类别.
POOLED = (
    StratumInput(1, "班子成员", weight=F(1, 10), issued=5, used=4),
    StratumInput(2, "服务对象", weight=F(2, 10), issued=8, used=6),
    StratumInput(3, "中层干部", weight=F(3, 10), issued=20, used=20),
    StratumInput(4, "一般干部", weight=F(4, 10), issued=30, used=30),
)
POOLED_ROWS = (
    CountRow(10, "", 1, "unqualified", 3),
    CountRow(10, "", 1, None, 1),
    CountRow(10, "", 2, "excellent", 5),
    CountRow(10, "", 2, "qualified", 1),
    CountRow(10, "", 3, "excellent", 10),
    CountRow(10, "", 3, "qualified", 8),
    CountRow(10, "", 3, "unqualified", 2),
    CountRow(10, "", 4, "qualified", 27),
    CountRow(10, "", 4, None, 3),
)


def _pooled(weighted: bool) -> SubjectResult:
    strata = POOLED if weighted else tuple(replace(s, weight=None) for s in POOLED)
    data = TallyInput(strata, (SubjectInput(10, "班子", TEAM),), POOLED_ROWS, min_group_size=5)
    return tally(data).subjects[0]


def _vector(f: Figures) -> list[int]:
    return [*f.counts.values(), f.abstentions]


def test_small_stratum_is_pooled_and_named() -> None:
    s = _pooled(weighted=False)
    assert [c.name for c in s.strata] == [
        "中层干部",
        "一般干部",
        "其他类别（含：班子成员、服务对象）",
    ]
    pool = s.pool
    assert pool is not None and pool.pooled and pool.stratum_id == POOL_ID
    assert pool.members == ("班子成员", "服务对象") and pool.member_ids == (1, 2)
    assert pool.ballots == 10 >= 5
    assert pool.figures is not None
    assert pool.figures.counts == {"excellent": 5, "qualified": 1, "unqualified": 3}
    assert pool.figures.satisfaction_rate == F(6, 9)  # the pooled share
    assert not any(c.suppressed for c in s.strata)
    # 班子成员's own figures (3 不合格, 1 弃权, 4 ballots) are nowhere
    assert all(c.ballots != 4 for c in s.strata)
    assert all(_vector(c.figures) != [0, 0, 3, 1] for c in s.strata if c.figures)


def test_no_combination_of_published_numbers_isolates_the_small_stratum() -> None:
    s = _pooled(weighted=False)
    published = {
        frozenset({1, 2, 3, 4}): _vector(s.figures),  # the overall row
        **{frozenset(c.member_ids or (c.stratum_id,)): _vector(c.figures) for c in s.strata},
    }
    # Every published group that holds 班子成员 also holds 服务对象: no sum or difference of
    # published numbers can tell them apart.
    assert all(2 in group for group in published if 1 in group)
    # overall minus the visible strata is the pool (10 ballots), never 班子成员 alone (4)
    rest = [
        a - b - c
        for a, b, c in zip(
            published[frozenset({1, 2, 3, 4})],
            published[frozenset({3})],
            published[frozenset({4})],
            strict=True,
        )
    ]
    assert rest == published[frozenset({1, 2})] == [5, 1, 3, 1]
    assert sum(rest) == 10 >= 5


def test_weighted_rates_pool_the_weights_and_never_isolate_the_small_stratum() -> None:
    s = _pooled(weighted=True)
    middle, general, pool = s.strata
    assert pool.base_weight == F(1, 10) + F(2, 10)  # the sum of its members' weights
    # all groups voted, weights sum to 1: no renormalisation
    assert (middle.weight, general.weight, pool.weight) == (F(3, 10), F(4, 10), F(3, 10))
    assert middle.base_weight == F(3, 10) and general.base_weight == F(4, 10)
    assert s.figures.shares is not None
    for key in ("excellent", "qualified", "unqualified"):
        parts = {
            c.name: c.weight * c.figures.shares[key]  # type: ignore[operator,union-attr,index]
            for c in s.strata
        }
        # the weighted rate minus the weighted visible strata is the weighted pool
        rest = s.figures.shares[key] - parts["中层干部"] - parts["一般干部"]
        assert rest == parts[pool.name] == F(3, 10) * F(pool.figures.counts[key], 9)  # type: ignore[union-attr]
    # the small stratum's own share (不合格 1) with its own weight 1/10 appears nowhere
    assert s.figures.shares["unqualified"] == F(3, 10) * F(2, 20) + F(3, 10) * F(3, 9)
    assert s.figures.satisfaction_rate == 1 - s.figures.shares["unqualified"]
    # raw counts and raw shares are there beside the weighted ones
    assert s.raw_figures.counts == s.figures.counts
    assert s.raw_figures.satisfaction_rate == F(51, 56)


def test_pool_grows_with_the_next_smallest_until_it_is_big_enough() -> None:
    strata = tuple(StratumInput(i, f"类别{i}") for i in range(1, 5))
    assert choose_pool(strata, {1: 1, 2: 2, 3: 3, 4: 10}, 5) == (1, 2, 3)  # 6 ≥ 5
    assert choose_pool(strata, {1: 2, 2: 9, 3: 7, 4: 10}, 5) == (1, 3)  # 2 + the next, 7
    assert choose_pool(strata, {1: 2, 2: 1}, 5) == (1, 2)  # all strata, still 3
    assert choose_pool(strata, {1: 5, 2: 6, 3: 0, 4: 0}, 5) == ()  # none small; 0 is no group
    assert choose_pool(strata, {1: 5, 2: 6, 3: 0, 4: 3}, 5) == (1, 4)  # ties: round order


def test_tiny_round_overall_row_is_never_pooled() -> None:
    s = run(TEAM, {"excellent": 1, "unqualified": 1}, group=5)
    assert s.figures.valid == 2 and s.grade == "unqualified"
    assert s.pool is not None and s.pool.ballots == 2  # all strata together, named
    assert s.pool.members == ("一般干部",)


def test_items_use_the_subjects_pool() -> None:
    form = BallotForm(**{**TEAM.__dict__, "per_item": True})
    strata = (StratumInput(1, "甲类"), StratumInput(2, "乙类"), StratumInput(3, "丙类"))
    rows = (
        CountRow(10, "", 1, "excellent", 6),
        CountRow(10, "", 2, "excellent", 2),
        CountRow(10, "", 3, "qualified", 5),
        CountRow(10, "1", 1, "qualified", 6),
        CountRow(10, "1", 2, "unqualified", 2),
        CountRow(10, "1", 3, "unqualified", 5),
    )
    s = tally(TallyInput(strata, (SubjectInput(10, "班子", form),), rows)).subjects[0]
    assert [i.code for i in s.items] == ["1"]
    item = s.items[0]
    assert item.figures.satisfaction_rate == F(6, 13)
    assert [c.name for c in s.strata] == ["甲类", "其他类别（含：乙类、丙类）"]
    assert [c.name for c in item.strata] == [c.name for c in s.strata]
    pooled_item = item.strata[1]
    assert pooled_item.figures is not None and pooled_item.figures.counts["unqualified"] == 7
    assert all(c.ballots != 2 for c in item.strata)  # 乙类's 2 item answers only in the pool


def test_stratum_without_ballots_is_no_group() -> None:
    strata = (StratumInput(1, "甲类"), StratumInput(2, "服务对象"))
    rows = (CountRow(10, "", 1, "excellent", 6),)
    s = tally(TallyInput(strata, (SubjectInput(10, "班子", TEAM),), rows)).subjects[0]
    assert s.pool is None
    assert [(c.name, c.ballots) for c in s.strata] == [("甲类", 6), ("服务对象", 0)]


def test_pooled_result_round_trips_and_version_2_results_are_read_as_sealed() -> None:
    forms = {TEAM.id: TEAM}
    data = TallyInput(POOLED, (SubjectInput(10, "班子", TEAM),), POOLED_ROWS, min_group_size=5)
    result = tally(data)
    sealed = to_json(result)
    assert sealed["version"] == RESULT_VERSION == 4
    cell = sealed["subjects"][0]["strata"][2]
    assert cell["members"] == ["班子成员", "服务对象"] and cell["base_weight"] == "3/10"
    assert from_json(sealed, forms) == result
    # A round sealed before pooling: its small cell stays suppressed, shown as "—".
    legacy = tally(data, pooling=False)
    old = to_json(legacy)
    assert old["version"] == 2
    assert old["subjects"][0]["strata"][0] == {
        "stratum_id": 1,
        "name": "班子成员",
        "ballots": 4,
        "suppressed": True,
        "weight": "1/10",
        "figures": None,
    }
    read = from_json(old, forms)
    assert read == legacy and not read.pooling and read.subjects[0].pool is None
    assert to_json(read) == old


# --- turnout and validity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "valid"),
    [(20, True), (19, False), (30, True)],  # 20/30 is exactly 2/3 → valid; 19/30 below
)
def test_validity_by_minimum_turnout(used: int, valid: bool) -> None:
    strata = (
        StratumInput(1, "甲类", issued=10, used=min(used, 10)),
        StratumInput(2, "乙类", issued=20, used=used - min(used, 10)),
    )
    result = tally(TallyInput(strata, (), (), min_turnout=F(2, 3)))
    assert result.turnout_rate == F(used, 30)
    assert result.valid is valid
    assert to_json(result)["valid"] is valid


def test_nothing_issued_is_invalid() -> None:
    result = tally(TallyInput((StratumInput(1, "甲类"),), (), ()))
    assert result.turnout_rate is None and not result.valid


def test_unknown_grades_are_reported_not_counted() -> None:
    rows = (CountRow(10, "", 1, "excellent", 1), CountRow(10, "", 1, "bogus", 2))
    result = tally(TallyInput(ONE, (SubjectInput(10, "班子", TEAM),), rows))
    assert result.subjects[0].figures.valid == 1
    assert any("bogus" in a for a in result.anomalies)


# --- JSON and display ----------------------------------------------------------------------------


def test_json_keeps_exact_fractions_as_text() -> None:
    rows = (CountRow(10, "", 1, "excellent", 1), CountRow(10, "", 1, "unqualified", 2))
    data = to_json(tally(TallyInput(ONE, (SubjectInput(10, "班子", TEAM),), rows)))
    row = data["subjects"][0]
    assert row["excellent_rate"] == "1/3" and row["trust_rate"] == "1/3"
    assert row["satisfaction_rate"] == "1/3" and row["score"] == "100/3"
    assert row["counts"] == {"excellent": 1, "qualified": 0, "unqualified": 2}
    assert row["grade"] == "unqualified" and row["grade_label"] == "不合格"
    assert row["rank"] is None  # the only subject of its form: no rank
    assert data["turnout"]["rate"] == "1/1"
    assert fraction_text(F(2, 4)) == "1/2"


def test_percent_and_decimal_rounding() -> None:
    assert percent(F(2, 3)) == "66.67%"
    assert percent(F(1, 3)) == "33.33%"
    assert percent(F(1, 200)) == "0.50%"
    assert percent(F(1)) == "100.00%"
    assert percent(None) == "—"
    assert decimal_text(F(200, 3)) == "66.67"
    assert decimal_text(F(74)) == "74.00"


def test_results_sealed_before_pooling_withhold_every_cell_beside_a_hidden_one() -> None:
    """A version-2 result showed a small stratum as "—" beside its neighbours: overall minus
    the neighbours gave it back. Now every cell of such a subject (or item) is withheld; a
    subject with no hidden cell keeps its cells; pooled results are untouched."""
    from evaluation.tally.core import withhold_recoverable

    strata = (StratumInput(1, "甲类"), StratumInput(2, "乙类"), StratumInput(3, "丙类"))
    rows = (
        CountRow(10, "", 1, "excellent", 6),
        CountRow(10, "", 2, "excellent", 2),
        CountRow(10, "", 3, "qualified", 5),
        CountRow(11, "", 1, "excellent", 6),
        CountRow(11, "", 2, "excellent", 6),
        CountRow(11, "", 3, "qualified", 5),
    )
    subjects = (SubjectInput(10, "班子", TEAM), SubjectInput(11, "纪检组", TEAM))
    legacy = tally(TallyInput(strata, subjects, rows), pooling=False)
    small, whole = legacy.subjects
    assert [c.suppressed for c in small.strata] == [False, True, False]  # as sealed: leaks
    shown = withhold_recoverable(legacy)
    assert all(c.suppressed and c.figures is None for c in shown.subjects[0].strata)
    assert shown.subjects[0].figures == small.figures  # the overall row stays
    assert shown.subjects[1] == whole
    pooled = tally(TallyInput(strata, subjects, rows))
    assert withhold_recoverable(pooled) == pooled
