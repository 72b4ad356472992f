"""纸质票录入 through the pages: two 计票员 enter a stack, agreed ballots go in the box."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.accounts.operations import create_user
from evaluation.codes.paper import issue_paper
from evaluation.extensions import db
from evaluation.models import (
    Answer,
    AuditEntry,
    Ballot,
    PaperBatch,
    PaperEntry,
    Round,
    RoundState,
    Stratum,
)
from evaluation.paper.entry import entry_questions
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from evaluation.voting.ballot import ABSTAIN, ballot_layout
from tests.helpers.voters import Voter, ballots_cast, full_answers, open_with_codes, voted
from tests.helpers.web import PASSWORD, AuthActions, csrf_token

UNIT = "甘肃省局/兰州市局"
STRATUM = "班子成员"
PRINTED = 10


# --- helpers ------------------------------------------------------------------------------------


class Person:
    """One account logged in on its own client."""

    def __init__(self, app: Flask, username: str) -> None:
        self.name = username
        self.client: FlaskClient = app.test_client()
        response = AuthActions(self.client).login(username)
        assert response.status_code == 302, response.get_data(as_text=True)
        self.token = csrf_token(self.client, "/")

    def get(self, url: str) -> Any:
        return self.client.get(url)

    def post(self, url: str, data: dict[str, object]) -> Any:
        return self.client.post(url, data={"csrf_token": self.token, **data})


@pytest.fixture
def clerks(users: dict[str, object]) -> None:
    """Three 计票员 of 甘肃省局/兰州市局 (beside the usual organiser)."""
    for name in ("clerk1", "clerk2", "clerk3"):
        create_user(actor="test", username=name, password=PASSWORD, role="counter", unit_path=UNIT)
    db.session.commit()


def open_with_paper(rnd: Round) -> Stratum:
    """Open the round with codes, print paper ballots for STRATUM; return that stratum."""
    open_with_codes(rnd)
    stratum = next(s for s in rnd.strata if s.name == STRATUM)
    issue_paper(rnd, stratum, PRINTED, actor="test")
    db.session.commit()
    return stratum


def fresh() -> None:
    """Forget what the test's session holds: the pages wrote in their own transactions."""
    db.session.rollback()
    db.session.expire_all()


def new_batch(clerk: Person, rnd: Round, stratum: Stratum, count: int) -> int:
    response = clerk.post(
        f"/rounds/{rnd.id}/paper/batches", {"stratum": stratum.id, "count": count}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(rf"/rounds/{rnd.id}/paper/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def enter(
    clerk: Person, rnd: Round, batch_id: int, position: int, strokes: list[str], mark: str = ""
) -> Any:
    data: dict[str, object] = {"position": position, "mark": mark}
    data.update({f"q{i}": s for i, s in enumerate(strokes)})
    return clerk.post(f"/rounds/{rnd.id}/paper/{batch_id}", data)


def enter_all(
    clerk: Person, rnd: Round, batch_id: int, ballots: list[tuple[str, list[str]]]
) -> Any:
    """Enter every ballot of a stack in order; the last response."""
    response = None
    for position, (mark, strokes) in enumerate(ballots, 1):
        response = enter(clerk, rnd, batch_id, position, strokes, mark)
        assert response.status_code == 302, response.get_data(as_text=True)
    return response


def count(model: type) -> int:
    return int(db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one())


def stratum_paper(stratum_id: int) -> dict[str, Any]:
    fresh()
    return dict(db.session.get_one(Stratum, stratum_id).paper or {})


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def audit_of(action: str) -> list[AuditEntry]:
    fresh()
    query = db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    return list(db.session.execute(query).scalars())


# --- agreeing clerks ----------------------------------------------------------------------------


def test_two_clerks_who_agree_put_the_stack_in_the_box(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    ballots = [
        ("", ["1"] * n),  # valid
        ("", ["*", "", *["2"] * (n - 2)]),  # valid: 多选 and 未勾选 counted 弃权
        ("w", ["1"] * n),  # 方框外有标记: void whatever else was typed
        ("", [""] * n),  # 空白票
    ]
    clerk1, clerk2 = Person(app, "clerk1"), Person(app, "clerk2")
    batch_id = new_batch(clerk1, sample_round, stratum, len(ballots))
    before = ballots_cast(sample_round.id)

    enter_all(clerk1, sample_round, batch_id, ballots)
    # The second clerk types the voided ballot's other lines differently: it does not matter.
    second = [*ballots[:2], ("w", ["3"] * n), ballots[3]]
    for position, (mark, strokes) in enumerate(second[:-1], 1):
        assert enter(clerk2, sample_round, batch_id, position, strokes, mark).status_code == 302
    fresh()
    assert ballots_cast(sample_round.id) == before  # nothing in the box before the last save
    assert count(PaperEntry) == 2 * len(ballots) - 1

    last = enter(clerk2, sample_round, batch_id, len(ballots), second[-1][1], second[-1][0])
    assert last.status_code == 302
    assert last.headers["Location"].endswith(f"/rounds/{sample_round.id}/paper")
    fresh()
    assert ballots_cast(sample_round.id) == before + 2
    paper = stratum_paper(stratum.id)
    assert paper["printed"] == PRINTED
    assert paper["valid"] == 2
    assert paper["invalid"] == {"outside": 1, "blank": 1}
    assert paper["abstained"] == {"multiple": 1, "unmarked": 1}
    assert count(PaperBatch) == 0 and count(PaperEntry) == 0

    (commit,) = audit_of("paper.commit")
    assert commit.actor == "clerk2"
    assert commit.details == {
        "round_id": sample_round.id,
        "stratum": STRATUM,
        "batch": 1,
        "valid": 2,
        "invalid": 2,
    }
    # No entry of the audit trail carries a keystroke or a grade.
    for entry in audit_of("paper.batch") + audit_of("paper.commit"):
        assert set(entry.details) <= {"round_id", "stratum", "batch", "count", "valid", "invalid"}

    page = text(clerk1.get(f"/rounds/{sample_round.id}/paper"))
    assert "两位计票员录入一致" not in page  # the flash went to clerk2
    assert "没有录入中的批次" in page
    assert "方框外有标记 1" in page and "空白票 1" in page
    assert "多选 1" in page and "未勾选 1" in page
    flashed = text(clerk2.get(f"/rounds/{sample_round.id}/paper"))
    assert "已放入投票箱：有效 2 张，废票 2 张" in flashed
    # The stack is gone: entering it again says so.
    gone = clerk1.get(f"/rounds/{sample_round.id}/paper/{batch_id}")
    assert gone.status_code == 404 and "已经核对入箱" in text(gone)


def test_full_width_keys_from_a_chinese_input_method_agree_with_plain_ones(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1, clerk2 = Person(app, "clerk1"), Person(app, "clerk2")
    batch_id = new_batch(clerk1, sample_round, stratum, 1)
    enter_all(clerk1, sample_round, batch_id, [("", ["１", "＊", *["2"] * (n - 2)])])
    enter_all(clerk2, sample_round, batch_id, [("", ["1", "*", *["２"] * (n - 2)])])
    assert stratum_paper(stratum.id)["valid"] == 1
    assert count(PaperBatch) == 0


# --- disagreement -------------------------------------------------------------------------------


def test_only_the_differing_ballots_are_shown_and_resolving_them_commits(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    questions = entry_questions(sample_round, stratum.id)
    n = len(questions)
    clerk1, clerk2 = Person(app, "clerk1"), Person(app, "clerk2")
    batch_id = new_batch(clerk1, sample_round, stratum, 4)
    ballots = [("", ["1"] * n) for _ in range(4)]
    enter_all(clerk1, sample_round, batch_id, ballots)
    theirs = list(ballots)
    theirs[1] = ("", ["2", *["1"] * (n - 1)])  # ballot 2: first question read differently
    theirs[2] = ("w", ["1"] * n)  # ballot 3: one saw a mark outside the boxes
    last = enter_all(clerk2, sample_round, batch_id, theirs)
    # Both have entered everything and they differ: the second clerk is taken to 核定.
    assert last.headers["Location"].endswith(f"/paper/{batch_id}/resolve")
    fresh()
    assert count(PaperBatch) == 1 and count(PaperEntry) == 8
    before = ballots_cast(sample_round.id)

    watching = text(clerk1.get(f"/rounds/{sample_round.id}/paper"))
    assert "2 张不一致，待核定" in watching

    page = text(clerk2.get(f"/rounds/{sample_round.id}/paper/{batch_id}/resolve"))
    assert "2 张不一致" in page
    assert re.findall(r'id="ballot-(\d+)"', page) == ["2", "3"]
    # Both readings of the differing line, under each clerk's name.
    first_q = questions[0]
    rows = re.findall(r'<tr class="differs">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    assert first_q.grade_labels[0] in rows[0] and first_q.grade_labels[1] in rows[0]
    assert "正常" in rows[1] and "方框外有标记（整张作废）" in rows[1]
    assert "<th>clerk1</th><th>clerk2</th>" in page
    # The first differing line has the focus; the agreed lines keep the agreed key.
    assert re.search(r'id="q0-2"[^>]*data-differs autofocus', page)
    assert re.search(r'id="q1-2"[^>]*value="1"', page)

    # Only the two clerks of the stack see it; a third 计票员 and the organiser do not.
    clerk3 = Person(app, "clerk3")
    assert clerk3.get(f"/rounds/{sample_round.id}/paper/{batch_id}/resolve").status_code == 403
    organiser = Person(app, "organiser")
    assert organiser.get(f"/rounds/{sample_round.id}/paper/{batch_id}/resolve").status_code == 403

    url = f"/rounds/{sample_round.id}/paper/{batch_id}/resolve"
    data: dict[str, object] = {"position": 2, "mark": ""}
    data.update({f"q{i}": "2" if i == 0 else "1" for i in range(n)})
    # A bad key is refused with the line named, and nothing is settled.
    refused = clerk1.post(url, {**data, "q0": "9"})
    assert refused.status_code == 422
    assert f"第 2 张：第 {first_q.number} 栏（{first_q.subject_name} · 总体评价）" in text(refused)
    assert clerk3.post(url, data).status_code == 403
    # Out of the stack: refused, and the stack is not broken by it.
    assert clerk1.post(url, {**data, "position": 9}).status_code == 400

    settled = clerk1.post(url, data)
    assert settled.status_code == 302 and settled.headers["Location"].endswith("/resolve")
    page = text(clerk1.get(url))
    assert re.findall(r'id="ballot-(\d+)"', page) == ["3"]

    done = clerk1.post(url, {"position": 3, "mark": "w", **{f"q{i}": "" for i in range(n)}})
    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"/rounds/{sample_round.id}/paper")
    fresh()
    assert ballots_cast(sample_round.id) == before + 3
    paper = stratum_paper(stratum.id)
    assert paper["valid"] == 3 and paper["invalid"] == {"outside": 1}
    assert count(PaperBatch) == 0 and count(PaperEntry) == 0
    resolved = audit_of("paper.resolve")
    assert [(e.actor, e.details["ballot"]) for e in resolved] == [("clerk1", 2), ("clerk1", 3)]
    assert audit_of("paper.commit")[0].details["valid"] == 3


# --- who enters ---------------------------------------------------------------------------------


def test_a_third_clerk_is_refused(app: Flask, clerks: None, sample_round: Round) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1, clerk2, clerk3 = (Person(app, f"clerk{i}") for i in (1, 2, 3))
    batch_id = new_batch(clerk1, sample_round, stratum, 2)
    assert enter(clerk1, sample_round, batch_id, 1, ["1"] * n).status_code == 302
    assert enter(clerk2, sample_round, batch_id, 1, ["1"] * n).status_code == 302

    page = clerk3.get(f"/rounds/{sample_round.id}/paper/{batch_id}")
    assert page.status_code == 403 and "已由两位计票员（clerk1、clerk2）录入" in text(page)
    refused = enter(clerk3, sample_round, batch_id, 2, ["1"] * n)
    assert refused.status_code == 403
    # A bad key from the third clerk is refused as the third clerk, not shown as a form.
    assert enter(clerk3, sample_round, batch_id, 2, ["9"] * n).status_code == 403
    fresh()
    assert count(PaperEntry) == 2
    listing = text(clerk3.get(f"/rounds/{sample_round.id}/paper"))
    assert "clerk1：1/2" in listing and "clerk2：1/2" in listing
    assert f'/paper/{batch_id}"' not in listing  # no 录入 link for the third
    assert f'/paper/{batch_id}"' in text(clerk2.get(f"/rounds/{sample_round.id}/paper"))


def test_the_same_clerk_cannot_be_both(app: Flask, clerks: None, sample_round: Round) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1 = Person(app, "clerk1")
    batch_id = new_batch(clerk1, sample_round, stratum, 2)
    enter_all(clerk1, sample_round, batch_id, [("", ["1"] * n), ("", ["1"] * n)])
    # Entering the stack a second time only replaces the clerk's own entries.
    enter_all(clerk1, sample_round, batch_id, [("", ["1"] * n), ("", ["1"] * n)])
    fresh()
    assert count(PaperEntry) == 2 and count(PaperBatch) == 1
    assert ballots_cast(sample_round.id) == 0
    page = text(clerk1.get(f"/rounds/{sample_round.id}/paper/{batch_id}"))
    assert "您已录完本批全部 2 张" in page and "等待另一位计票员" in page
    assert "录入中（需两位计票员）" in text(clerk1.get(f"/rounds/{sample_round.id}/paper"))
    # Nor can the one clerk settle the stack.
    resolve = clerk1.get(f"/rounds/{sample_round.id}/paper/{batch_id}/resolve")
    assert resolve.status_code == 200 and "两位计票员都录完这一批后才能比对" in text(resolve)
    url = f"/rounds/{sample_round.id}/paper/{batch_id}/resolve"
    data = {"position": 1, "mark": "", **{f"q{i}": "1" for i in range(n)}}
    assert clerk1.post(url, data).status_code == 400
    fresh()
    assert count(PaperBatch) == 1 and ballots_cast(sample_round.id) == 0


def test_a_clerk_may_enter_a_ballot_again(app: Flask, clerks: None, sample_round: Round) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1, clerk2 = Person(app, "clerk1"), Person(app, "clerk2")
    batch_id = new_batch(clerk1, sample_round, stratum, 2)
    url = f"/rounds/{sample_round.id}/paper/{batch_id}"
    enter_all(clerk1, sample_round, batch_id, [("", ["1"] * n), ("", ["1"] * n)])

    again = text(clerk1.get(f"{url}?position=1"))
    assert "第 <strong>1</strong> 张" in again
    assert re.search(r'id="q0" name="q0" value="1"', again)  # what was typed, to correct
    assert clerk1.get(f"{url}?position=3").status_code == 400
    assert enter(clerk1, sample_round, batch_id, 1, ["3"] * n).status_code == 302
    # The next ballot to enter is still none: the clerk has entered both.
    assert "您已录完本批全部 2 张" in text(clerk1.get(url))

    enter_all(clerk2, sample_round, batch_id, [("", ["3"] * n), ("", ["1"] * n)])
    fresh()
    assert count(PaperBatch) == 0  # agreed with the corrected reading: in the box
    assert stratum_paper(stratum.id)["valid"] == 2


def test_a_bad_keystroke_is_refused_with_the_field_named(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    questions = entry_questions(sample_round, stratum.id)
    n = len(questions)
    clerk1 = Person(app, "clerk1")
    batch_id = new_batch(clerk1, sample_round, stratum, 2)
    third = questions[2]
    grades = len(third.grade_keys)

    strokes = ["1"] * n
    strokes[2] = str(grades + 1)
    refused = enter(clerk1, sample_round, batch_id, 1, strokes)
    assert refused.status_code == 422
    page = text(refused)
    where = f"{third.subject_name} · {third.legend}"
    assert f"第 {third.number} 栏（{where}）：等次只有 1 至 {grades}" in page
    # The page keeps what was typed and puts the focus on the bad line.
    assert re.search(rf'id="q2"[^>]*value="{grades + 1}"[^>]*autofocus aria-invalid="true"', page)
    assert re.search(r'id="q1" name="q1" value="1"', page)

    for mark, bad, message in [
        ("x", [], "票面一栏只能留空（正常）或输入：w=方框外有标记"),
        ("", ["q"], "不认识的键“q”"),
        ("", ["12"], "每栏只输入一个键"),
        ("", ["٣"], "每栏只输入一个键"),
    ]:
        strokes = [*bad, *["1"] * (n - len(bad))]
        response = enter(clerk1, sample_round, batch_id, 1, strokes, mark)
        assert response.status_code == 422, (mark, bad)
        assert message in text(response)
    too_few = enter(clerk1, sample_round, batch_id, 1, ["1"] * (n - 1))
    assert too_few.status_code == 422 and "栏数与本类别的选票不符" in text(too_few)
    outside = enter(clerk1, sample_round, batch_id, 3, ["1"] * n)
    assert outside.status_code == 400 and "第 1 批只有 2 张" in text(outside)
    assert enter(clerk1, sample_round, batch_id, "²", ["1"] * n).status_code == 400  # type: ignore[arg-type]
    fresh()
    assert count(PaperEntry) == 0
    assert count(PaperBatch) == 1


def test_a_stack_is_checked_against_the_ballots_printed(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    clerk1 = Person(app, "clerk1")
    new_batch(clerk1, sample_round, stratum, 6)
    more = clerk1.post(
        f"/rounds/{sample_round.id}/paper/batches", {"stratum": stratum.id, "count": 5}
    )
    assert more.status_code == 400
    assert f"共印制纸质选票 {PRINTED} 张，已录入 0 张，录入中 6 张" in text(more)
    for bad, said in (
        ("0", "之间"),
        ("abc", "张数“abc”不是整数"),
        ("501", "之间"),
        ("", "请填写本批张数"),
    ):
        refused = clerk1.post(
            f"/rounds/{sample_round.id}/paper/batches", {"stratum": stratum.id, "count": bad}
        )
        assert refused.status_code == 400 and said in text(refused), bad
    fresh()
    assert count(PaperBatch) == 1


def test_entry_is_refused_when_the_round_is_not_open(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = next(s for s in sample_round.strata if s.name == STRATUM)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1 = Person(app, "clerk1")
    draft = clerk1.post(
        f"/rounds/{sample_round.id}/paper/batches", {"stratum": stratum.id, "count": 2}
    )
    assert draft.status_code == 409 and "草稿" in text(draft)
    assert "纸质票只能在测评进行中录入" in text(clerk1.get(f"/rounds/{sample_round.id}/paper"))
    fresh()
    assert count(PaperBatch) == 0

    rnd = db.session.get_one(Round, sample_round.id)
    open_with_paper(rnd)
    batch_id = new_batch(clerk1, rnd, stratum, 2)
    # The round leaves 进行中 under the stack (only a forced state change can do that: the close
    # refuses open stacks and 作废 deletes them); nothing more is entered.
    fresh()
    rnd = db.session.get_one(Round, sample_round.id)
    rnd.state = RoundState.CLOSED
    db.session.commit()
    refused = enter(clerk1, rnd, batch_id, 1, ["1"] * n)
    assert refused.status_code == 409 and "不能录入纸质票" in text(refused)
    page = clerk1.get(f"/rounds/{rnd.id}/paper/{batch_id}")
    assert page.status_code == 302
    fresh()
    assert count(PaperEntry) == 0


# --- the organiser ------------------------------------------------------------------------------


def test_the_organiser_deletes_a_stack_with_a_reason(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1 = Person(app, "clerk1")
    batch_id = new_batch(clerk1, sample_round, stratum, 2)
    enter(clerk1, sample_round, batch_id, 1, ["1"] * n)
    url = f"/rounds/{sample_round.id}/paper/{batch_id}/delete"

    assert clerk1.post(url, {"reason": "录错了"}).status_code == 403
    organiser = Person(app, "organiser")
    page = text(organiser.get(f"/rounds/{sample_round.id}/paper"))
    assert "clerk1：1/2" in page and "删除此批" in page
    no_reason = organiser.post(url, {"reason": "  "})
    assert no_reason.status_code == 400 and "必须填写原因" in text(no_reason)
    fresh()
    assert count(PaperBatch) == 1

    deleted = organiser.post(url, {"reason": "类别选错"})
    assert deleted.status_code == 302
    fresh()
    assert count(PaperBatch) == 0 and count(PaperEntry) == 0
    (entry,) = audit_of("paper.delete")
    assert entry.actor == "organiser" and entry.details["reason"] == "类别选错"
    assert stratum_paper(stratum.id).get("valid", 0) == 0
    # The next stack is 第 2 批: a number once given is never given again in the round, so the
    # audit log's "batch 1" always means one stack.
    again = new_batch(clerk1, sample_round, stratum, 2)
    fresh()
    assert db.session.get_one(PaperBatch, again).number == 2
    assert [e.details["batch"] for e in audit_of("paper.batch")] == [1, 2]


def test_the_close_is_refused_while_a_stack_is_open(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    clerk1 = Person(app, "clerk1")
    new_batch(clerk1, sample_round, stratum, 2)
    organiser = Person(app, "organiser")
    refused = organiser.post(f"/rounds/{sample_round.id}/close", {})
    assert refused.status_code == 400
    assert "还有 1 批纸质票没有核对入箱" in text(refused)
    fresh()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN


def test_the_organiser_sees_the_stacks_but_does_not_enter(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    stratum = open_with_paper(sample_round)
    n = len(entry_questions(sample_round, stratum.id))
    clerk1 = Person(app, "clerk1")
    batch_id = new_batch(clerk1, sample_round, stratum, 2)
    enter(clerk1, sample_round, batch_id, 1, ["1"] * n)
    organiser = Person(app, "organiser")
    page = organiser.get(f"/rounds/{sample_round.id}/paper")
    assert page.status_code == 200
    assert "第 1 批" in text(page) and "新建一批" not in text(page)
    assert f'/paper/{batch_id}"' not in text(page)  # no 录入 link
    base = f"/rounds/{sample_round.id}/paper"
    assert organiser.get(f"{base}/{batch_id}").status_code == 403
    assert organiser.get(f"{base}/{batch_id}?position=1").status_code == 403
    assert enter(organiser, sample_round, batch_id, 2, ["1"] * n).status_code == 403
    created = organiser.post(f"{base}/batches", {"stratum": stratum.id, "count": 1})
    assert created.status_code == 403
    # The round's page links to the stacks.
    detail = text(organiser.get(f"/rounds/{sample_round.id}"))
    assert f'href="{base}"' in detail
    fresh()
    assert count(PaperEntry) == 1 and count(PaperBatch) == 1


def test_a_counter_opens_paper_entry_only(app: Flask, clerks: None, sample_round: Round) -> None:
    open_with_paper(sample_round)
    clerk1 = Person(app, "clerk1")
    rid = sample_round.id
    for url in (
        f"/rounds/{rid}",
        f"/rounds/{rid}/results",
        f"/rounds/{rid}/codes",
        f"/rounds/{rid}/turnout",
        f"/rounds/{rid}/close",
        "/archive",
    ):
        response = clerk1.get(url)
        assert response.status_code == 403, url
        assert "计票员账号只能录入纸质票" in text(response)
    index = text(clerk1.get("/"))
    assert "廉政档案" not in index
    assert f'href="/rounds/{rid}/paper"' in index
    # the next step the list names is the clerk's own, not the organiser's
    assert "录入交回的纸质票" in index and "结束测评" not in index
    assert clerk1.get(f"/rounds/{rid}/paper").status_code == 200
    organiser = Person(app, "organiser")
    assert "廉政档案" in text(organiser.get("/"))


# --- after the close ----------------------------------------------------------------------------


def answers_by_ballot(round_id: int, stratum_id: int) -> dict[Any, frozenset[tuple[int, str, Any]]]:
    rows = db.session.execute(
        db.select(Answer.ballot_id, Answer.subject_id, Answer.item, Answer.grade)
        .join(Ballot, Ballot.id == Answer.ballot_id)
        .where(Ballot.round_id == round_id, Answer.stratum_id == stratum_id)
    ).all()
    out: dict[Any, set[tuple[int, str, Any]]] = {}
    for ballot_id, subject_id, item, grade in rows:
        out.setdefault(ballot_id, set()).add((subject_id, item, grade))
    return {k: frozenset(v) for k, v in out.items()}


def test_after_the_close_paper_ballots_are_stored_like_phone_ones(
    app: Flask, clerks: None, sample_round: Round
) -> None:
    issued = open_with_codes(sample_round)
    stratum = next(s for s in sample_round.strata if s.name == STRATUM)
    issue_paper(sample_round, stratum, PRINTED, actor="test")
    db.session.commit()
    layout = ballot_layout(sample_round, stratum.id)
    n = len(entry_questions(sample_round, stratum.id))
    # Two phone ballots: the first grade everywhere, and 弃权 everywhere.
    best = full_answers(sample_round, 0)
    abstain = {k: ABSTAIN for k in best}
    for code, data in zip(issued[STRATUM], (best, abstain), strict=False):
        assert voted(Voter(app.test_client()).vote(code, data))
    # Three paper ballots the same way, one with a mark outside the boxes.
    clerk1, clerk2 = Person(app, "clerk1"), Person(app, "clerk2")
    batch_id = new_batch(clerk1, sample_round, stratum, 4)
    paper = [("", ["1"] * n), ("", ["0"] * n), ("", ["*", *["1"] * (n - 1)]), ("w", [""] * n)]
    enter_all(clerk1, sample_round, batch_id, paper)
    enter_all(clerk2, sample_round, batch_id, paper)
    fresh()
    assert count(PaperBatch) == 0

    with write_transaction():
        lifecycle.close_round(db.session.get_one(Round, sample_round.id), actor="test")
    fresh()
    assert count(PaperBatch) == 0 and count(PaperEntry) == 0
    assert [c.name for c in Ballot.__table__.columns] == ["id", "round_id", "stratum_id"]

    by_ballot = answers_by_ballot(sample_round.id, stratum.id)
    assert len(by_ballot) == 2 + 3
    # Every ballot of the stratum answers the same questions.
    questions = {(s.subject_id, q.item) for s in layout for q in s.questions}
    for answers in by_ballot.values():
        assert {(sid, item) for sid, item, _ in answers} == questions
    # A grade is a grade key of its question or NULL (弃权): nothing else marks a paper ballot.
    keys = {
        (s.subject_id, q.item): {c.value for c in q.choices if c.value != ABSTAIN}
        for s in layout
        for q in s.questions
    }
    for answers in by_ballot.values():
        for sid, item, grade in answers:
            assert grade is None or grade in keys[(sid, item)]
    # The paper ballot read as "1" everywhere is the phone ballot that picked the first grade,
    # row for row; likewise 弃权 everywhere. The 多选 ballot differs only by its NULL.
    patterns = Counter(by_ballot.values())
    first = frozenset(
        (s.subject_id, q.item, q.choices[0].value) for s in layout for q in s.questions
    )
    nothing = frozenset((s.subject_id, q.item, None) for s in layout for q in s.questions)
    assert patterns[first] == 2 and patterns[nothing] == 2
    assert sum(patterns.values()) == 5
    rnd = db.session.get_one(Round, sample_round.id)
    assert rnd.state == RoundState.CLOSED
    counts = stratum_paper(stratum.id)
    assert counts["valid"] == 3 and counts["invalid"] == {"outside": 1}
