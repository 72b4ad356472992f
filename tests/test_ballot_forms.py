"""The five Gansu forms load, and a bad form file is refused naming the file and key."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from evaluation.ballot_forms import BallotForm, load_form_file, load_forms, parse_fraction
from evaluation.errors import FormError
from evaluation.rule_sets import load_graded_forms

BALLOTS = Path(__file__).resolve().parent.parent / "ballots"


def test_gansu_forms_match_the_source_document() -> None:
    forms = load_forms(BALLOTS)
    assert set(forms) == {
        "gansu-team",
        "gansu-principal",
        "gansu-member",
        "gansu-discipline",
        "gansu-integrity",
    }
    labels = {fid: [g.label for g in f.grades] for fid, f in forms.items()}
    assert labels["gansu-team"] == ["优秀", "合格", "不合格"]
    assert labels["gansu-discipline"] == ["优秀", "合格", "不合格"]
    assert labels["gansu-principal"] == ["优秀", "称职", "基本称职", "不称职"]
    assert labels["gansu-member"] == ["优秀", "称职", "基本称职", "不称职"]
    assert labels["gansu-integrity"] == ["好", "中", "差"]
    assert [
        len(forms[f].items)
        for f in ("gansu-team", "gansu-principal", "gansu-member", "gansu-discipline")
    ] == [7, 5, 4, 4]
    assert forms["gansu-integrity"].items_per_round
    for form in forms.values():
        assert form.per_item is False and form.abstain is True
    satisfied = {fid: [g.label for g in f.grades if g.satisfied] for fid, f in forms.items()}
    assert satisfied["gansu-team"] == ["优秀", "合格"]
    assert satisfied["gansu-principal"] == ["优秀", "称职"]
    assert satisfied["gansu-integrity"] == ["好"]
    assert forms["gansu-team"].items[5].text.startswith("严格按照规定选拔任用干部")
    assert "腐败现象和不正之风" in forms["gansu-team"].items[5].text


def test_default_rules_are_the_spec_defaults() -> None:
    forms = load_graded_forms(BALLOTS)
    principal = forms["gansu-principal"].rules
    assert [(r.grade, r.share_of, r.at_least, r.below) for r in principal] == [
        ("incompetent", ("incompetent",), Fraction(1, 3), None),
        ("basic", ("excellent", "competent"), None, Fraction(2, 3)),
        ("excellent", ("excellent",), Fraction(1, 2), None),
        ("competent", (), None, None),
    ]
    team = forms["gansu-team"].rules
    assert [(r.grade, r.at_least) for r in team] == [
        ("unqualified", Fraction(1, 3)),
        ("excellent", Fraction(1, 2)),
        ("qualified", None),
    ]


def test_snapshot_round_trips() -> None:
    form = load_forms(BALLOTS)["gansu-principal"]
    assert BallotForm.from_dict(form.to_dict()) == form
    integrity = load_forms(BALLOTS)["gansu-integrity"].with_items(["甲", "乙"])
    assert [i.text for i in BallotForm.from_dict(integrity.to_dict()).items] == ["甲", "乙"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s.replace('subject_kind = "team"', 'subject_kind = "group"'), "subject_kind"),
        (lambda s: s.replace("score = 80", "score = 180"), "score"),
        (lambda s: s.replace("per_item = false", ""), "per_item"),
        (lambda s: s + "\ncolour = 1\n", "colour"),
        (lambda s: s.replace("title =", "title = = "), "TOML"),
    ],
)
def test_bad_form_is_refused_naming_file_and_key(
    tmp_path: Path,
    mutation,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    text = (BALLOTS / "gansu-team.toml").read_text(encoding="utf-8")
    path = _write(tmp_path, "gansu-team", mutation(text))
    with pytest.raises(FormError) as info:
        load_form_file(path)
    assert "gansu-team.toml" in info.value.message
    assert expected in info.value.message


def test_file_name_must_match_id(tmp_path: Path) -> None:
    text = (BALLOTS / "gansu-team.toml").read_text(encoding="utf-8")
    path = _write(tmp_path, "other", text)
    with pytest.raises(FormError, match="文件名"):
        load_form_file(path)


@pytest.mark.parametrize(
    ("text", "value"), [("1/3", Fraction(1, 3)), ("0.5", Fraction(1, 2)), (0.3, Fraction(3, 10))]
)
def test_fractions_are_exact(text: object, value: Fraction) -> None:
    assert parse_fraction(text, "x") == value
