"""等次规则集: the rules are the unit's, chosen per round, editable in draft, frozen from open."""

from __future__ import annotations

import shutil
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.ballot_forms import load_forms
from evaluation.errors import FormError, InputError, StateError
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds import operations
from evaluation.rounds.round_file import export_round, import_round, parse_round_text
from evaluation.rounds.state import round_forms, round_rule_set
from evaluation.rule_sets import describe_rules, load_rule_sets
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.verify import verify_round
from tests.helpers import tally as th
from tests.helpers.web import SAMPLE_ROUND, AuthActions, csrf_token

BALLOTS = Path(__file__).resolve().parents[2] / "ballots"


def test_shipped_sets_say_truly_where_their_thresholds_come_from() -> None:
    sets = load_rule_sets(BALLOTS)
    assert list(sets) == ["default", "satisfaction"]
    default, satisfaction = sets["default"], sets["satisfaction"]
    assert default.name == "本系统默认规则（可修改）"
    assert "本系统默认规则" in default.source and "非004原文" in default.source
    assert "000" in satisfaction.source and "本单位设定" in satisfaction.source
    assert default.min_turnout == F(2, 3)
    forms = load_forms(BALLOTS)
    assert set(default.rules) == set(forms) == set(satisfaction.rules)
    # The form files no longer carry thresholds, nor cite 004 for any.
    for path in BALLOTS.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        assert "[[rules]]" not in text and "rules =" not in text, path.name
        assert "、四." not in text and "等次名称四." in text or "未规定其等次" in text, path.name
    principal = default.apply(forms["gansu-principal"])
    assert describe_rules(principal) == (
        "不称职：不称职票占有效票 ≥ 1/3（33.3%）；基本称职：满意率（优秀+称职） < 2/3（66.7%）；"
        "优秀：优秀票占有效票 ≥ 50%；其余为称职"
    )
    assert describe_rules(satisfaction.apply(forms["gansu-team"])) == (
        "优秀：满意率（优秀+合格） ≥ 90%；合格：满意率（优秀+合格） ≥ 60%；其余为不合格"
    )


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s.replace('grade = "qualified" }', 'grade = "nope" }', 1), "nope"),
        (lambda s: s.replace('at_least = "1/3"', 'at_least = "a third"', 1), "at_least"),
        (lambda s: s.replace('  { grade = "qualified" },\n', "", 1), "兜底"),
        (lambda s: s.replace('source = "', 'sauce = "'), "sauce"),
        (lambda s: s.replace("[forms.gansu-team]", "[forms.gansu-teem]"), "gansu-teem"),
    ],
)
def test_a_bad_rule_set_file_is_refused_naming_the_file_and_key(
    tmp_path: Path,
    mutation,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    for path in BALLOTS.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "rule-sets").mkdir()
    text = (BALLOTS / "rule-sets" / "default.toml").read_text(encoding="utf-8")
    (tmp_path / "rule-sets" / "default.toml").write_text(mutation(text), encoding="utf-8")
    with pytest.raises(FormError) as info:
        load_rule_sets(tmp_path)
    assert "default.toml" in info.value.message
    assert expected in info.value.message


def _round(text: str = SAMPLE_ROUND) -> Round:
    rnd = import_round(parse_round_text(text), actor="test")
    db.session.commit()
    return rnd


def test_a_round_takes_the_default_set_unless_its_file_names_another(app: Flask) -> None:
    rnd = _round()
    assert round_rule_set(rnd).id == "default" and rnd.min_turnout == "2/3"
    assert 'rule_set = "default"' in export_round(rnd)
    other = _round(
        SAMPLE_ROUND.replace('title = "', 'rule_set = "satisfaction"\ntitle = "另一').replace(
            'min_turnout = "2/3"\n', ""
        )
    )
    chosen = round_rule_set(other)
    assert chosen.id == "satisfaction" and chosen.name == "按测评满意率确定等次"
    # A round file's own minimum turnout is what the round (and every output) says.
    third = _round(
        SAMPLE_ROUND.replace('title = "', 'title = "第三').replace(
            'min_turnout = "2/3"', 'min_turnout = "1/2"'
        )
    )
    assert round_rule_set(third).min_turnout == F(1, 2)
    assert round_forms(other)["gansu-principal"].rules == chosen.rules["gansu-principal"]
    assert 'rule_set = "satisfaction"' in export_round(other)
    with pytest.raises(InputError) as info:
        _round(SAMPLE_ROUND.replace('title = "', 'rule_set = "strict"\ntitle = "'))
    assert "等次规则集“strict”不存在" in info.value.problems[0]
    assert "default（本系统默认规则" in info.value.problems[0]


def test_the_satisfaction_set_grades_by_satisfaction_with_the_units_thresholds(
    sample_round: Round,
) -> None:
    operations.choose_rule_set(sample_round, "satisfaction", actor="test")
    changed = operations.set_rule_thresholds(
        sample_round, {("gansu-principal", 1): "65%"}, actor="test"
    )
    assert changed == ["称职：满意率（优秀+称职） ≥ 65%"]
    db.session.commit()
    rule_set = round_rule_set(sample_round)
    assert rule_set.edited and rule_set.title.endswith("（本次测评修改了比例）")
    th.vote(sample_round)
    result = sealed_result(sample_round)
    # 张三: 优秀 23, 称职 6, 基本称职 10, 不称职 4 → 满意率 29/43 = 67.4 %: 称职 at ≥ 65 %
    # (the default set would say 优秀, 优秀票 23/43 ≥ 1/2; the shipped 70 % would say 基本称职).
    principal = result.subject(th.subject(sample_round, th.PRINCIPAL).id)
    assert principal.figures.satisfaction_rate == F(29, 43)
    assert principal.grade_label == "称职"
    # 李四 (gansu-member, thresholds as shipped): 满意 23+6+... see figures → by 满意率 alone.
    member = result.subject(th.subject(sample_round, th.MEMBER).id)
    rate = member.figures.satisfaction_rate
    assert rate is not None
    expected = "优秀" if rate >= F(9, 10) else "称职" if rate >= F(7, 10) else "基本称职"
    expected = expected if rate >= F(3, 5) else "不称职"
    assert member.grade_label == expected
    # The rules are frozen with the round: flask verify recounts with them and agrees.
    assert verify_round(sample_round).ok


def test_thresholds_and_sets_are_frozen_from_open(sample_round: Round) -> None:
    th.open_round(sample_round)
    with pytest.raises(StateError):
        operations.set_rule_thresholds(sample_round, {("gansu-team", 0): "1/2"}, actor="test")
    with pytest.raises(StateError):
        operations.choose_rule_set(sample_round, "satisfaction", actor="test")


def test_a_bad_threshold_changes_nothing(sample_round: Round) -> None:
    before = dict(sample_round.rule_set or {})
    with pytest.raises(InputError, match="比例"):
        operations.set_rule_thresholds(
            sample_round,
            {("gansu-team", 0): "1/2", ("gansu-team", 1): "三分之一"},
            actor="test",
        )
    db.session.rollback()
    assert sample_round.rule_set == before
    with pytest.raises(InputError, match="兜底|没有第"):
        operations.set_rule_thresholds(sample_round, {("gansu-team", 2): "1/2"}, actor="test")


def _login(auth: AuthActions, client: FlaskClient) -> str:
    assert auth.login("organiser").status_code == 302
    return csrf_token(client, "/")


def test_the_round_page_shows_and_edits_the_rules_in_draft_only(
    client: FlaskClient, auth: AuthActions, users: Any, sample_round: Round
) -> None:
    token = _login(auth, client)
    url = f"/rounds/{sample_round.id}"
    page = client.get(url).get_data(as_text=True)
    assert "等次规则：本系统默认规则（可修改）" in page
    assert "非004原文" in page and 'name="t-gansu-team-0"' in page and 'value="1/3"' in page

    response = client.post(
        f"{url}/rule-thresholds",
        data={"csrf_token": token, "t-gansu-team-0": "40%", "t-gansu-team-1": "1/2"},
    )
    assert response.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "已修改等次规则：不合格：不合格票占有效票 ≥ 40%" in page
    assert "本系统默认规则（可修改）（本次测评修改了比例）" in page
    db.session.expire_all()
    team = round_forms(db.session.get(Round, sample_round.id))["gansu-team"]
    assert team.rules[0].at_least == F(2, 5)

    response = client.post(
        f"{url}/rule-thresholds", data={"csrf_token": token, "t-gansu-team-0": "七成"}
    )
    assert response.status_code == 400
    assert "不是有效的比例" in response.get_data(as_text=True)

    response = client.post(
        f"{url}/rule-set", data={"csrf_token": token, "rule_set": "satisfaction"}
    )
    assert response.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "等次规则：按测评满意率确定等次" in page and 'value="90%"' in page

    th.open_round(db.session.get(Round, sample_round.id))
    page = client.get(url).get_data(as_text=True)
    assert 'name="t-gansu-team-0"' not in page and "优秀：满意率（优秀+合格） ≥ 90%" in page
    response = client.post(
        f"{url}/rule-thresholds", data={"csrf_token": token, "t-gansu-team-0": "1/2"}
    )
    assert response.status_code in (303, 409)
    db.session.expire_all()
    team = round_forms(db.session.get(Round, sample_round.id))["gansu-team"]
    assert team.rules[0].at_least == F(9, 10)


def test_a_new_round_picks_its_rule_set_on_the_page(
    client: FlaskClient, auth: AuthActions, users: Any
) -> None:
    token = _login(auth, client)
    page = client.get("/rounds/new").get_data(as_text=True)
    assert "按测评满意率确定等次" in page and "本系统默认规则（可修改）" in page
    response = client.post(
        "/rounds/new",
        data={
            "csrf_token": token,
            "title": "2026年度测评",
            "year": "2026",
            "mode": "集中",
            "kind": "本级自测",
            "unit_id": str(users["organiser"].unit_id),
            "rule_set": "satisfaction",
            "min_turnout": "",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    rnd = db.session.execute(db.select(Round)).scalars().one()
    assert round_rule_set(rnd).id == "satisfaction" and rnd.min_turnout == "2/3"
