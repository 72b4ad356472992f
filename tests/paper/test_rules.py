"""废票规则 as data: the shipped file, files refused, and what one entered ballot comes to."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from evaluation.errors import FormError
from evaluation.paper.rules import (
    FILE_NAME,
    check_stroke,
    interpret,
    load_rules,
    normalise_stroke,
    parse_rules,
)
from tests.helpers.databases import ROOT

BALLOTS = ROOT / "ballots"
SHIPPED = BALLOTS / FILE_NAME
# Two questions of four grades, one of two.
GRADES = (("good", "fair", "poor", "bad"), ("good", "fair", "poor", "bad"), ("yes", "no"))


@pytest.fixture(scope="module")
def rules():  # type: ignore[no-untyped-def]
    return load_rules(BALLOTS)


def shipped_data() -> dict[str, object]:
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def write_rules(tmp_path: Path, text: str) -> Path:
    (tmp_path / "paper").mkdir()
    (tmp_path / FILE_NAME).write_text(text, encoding="utf-8")
    return tmp_path


RULE = """
[[rule]]
key = "{key}"
label = "{label}"
description = "说明"
scope = "{scope}"
effect = "{effect}"
stroke = "{stroke}"
"""


def rules_text(*rules: dict[str, str]) -> str:
    head = 'name = "测试规则"\nsource = "测试"\n'
    return head + "".join(RULE.format(**r) for r in rules)


UNMARKED = {
    "key": "unmarked",
    "label": "未勾选",
    "scope": "question",
    "effect": "abstain",
    "stroke": "",
}


# --- the file -----------------------------------------------------------------------------------


def test_the_shipped_file_loads_with_its_four_rules(rules) -> None:  # type: ignore[no-untyped-def]
    assert rules.name == "纸质票废票规则"
    assert {r.key: (r.scope, r.effect, r.stroke) for r in rules.rules} == {
        "blank": ("ballot", "invalid", ""),
        "outside": ("ballot", "invalid", "w"),
        "unmarked": ("question", "abstain", ""),
        "multiple": ("question", "abstain", "*"),
    }
    assert rules.blank_rule() is not None and rules.blank_rule().label == "空白票"
    assert rules.ballot_rule("w") is not None and rules.ballot_rule("w").voids_ballot
    assert rules.ballot_rule("") is None  # an empty 票面 is a normal ballot
    assert rules.question_rule("*") is not None and not rules.question_rule("*").voids_ballot
    assert rules.labels()["multiple"] == "多选"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FormError, match="缺少废票规则文件"):
        load_rules(tmp_path)


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    with pytest.raises(FormError, match=f"{FILE_NAME}：不是有效的 TOML"):
        load_rules(write_rules(tmp_path, "name = \n"))


@pytest.mark.parametrize(
    ("extra", "fault"),
    [
        pytest.param(
            {"key": "x", "label": "乱画", "scope": "ballot", "effect": "abstain", "stroke": "x"},
            "第 2 条规则：effect 应为 invalid（整张作废）",
            id="ballot-scope-abstain",
        ),
        pytest.param(
            {"key": "x", "label": "乱画", "scope": "page", "effect": "invalid", "stroke": "x"},
            "第 2 条规则：scope 应为 ballot 或 question",
            id="unknown-scope",
        ),
        pytest.param(
            {"key": "x", "label": "乱画", "scope": "question", "effect": "abstain", "stroke": "3"},
            "第 2 条规则：stroke 应为一个非数字的键",
            id="digit-stroke",
        ),
        pytest.param(
            {"key": "x", "label": "乱画", "scope": "question", "effect": "abstain", "stroke": "３"},
            "第 2 条规则：stroke 应为一个非数字的键",
            id="full-width-digit-stroke",
        ),
        pytest.param(
            {"key": "x", "label": "乱画", "scope": "question", "effect": "abstain", "stroke": "xy"},
            "第 2 条规则：stroke 应为一个非数字的键",
            id="two-key-stroke",
        ),
        pytest.param(
            {"key": "x", "label": "乱画", "scope": "question", "effect": "invalid", "stroke": ""},
            "同一范围（question）内两条规则用了同一个键",
            id="duplicate-stroke",
        ),
        pytest.param(
            {
                "key": "unmarked",
                "label": "乱画",
                "scope": "ballot",
                "effect": "invalid",
                "stroke": "x",
            },
            "规则的 key 有重复",
            id="duplicate-key",
        ),
        pytest.param(
            {"key": "x", "label": "", "scope": "ballot", "effect": "invalid", "stroke": "x"},
            "第 2 条规则：缺少“label”",
            id="empty-label",
        ),
    ],
)
def test_a_bad_rule_is_refused_naming_file_and_rule(
    tmp_path: Path, extra: dict[str, str], fault: str
) -> None:
    with pytest.raises(FormError) as refused:
        load_rules(write_rules(tmp_path, rules_text(UNMARKED, extra)))
    assert refused.value.message.startswith(FILE_NAME)
    assert fault in refused.value.message


def test_a_file_without_the_unmarked_rule_is_refused(tmp_path: Path) -> None:
    multiple = {
        "key": "m",
        "label": "多选",
        "scope": "question",
        "effect": "abstain",
        "stroke": "*",
    }
    with pytest.raises(FormError, match="需要一条 stroke 为空的 question 规则"):
        load_rules(write_rules(tmp_path, rules_text(multiple)))


def test_a_file_without_rules_is_refused() -> None:
    with pytest.raises(FormError, match="某文件：没有 \\[\\[rule\\]\\]"):
        parse_rules({"name": "x", "source": "y"}, "某文件")


def test_a_changed_shipped_file_still_parses_as_data() -> None:
    """The rules are data: turning 多选 into 整张作废 needs no code."""
    data = shipped_data()
    for rule in data["rule"]:  # type: ignore[union-attr]
        if rule["key"] == "multiple":
            rule["effect"] = "invalid"
    changed = parse_rules(data, FILE_NAME)
    result = interpret("", ("1", "*", "1"), GRADES, changed)
    assert result.invalid is not None and result.invalid.key == "multiple"
    assert result.grades == ()


# --- keystrokes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stroke", "problem"),
    [
        ("1", None),
        ("4", None),
        ("0", None),
        ("", None),
        ("*", None),
        ("5", "等次只有 1 至 4"),
        ("12", "每栏只输入一个键"),
        ("01", "每栏只输入一个键"),
        ("²", "每栏只输入一个键"),
        ("q", "不认识的键“q”"),
    ],
)
def test_check_stroke(rules, stroke: str, problem: str | None) -> None:  # type: ignore[no-untyped-def]
    found = check_stroke(stroke, 4, rules)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_full_width_keys_are_folded() -> None:
    assert normalise_stroke("１") == "1"
    assert normalise_stroke("＊") == "*"
    assert normalise_stroke(" W ") == "w"
    assert normalise_stroke(None) == ""


# --- interpret ----------------------------------------------------------------------------------


def test_digits_pick_grades_best_first(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("", ("1", "4", "2"), GRADES, rules)
    assert result.invalid is None
    assert result.grades == ("good", "bad", "no")
    assert result.abstained == {}


def test_zero_is_the_abstain_box(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("", ("0", "2", "0"), GRADES, rules)
    assert result.invalid is None
    assert result.grades == (None, "fair", None)
    assert result.abstained == {}  # ticked 弃权 is no rule's doing


def test_star_multiple_counts_as_abstain_by_rule(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("", ("*", "3", "*"), GRADES, rules)
    assert result.invalid is None
    assert result.grades == (None, "poor", None)
    assert result.abstained == {"multiple": 2}


def test_an_unmarked_question_counts_as_abstain_by_rule(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("", ("", "3", "1"), GRADES, rules)
    assert result.invalid is None
    assert result.grades == (None, "poor", "yes")
    assert result.abstained == {"unmarked": 1}


def test_all_blank_is_a_blank_ballot(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("", ("", "", ""), GRADES, rules)
    assert result.invalid is not None
    assert result.invalid.key == "blank" and result.invalid.label == "空白票"
    assert result.grades == () and result.abstained == {}


def test_all_abstain_ticked_is_a_valid_ballot(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("", ("0", "0", "0"), GRADES, rules)
    assert result.invalid is None
    assert result.grades == (None, None, None)


def test_w_on_the_face_voids_the_ballot(rules) -> None:  # type: ignore[no-untyped-def]
    result = interpret("w", ("1", "2", "1"), GRADES, rules)
    assert result.invalid is not None
    assert result.invalid.key == "outside" and result.invalid.label == "方框外有标记"
    assert result.grades == ()


def test_abstain_by_rule_voids_a_ballot_on_a_question_without_abstain(rules) -> None:  # type: ignore[no-untyped-def]
    """A phone ballot always answers a question without 弃权; a stored NULL there would mark
    the ballot as paper, so the whole ballot is void (counted under the rule)."""
    result = interpret("", ("1", "*", "1"), GRADES, rules, (True, False, True))
    assert result.invalid is not None and result.invalid.key == "multiple"
    assert result.grades == ()
    fine = interpret("", ("*", "1", "1"), GRADES, rules, (True, False, True))
    assert fine.invalid is None and fine.grades == (None, "good", "yes")


def test_unknown_strokes_are_a_programming_error(rules) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        interpret("", ("q", "1", "1"), GRADES, rules)
    with pytest.raises(ValueError):
        interpret("z", ("1", "1", "1"), GRADES, rules)
    with pytest.raises(ValueError):
        interpret("", ("1", "0", "1"), GRADES, rules, (True, False, True))
