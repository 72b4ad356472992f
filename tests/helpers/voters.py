"""Helpers shared by the voting tests: issue codes, open a round, and vote like a phone does."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Ballot, Code, CodeState, Receipt, Round
from evaluation.rounds import lifecycle
from evaluation.voting import box
from evaluation.voting.ballot import ABSTAIN, ballot_layout


def ballots_cast(round_id: int) -> int:
    """Ballots cast in a round: sealed in its box while it is open, in clear after close."""
    if box.box_exists(round_id):
        table = box.box_table(round_id)
        query = db.select(db.func.count()).select_from(table).where(table.c.digest != box.KEY_ROW)
        return int(db.session.execute(query).scalar_one())
    return int(
        db.session.execute(
            db.select(db.func.count()).select_from(Ballot).where(Ballot.round_id == round_id)
        ).scalar_one()
    )


def receipts_kept(round_id: int) -> int:
    """Receipts of a round: beside the sealed ballots while open, on their own after close."""
    if box.box_exists(round_id):
        return ballots_cast(round_id)
    return int(
        db.session.execute(
            db.select(db.func.count()).select_from(Receipt).where(Receipt.round_id == round_id)
        ).scalar_one()
    )


def code_state(code: str) -> CodeState:
    """A code's state as voters see it: used once its ballot is in the box, before close too."""
    digest = codes.code_digest(code)
    row = db.session.execute(
        db.select(Code.state, Code.round_id).where(Code.digest == digest)
    ).one()
    # While open a code's row is not written when it votes (its batch may have been voided
    # since, which marks every code of the batch alike): the box says whether it voted.
    if row.state != CodeState.USED and box.box_exists(row.round_id):
        if box.has_voted(row.round_id, digest):
            return CodeState.USED
    return CodeState(row.state)


def issue(rnd: Round, stratum_name: str, count: int) -> list[str]:
    """Issue ``count`` codes for a stratum and commit; return the plaintext codes."""
    issued = codes.issue_batch(rnd, codes.stratum_named(rnd, stratum_name), count, actor="test")
    db.session.commit()
    return list(issued.codes)


def open_with_codes(rnd: Round, per_stratum: int = 3) -> dict[str, list[str]]:
    """Issue codes in every stratum, open the round, and return the codes by stratum."""
    issued = {s.name: issue(rnd, s.name, per_stratum) for s in rnd.strata}
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    return issued


def full_answers(rnd: Round, pick: int = 0) -> dict[str, str]:
    """Form data answering every question with the ``pick``-th choice (wrapping around)."""
    data: dict[str, str] = {}
    for subject in ballot_layout(rnd):
        for q in subject.questions:
            data[q.name] = q.choices[pick % len(q.choices)].value
    return data


def token_of(page: str) -> str:
    """The CSRF token in a page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def voted(response: Any) -> bool:
    """True when a POST /ballot was answered with the thanks page and its receipt."""
    return response.status_code == 200 and 'id="receipt"' in response.get_data(as_text=True)


def receipt_of(response: Any) -> str:
    """The receipt code on a thanks page."""
    match = re.search(r'id="receipt">([^<]+)<', response.get_data(as_text=True))
    assert match, "no receipt on the page"
    return match.group(1).strip()


class Voter:
    """A phone: scans a code, reads the ballot, submits."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def scan(self, code: str) -> Any:
        """GET /v/<code> and, when it redirects, the ballot page."""
        response = self.client.get(f"/v/{code}")
        if response.status_code == 302:
            page = self.client.get("/ballot")
            self.token = token_of(page.get_data(as_text=True))
            return page
        return response

    def submit(self, data: dict[str, str]) -> Any:
        """POST the ballot with the page's CSRF token."""
        return self.client.post("/ballot", data={**data, "csrf_token": self.token})

    def vote(self, code: str, data: dict[str, str]) -> Any:
        """Scan and submit."""
        page = self.scan(code)
        assert page.status_code == 200, page.get_data(as_text=True)
        return self.submit(data)


__all__ = [
    "ABSTAIN",
    "Voter",
    "full_answers",
    "issue",
    "open_with_codes",
    "receipt_of",
    "token_of",
    "voted",
]
