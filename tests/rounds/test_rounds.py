"""Round files, the state machine, and the CLI verbs that move a round."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import Person, Round, RoundState, Unit
from evaluation.rounds import lifecycle, state
from evaluation.rounds import operations as rounds
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.transactions import write_transaction
from tests.helpers.web import SAMPLE_ROUND


def test_import_builds_the_whole_round(sample_round: Round) -> None:
    rnd = sample_round
    assert rnd.state == RoundState.DRAFT
    assert rnd.unit.path == "甘肃省局/兰州市局"
    assert rnd.unit.parent is not None and rnd.unit.parent.path == "甘肃省局"
    assert [s.name for s in rnd.strata] == ["班子成员", "中层干部", "一般干部"]
    assert [s.planned for s in rnd.strata] == [7, 20, 40]
    assert [s.name for s in rnd.subjects][:2] == ["市局领导班子", "市局纪检组"]
    zhang = rnd.subjects[2].person
    assert zhang is not None and zhang.staff_no == "A001" and zhang.post == "局长"
    # the same cadre on the integrity form
    assert rnd.subjects[4].person is zhang
    assert set(rnd.forms) == {
        "gansu-team",
        "gansu-discipline",
        "gansu-principal",
        "gansu-member",
        "gansu-integrity",
    }
    assert [i["text"] for i in rnd.forms["gansu-integrity"]["items"]] == [
        "严格执行中央八项规定精神",
        "管好配偶子女和身边工作人员",
    ]


def test_round_snapshots_its_forms(app, sample_round: Round, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Point the app at a copy of the forms with a changed label: the round keeps its snapshot.
    import shutil

    copy = tmp_path / "ballots"
    shutil.copytree(app.config["BALLOTS_DIR"], copy)
    team = copy / "gansu-team.toml"
    team.write_text(team.read_text(encoding="utf-8").replace('"优秀"', '"很好"'), encoding="utf-8")
    app.config["BALLOTS_DIR"] = str(copy)
    form = state.subject_form(sample_round, sample_round.subjects[0])
    assert form.best.label == "优秀"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s.replace('form = "gansu-discipline"', 'form = "gansu-nothing"'),
            "gansu-nothing",
        ),
        (lambda s: s.replace('name = "李四"', 'name = "张三"'), "重复"),
        (lambda s: s.replace('title = "2026年度党风廉政建设责任制民主测评"\n', ""), "title"),
        (lambda s: s.replace("codes = 20", "codes = -1"), "第 2 个 [[strata]]"),
        (lambda s: s.replace('name = "市局纪检组"', 'name = ""'), "第 2 个 [[subjects]]"),
        (lambda s: 'colour = "red"\n' + s, "colour"),
        (lambda s: s.replace('mode = "集中"', 'mode = "线上"'), "集中"),
    ],
)
def test_bad_round_file_imports_nothing(app, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as info:
        import_round(parse_round_text(change(SAMPLE_ROUND)), actor="test")
    db.session.rollback()
    text = info.value.message + " ".join(info.value.problems)
    assert message in text
    assert db.session.execute(db.select(Round)).first() is None
    assert db.session.execute(db.select(Person)).first() is None
    assert db.session.execute(db.select(Unit)).first() is None


def test_malformed_toml_is_a_clear_error(app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="TOML"):
        parse_round_text('title = "x\n', "bad.toml")


def test_state_machine(sample_round: Round) -> None:
    rnd = sample_round
    lifecycle.open_round(rnd, actor="t")
    assert rnd.state == RoundState.OPEN
    with pytest.raises(StateError):
        rounds.add_stratum(rnd, actor="t", name="服务对象", planned=5)
    with pytest.raises(StateError):
        lifecycle.open_round(rnd, actor="t")
    with write_transaction():
        lifecycle.close_round(rnd, actor="t")
    assert rnd.state == RoundState.CLOSED
    with pytest.raises(StateError):
        lifecycle.open_round(rnd, actor="t")  # close is final
    lifecycle.archive_round(rnd, actor="t")
    with pytest.raises(StateError):
        lifecycle.void_round(rnd, actor="t", reason="x")


def test_void_needs_a_reason(sample_round: Round) -> None:
    with pytest.raises(InputError):
        lifecycle.void_round(sample_round, actor="t", reason=" ")
    lifecycle.void_round(sample_round, actor="t", reason="测评对象有误")
    assert sample_round.state == RoundState.VOID and sample_round.void_reason == "测评对象有误"


def test_cli_import_prints_id_last_and_moves_states(app, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "round.toml"
    path.write_text(SAMPLE_ROUND, encoding="utf-8")
    result = runner.invoke(args=["round", "import", str(path)])
    assert result.exit_code == 0, result.output
    round_id = result.output.strip().splitlines()[-1]
    assert round_id.isdigit()
    assert runner.invoke(args=["round", "open", round_id]).exit_code == 0
    again = runner.invoke(args=["round", "open", round_id])
    assert again.exit_code != 0 and "进行中" in again.output and "Traceback" not in again.output
    assert runner.invoke(args=["round", "close", round_id]).exit_code == 0
    rnd = db.session.get(Round, int(round_id))
    db.session.refresh(rnd)
    assert rnd.state == RoundState.CLOSED


def test_cli_bad_file_is_one_line(app, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "round.toml"
    path.write_text("title = [", encoding="utf-8")
    result = runner.invoke(args=["round", "import", str(path)])
    assert result.exit_code != 0
    assert "TOML" in result.output and "Traceback" not in result.output
    missing = runner.invoke(args=["round", "import", str(tmp_path / "nope.toml")])
    assert missing.exit_code != 0 and "找不到文件" in missing.output


def test_qualified_subject_name_resolves_to_the_cadre(app) -> None:  # type: ignore[no-untyped-def]
    text = SAMPLE_ROUND.replace(
        '[[subjects]]\nname = "张三"\nform = "gansu-principal"\npost = "局长"\nstaff_no = "A001"\n',
        "",
    )
    rnd = import_round(parse_round_text(text), actor="test")
    integrity = next(s for s in rnd.subjects if s.form_id == "gansu-integrity")
    assert integrity.name == "张三（廉洁自律）"
    assert integrity.person is not None and integrity.person.name == "张三"
    assert rounds.person_name("王五（廉洁自律）") == "王五"
    assert rounds.person_name("=SUM(1,2)") == "=SUM(1,2)"
    assert rounds.person_name("（空）") == "（空）"


def test_staff_number_of_someone_else_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    text = SAMPLE_ROUND.replace(
        'name = "李四"\nform = "gansu-member"\npost = "副局长"\nstaff_no = "A002"',
        'name = "李四"\nform = "gansu-member"\npost = "副局长"\nstaff_no = "A001"',
    )
    with pytest.raises(InputError, match="A001"):
        import_round(parse_round_text(text), actor="test")


def test_round_file_times_are_beijing_time(app) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    text = SAMPLE_ROUND.replace(
        'min_turnout = "2/3"',
        'min_turnout = "2/3"\nopens_at = 2026-12-01T09:00:00\n'
        'closes_at = "2026-12-01T17:30:00+08:00"',
    )
    rnd = import_round(parse_round_text(text), actor="test")
    db.session.commit()
    db.session.refresh(rnd)
    opens = rnd.opens_at.replace(tzinfo=UTC) if rnd.opens_at.tzinfo is None else rnd.opens_at
    closes = rnd.closes_at.replace(tzinfo=UTC) if rnd.closes_at.tzinfo is None else rnd.closes_at
    assert opens.astimezone(UTC) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert closes.astimezone(UTC) == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_round_cannot_open_before_per_round_items_are_set(app) -> None:  # type: ignore[no-untyped-def]
    text = SAMPLE_ROUND.split("[forms.gansu-integrity]")[0]
    rnd = import_round(parse_round_text(text), actor="test")
    with pytest.raises(InputError, match="测评内容"):
        lifecycle.open_round(rnd, actor="t")
    rounds.set_form_items(rnd, "gansu-integrity", ["严格执行中央八项规定精神"], actor="t")
    lifecycle.open_round(rnd, actor="t")
    assert rnd.state == RoundState.OPEN
