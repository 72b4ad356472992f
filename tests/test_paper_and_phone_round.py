"""Issue 16 end to end: paper and phone in one round, every slip accounted for.

The sample round is issued slips through the codes page (serials read back from the PDFs) and
10 paper ballots of 一般干部; it opens; 30 voters vote on their phones through the voting
pages with known answers (one of them with the replacement of a slip voided by its serial);
two 计票员 enter the 10 paper ballots through the entry pages, disagree on 2, resolve them with
the paper in hand, and agree that 1 is a 废票; the organiser closes the round. Then:

* the 核对 table balances, per stratum, to the slip;
* the sealed tally equals a hand count of the known answers (phone and agreed paper ballots;
  the 废票 counts in turnout, not in any subject's figures);
* the sealed turnout of 一般干部 carries its paper ballots: printed, valid, invalid by rule;
* nothing stored tells a paper ballot from a phone one: the ballot and answer tables have their
  columns only, every ballot of a stratum has the same answer shape, no table keeps a paper
  entry, and no code row keeps its slip's serial tag.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy import inspect

from evaluation.accounts.operations import create_user
from evaluation.codes import reconcile
from evaluation.extensions import db
from evaluation.models import (
    Answer,
    Ballot,
    Code,
    PaperBatch,
    PaperEntry,
    Receipt,
    Round,
    RoundState,
)
from evaluation.paper.entry import EntryQuestion, entry_questions
from evaluation.rounds import lifecycle
from evaluation.voting.ballot import ABSTAIN, ballot_layout
from tests.helpers.slips import read_slips, reconcile_rows
from tests.helpers.voters import Voter, voted
from tests.helpers.web import PASSWORD, AuthActions, csrf_token

A, B, C = "班子成员", "中层干部", "一般干部"
CLERKS = ("clerk1", "clerk2")
# Slips issued; the phone votes cast with them (the 30th voter uses B's replacement slip).
SLIPS = {A: 7, B: 12, C: 15}
PHONE = {A: 6, B: 9, C: 14}
LOST = "B-0010"  # lost before it voted: voided by its serial, replaced by B-0013
PAPER = 10  # paper ballots of 一般干部, all returned and entered
DISAGREE = (3, 7)  # the clerks read these two differently
SPOILED = 10  # 方框外有标记: a 废票

Key = tuple[int, str]  # (subject id, item)


def _client(app: Flask, username: str | None = None) -> FlaskClient:
    client = app.test_client()
    if username:
        AuthActions(client).login(username)
    return client


def _stratum(rnd: Round, name: str) -> Any:
    return next(s for s in rnd.strata if s.name == name)


# --- the voters' answers -----------------------------------------------------------------------


def _phone_answers(rnd: Round, voter: int) -> tuple[dict[str, str], dict[Key, str | None]]:
    """Voter n's ballot: the form data posted, and the grade per question (None = 弃权)."""
    data: dict[str, str] = {}
    grades: dict[Key, str | None] = {}
    for j, subject in enumerate(ballot_layout(rnd)):
        for k, question in enumerate(subject.questions):
            choice = question.choices[(voter * 3 + j + k) % len(question.choices)].value
            data[question.name] = choice
            grades[(subject.subject_id, question.item)] = None if choice == ABSTAIN else choice
    return data, grades


def _paper_truth(questions: list[EntryQuestion], position: int) -> tuple[str, list[str]]:
    """What paper ballot ``position`` really shows: the 票面 mark and a keystroke per question.

    Besides grades: a ticked 弃权 (0), 多选 (*) and 未勾选 ("") on three ballots, each counted
    as 弃权; ballot SPOILED has a mark outside the boxes.
    """
    if position == SPOILED:
        return "w", ["" for _ in questions]
    strokes = [str((position + q.index) % len(q.grade_keys) + 1) for q in questions]
    if position == 4 and questions[0].abstain:
        strokes[0] = "0"
    if position == 5:
        strokes[1] = "*"
    if position == 6:
        strokes[2] = ""
    return "", strokes


def _paper_grades(questions: list[EntryQuestion], strokes: list[str]) -> dict[Key, str | None]:
    grades: dict[Key, str | None] = {}
    for question, stroke in zip(questions, strokes, strict=True):
        grade = question.grade_keys[int(stroke) - 1] if stroke not in ("", "0", "*") else None
        grades[(question.subject_id, question.item)] = grade
    return grades


def _misread(questions: list[EntryQuestion], position: int) -> tuple[str, list[str]]:
    """The second clerk's slip on the two ballots they disagree on."""
    mark, strokes = _paper_truth(questions, position)
    if position == DISAGREE[0]:
        keys = len(questions[0].grade_keys)
        strokes[0] = str(int(strokes[0]) % keys + 1)  # another grade
    else:
        mark = "w"  # read a stray mark that is not there
    return mark, strokes


# --- the clerks' pages -------------------------------------------------------------------------


def _form(mark: str, strokes: list[str]) -> dict[str, str]:
    return {"mark": mark} | {f"q{i}": s for i, s in enumerate(strokes)}


def _enter_stack(
    clients: dict[str, FlaskClient], rnd: Round, questions: list[EntryQuestion]
) -> int:
    """Both clerks enter the stack through the entry pages; the batch's id."""
    first = clients[CLERKS[0]]
    stratum_id = _stratum(rnd, C).id
    token = csrf_token(first, f"/rounds/{rnd.id}/paper")
    created = first.post(
        f"/rounds/{rnd.id}/paper/batches",
        data={"csrf_token": token, "stratum": str(stratum_id), "count": str(PAPER)},
    )
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    entry_url = created.headers["Location"]
    batch_id = int(entry_url.rstrip("/").rsplit("/", 1)[1])
    for clerk in CLERKS:
        client = clients[clerk]
        for position in range(1, PAPER + 1):
            page = client.get(f"/rounds/{rnd.id}/paper/{batch_id}").get_data(as_text=True)
            assert f"第 <strong>{position}</strong> 张 / 共 {PAPER} 张" in page, page[:3000]
            token = html.fromstring(page).xpath("//input[@name='csrf_token']/@value")[0]
            if clerk == CLERKS[1] and position in DISAGREE:
                mark, strokes = _misread(questions, position)
            else:
                mark, strokes = _paper_truth(questions, position)
            saved = client.post(
                f"/rounds/{rnd.id}/paper/{batch_id}",
                data={"csrf_token": token, "position": str(position), **_form(mark, strokes)},
            )
            assert saved.status_code == 302, saved.get_data(as_text=True)[:3000]
    # The second clerk's last ballot leads to the differences.
    assert saved.headers["Location"].endswith(f"/paper/{batch_id}/resolve")
    return batch_id


def _resolve(client: FlaskClient, rnd: Round, batch_id: int, questions: list[EntryQuestion]) -> Any:
    url = f"/rounds/{rnd.id}/paper/{batch_id}/resolve"
    page = html.fromstring(client.get(url).get_data(as_text=True))
    shown = [" ".join(h.text_content().split()) for h in page.xpath("//form//h2")]
    assert shown == [f"第 {p} 张" for p in DISAGREE]  # only the two that differ
    response = None
    for position in DISAGREE:
        token = csrf_token(client, url)
        mark, strokes = _paper_truth(questions, position)
        response = client.post(
            url, data={"csrf_token": token, "position": str(position), **_form(mark, strokes)}
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return response


# --- the hand count ----------------------------------------------------------------------------


def _hand_count(ballots: list[dict[Key, str | None]]) -> dict[Key, tuple[dict[str, int], int]]:
    """Per question: votes per grade and abstentions."""
    counts: dict[Key, Counter[str]] = {}
    abstained: Counter[Key] = Counter()
    for ballot in ballots:
        for key, grade in ballot.items():
            counts.setdefault(key, Counter())
            if grade is None:
                abstained[key] += 1
            else:
                counts[key][grade] += 1
    return {key: (dict(c), abstained[key]) for key, c in counts.items()}


def _sealed_counts(result: dict[str, Any]) -> dict[Key, tuple[dict[str, int], int]]:
    out: dict[Key, tuple[dict[str, int], int]] = {}
    for subject in result["subjects"]:
        nonzero = {g: n for g, n in subject["counts"].items() if n}
        out[(subject["subject_id"], "")] = (nonzero, subject["abstentions"])
        for item in subject["items"]:
            figures = item["figures"]
            counts = {g: n for g, n in figures["counts"].items() if n}
            out[(subject["subject_id"], item["code"])] = (counts, figures["abstentions"])
    return out


# --- the test ----------------------------------------------------------------------------------


def test_paper_and_phone_in_one_round(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    rnd = sample_round
    for clerk in CLERKS:
        create_user(
            actor="test",
            username=clerk,
            password=PASSWORD,
            role="counter",
            unit_path="甘肃省局/兰州市局",
        )
    db.session.commit()

    # The organiser issues slips and prints the paper ballots from the codes page.
    auth.login("organiser")
    slips: dict[str, str] = {}
    for name, count in SLIPS.items():
        token = csrf_token(client, f"/rounds/{rnd.id}/codes")
        response = client.post(
            f"/rounds/{rnd.id}/codes/issue",
            data={
                "csrf_token": token,
                "stratum": str(_stratum(rnd, name).id),
                "count": str(count),
                "format": "pdf",
            },
        )
        assert response.mimetype == "application/pdf", response.get_data(as_text=True)[:2000]
        slips.update(read_slips(response.data, tmp_path, f"{name}.pdf"))
    assert len(slips) == sum(SLIPS.values())
    assert "C-0015" in slips and "B-0012" in slips
    token = csrf_token(client, f"/rounds/{rnd.id}/codes")
    printed = client.post(
        f"/rounds/{rnd.id}/codes/paper-ballots",
        data={"csrf_token": token, "stratum": str(_stratum(rnd, C).id), "count": str(PAPER)},
    )
    assert printed.mimetype == "application/pdf"
    lifecycle.open_round(rnd, actor="organiser")
    db.session.commit()

    # 29 voters vote with their slips; B-0010 is lost, voided and replaced; its replacement
    # is the 30th voter.
    cast: dict[str, list[dict[Key, str | None]]] = {A: [], B: [], C: []}
    voter_no = 0

    def vote(stratum: str, code: str) -> None:
        nonlocal voter_no
        voter_no += 1
        data, grades = _phone_answers(rnd, voter_no)
        phone = Voter(app.test_client())
        assert phone.scan(code).status_code == 200
        assert voted(phone.submit(data)), stratum
        cast[stratum].append(grades)

    letters = {A: "A", B: "B", C: "C"}
    for name, count in PHONE.items():
        for number in range(1, count + 1):
            vote(name, slips[f"{letters[name]}-{number:04d}"])
    token = csrf_token(client, f"/rounds/{rnd.id}/codes")
    replacement = client.post(
        f"/rounds/{rnd.id}/codes/void-slip",
        data={"csrf_token": token, "serial": "b10", "reason": "遗失", "reissue": "yes"},
    )
    assert replacement.mimetype == "application/pdf", replacement.get_data(as_text=True)[:2000]
    ((new_serial, new_code),) = read_slips(replacement.data, tmp_path, "replacement.pdf")
    assert new_serial == "B-0013"
    lost = Voter(app.test_client()).scan(slips[LOST])
    assert lost.status_code == 404  # the lost slip no longer votes
    vote(B, new_code)
    assert voter_no == 30

    # Two clerks enter the paper ballots, disagree on two, resolve them.
    questions = entry_questions(rnd, _stratum(rnd, C).id)
    assert len(questions) >= 3
    clerks = {name: _client(app, name) for name in CLERKS}
    batch_id = _enter_stack(clerks, rnd, questions)
    done = _resolve(clerks[CLERKS[0]], rnd, batch_id, questions)
    assert done.headers["Location"].endswith(f"/rounds/{rnd.id}/paper")
    batches = clerks[CLERKS[0]].get(done.headers["Location"]).get_data(as_text=True)
    assert "两位计票员录入一致，已放入投票箱：有效 9 张，废票 1 张" in batches
    paper_ballots = []
    for position in range(1, PAPER + 1):
        mark, strokes = _paper_truth(questions, position)
        if not mark:
            paper_ballots.append(_paper_grades(questions, strokes))
    assert len(paper_ballots) == PAPER - 1
    # A clerk sees no result and cannot issue codes.
    assert clerks[CLERKS[0]].get(f"/rounds/{rnd.id}/codes").status_code == 403

    # The organiser closes the round through its page.
    token = csrf_token(client, f"/rounds/{rnd.id}/close")
    closed = client.post(f"/rounds/{rnd.id}/close", data={"csrf_token": token})
    assert closed.status_code == 303, closed.get_data(as_text=True)[:3000]
    db.session.expire_all()
    rnd = db.session.get_one(Round, rnd.id)
    assert rnd.state == RoundState.CLOSED

    # --- the reconciliation balances, to the slip -------------------------------------------
    accounts = reconcile.reconcile(rnd)
    assert accounts.balanced and accounts.note is None and accounts.open_batches == 0
    rows = reconcile_rows(client.get(f"/rounds/{rnd.id}/codes").get_data(as_text=True))
    figures = {
        name: tuple(row.figures[k] for k in ("issued", "reissued", "voided", "phone"))
        + tuple(row.figures[k] for k in ("paper_valid", "paper_invalid", "unreturned"))
        for name, row in rows.items()
    }
    #                发出 补发 作废 手机 纸有效 纸废 未交回
    assert figures == {
        A: (7, 0, 0, 6, 0, 0, 1),
        B: (13, 1, 1, 10, 0, 0, 2),
        C: (25, 0, 0, 14, 9, 1, 1),
    }
    assert all(row.balances and row.status == "平衡" for row in rows.values())

    # --- the sealed tally is the hand count ---------------------------------------------------
    result = rnd.sealed_result
    assert result is not None
    every_ballot = cast[A] + cast[B] + cast[C] + paper_ballots
    assert len(every_ballot) == 39 and result["ballots"] == 39
    assert _sealed_counts(result) == _hand_count(every_ballot)
    # Per stratum too: 一般干部's cell holds its 14 phone and 9 paper ballots.
    by_stratum = {_stratum(rnd, n).id: cast[n] + (paper_ballots if n == C else []) for n in cast}
    for subject in result["subjects"]:
        for cell in subject["strata"]:
            ballots = by_stratum[cell["stratum_id"]]
            assert cell["ballots"] == len(ballots)
            expected = _hand_count(ballots)[(subject["subject_id"], "")]
            figures = cell["figures"]
            shown = ({g: n for g, n in figures["counts"].items() if n}, figures["abstentions"])
            assert shown == expected, (subject["name"], cell["name"])
    turnout = result["turnout"]
    # The 废票 counts in turnout: 30 phone + 9 valid + 1 废票 used, of 7 + 12 + 25 issued (the
    # voided slip B-0010 never voted and its batch is large, so it is not issued).
    assert (turnout["issued"], turnout["used"]) == (44, 40)
    by_name = {s["name"]: s for s in turnout["strata"]}
    assert {n: (s["issued"], s["used"]) for n, s in by_name.items()} == {
        A: (7, 6),
        B: (12, 10),
        C: (25, 24),
    }
    assert by_name[C]["paper"] == {
        "printed": 10,
        "valid": 9,
        "invalid": {"方框外有标记": 1},
        "abstained": {"多选": 1, "未勾选": 1},
    }
    assert "paper" not in by_name[A] and "paper" not in by_name[B]

    # --- nothing stored tells a paper ballot from a phone one -----------------------------------
    inspector = inspect(db.engine)
    assert {c["name"] for c in inspector.get_columns("ballot")} == {"id", "round_id", "stratum_id"}
    assert {c["name"] for c in inspector.get_columns("answer")} == {
        "ballot_id",
        "subject_id",
        "item",
        "stratum_id",
        "grade",
    }
    shapes: dict[int, set[frozenset[Key]]] = {}
    for ballot in db.session.execute(db.select(Ballot)).scalars():
        keys = frozenset((a.subject_id, a.item) for a in ballot.answers)
        shapes.setdefault(ballot.stratum_id, set()).add(keys)
    # Every ballot of a stratum answers the same questions, paper or phone (14 + 9 in 一般干部).
    assert all(len(s) == 1 for s in shapes.values()), shapes
    c_id = _stratum(rnd, C).id
    in_c = db.session.execute(
        db.select(db.func.count()).select_from(Ballot).where(Ballot.stratum_id == c_id)
    ).scalar_one()
    assert in_c == PHONE[C] + PAPER - 1
    answers = db.session.execute(db.select(db.func.count()).select_from(Answer)).scalar_one()
    assert answers == sum(len(b) for b in every_ballot)
    # Each ballot has a receipt row, paper ones too: their count says nothing either.
    receipts = db.session.execute(db.select(db.func.count()).select_from(Receipt)).scalar_one()
    assert receipts == 39
    for model in (PaperBatch, PaperEntry):
        assert db.session.execute(db.select(db.func.count()).select_from(model)).scalar() == 0
    tags = db.session.execute(db.select(Code.serial_tag)).scalars().all()
    assert len(tags) == sum(SLIPS.values()) + 1 and set(tags) == {None}
