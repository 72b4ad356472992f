"""Concurrent voters (SPEC §6): one code, many simultaneous submissions → exactly one ballot.

Real threads, each with its own client, session and database connection, against a file-backed
SQLite database and against PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

from flask import Flask

from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Code, CodeState, Receipt
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from evaluation.voting.ballot import ballot_layout
from tests.helpers.voters import Voter, full_answers, open_with_codes


def close(rnd) -> None:  # type: ignore[no-untyped-def]
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()


def count(model, *where) -> int:  # type: ignore[no-untyped-def]
    query = db.select(db.func.count()).select_from(model)
    for clause in where:
        query = query.where(clause)
    return int(db.session.execute(query).scalar_one())


def run_voters(app: Flask, jobs: list[str], data: dict[str, str]) -> list[int]:
    """Each job is a code: scan it in its own thread, wait for all, then submit together."""
    barrier = threading.Barrier(len(jobs))
    statuses: list[int] = [0] * len(jobs)
    errors: list[BaseException] = []

    def voter(index: int, code: str) -> None:
        try:
            client = app.test_client()
            v = Voter(client)
            page = v.scan(code)
            assert page.status_code == 200, page.status_code
            barrier.wait(timeout=60)
            statuses[index] = v.submit(data).status_code
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=voter, args=(i, c)) for i, c in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return statuses


def test_one_code_submitted_at_once_from_many_phones_stores_one_ballot(
    app: Flask, sample_round
) -> None:
    code = open_with_codes(sample_round, 1)["班子成员"][0]
    data = full_answers(sample_round)
    db.session.commit()
    statuses = run_voters(app, [code] * 12, data)
    assert Counter(statuses) == Counter({200: 1, 409: 11})
    db.session.commit()
    close(sample_round)
    assert count(Ballot) == 1
    assert count(Answer) == len(sample_round.subjects)
    assert count(Receipt) == 1
    assert count(Code, Code.state == CodeState.USED) == 1


def test_many_codes_at_once_are_all_stored(app: Flask, sample_round) -> None:
    issued = open_with_codes(sample_round, 10)
    jobs = [c for batch in issued.values() for c in batch][:24]
    data = full_answers(sample_round, pick=1)
    db.session.commit()  # end this thread's read transaction before the voters write
    statuses = run_voters(app, jobs, data)
    assert statuses == [200] * len(jobs)
    db.session.commit()
    close(sample_round)
    used = count(Code, Code.state == CodeState.USED)
    assert used == count(Ballot) == count(Receipt) == len(jobs)
    assert count(Answer) == len(jobs) * len(sample_round.subjects)


def test_close_while_voting_leaves_ballots_equal_to_used_codes(app: Flask, sample_round) -> None:
    issued = open_with_codes(sample_round, 10)
    strata = {s.name: s.id for s in sample_round.strata}
    jobs = [(c, strata[name]) for name, batch in issued.items() for c in batch][:20]
    answers = [(s.id, "", None) for s in sample_round.subjects]
    round_id = sample_round.id
    held = SimpleNamespace(id=round_id, created_at=sample_round.created_at)
    layout = ballot_layout(sample_round)
    db.session.commit()
    start = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    def cast(code: str, stratum: int) -> None:
        from evaluation.errors import DomainError
        from evaluation.voting.views import cast_ballot

        with app.app_context():
            start.wait(timeout=30)
            try:
                cast_ballot(codes.code_digest(code), held, stratum, layout, answers)
                outcome = "stored"
            except DomainError as exc:
                outcome = type(exc).__name__
            finally:
                db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=cast, args=job) for job in jobs]
    for t in threads:
        t.start()
    start.set()
    with app.app_context():
        from evaluation.models import Round
        from evaluation.transactions import begin_write

        begin_write()  # as the organiser's close does: the write lock before the read
        rnd = db.session.get_one(Round, round_id)
        with write_transaction():
            lifecycle.close_round(rnd, actor="test")
        db.session.commit()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == len(jobs)
    assert set(outcomes) <= {"stored", "RoundClosed"}
    db.session.commit()
    stored = outcomes.count("stored")
    assert count(Ballot) == count(Code, Code.state == CodeState.USED) == stored
    assert count(Receipt) == stored
