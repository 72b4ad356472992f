"""The anonymity guarantees that need code rather than schema (SPEC §5.3).

While a round is open, ballots arrive in submission order, and the database's own row metadata
follows that order (SQLite's rowid, PostgreSQL's ctid and xmin — the transaction that marked a
code used also inserted the ballot, so both rows carry the same xmin). At close, every ballot,
answer and receipt of the round is deleted and written again in a random order, with new random
ballot keys, in one transaction: afterwards row order, rowid, ctid and xmin say nothing about
who voted when. SQLite runs with ``secure_delete`` so the old rows are overwritten on disk; on
PostgreSQL ``scrub_dead_rows`` vacuums the tables once the close has committed.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import delete, insert, select, text

from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Receipt, Round

_random = secrets.SystemRandom()


def rewrite_in_random_order(rnd: Round) -> int:
    """Rewrite the round's ballots, answers and receipts in random order; return the count."""
    session = db.session
    ballots = session.execute(
        select(Ballot.id, Ballot.stratum_id).where(Ballot.round_id == rnd.id)
    ).all()
    answers: dict[uuid.UUID, list[tuple[int, str, int, str | None]]] = {b.id: [] for b in ballots}
    rows = session.execute(
        select(Answer.ballot_id, Answer.subject_id, Answer.item, Answer.stratum_id, Answer.grade)
        .join(Ballot, Ballot.id == Answer.ballot_id)
        .where(Ballot.round_id == rnd.id)
    )
    for r in rows:
        answers[r.ballot_id].append((r.subject_id, r.item, r.stratum_id, r.grade))
    receipts = list(
        session.execute(select(Receipt.digest).where(Receipt.round_id == rnd.id)).scalars()
    )

    ballot_ids = [b.id for b in ballots]
    # Answers go first (they reference ballots); chunks keep the IN lists small.
    for start in range(0, len(ballot_ids), 500):
        chunk = ballot_ids[start : start + 500]
        session.execute(delete(Answer).where(Answer.ballot_id.in_(chunk)))
    session.execute(delete(Ballot).where(Ballot.round_id == rnd.id))
    session.execute(delete(Receipt).where(Receipt.round_id == rnd.id))

    shuffled = list(ballots)
    _random.shuffle(shuffled)
    new_ballots = []
    new_answers = []
    for old in shuffled:
        new_id = uuid.uuid4()
        new_ballots.append({"id": new_id, "round_id": rnd.id, "stratum_id": old.stratum_id})
        for subject_id, item, stratum_id, grade in answers[old.id]:
            new_answers.append(
                {
                    "ballot_id": new_id,
                    "subject_id": subject_id,
                    "item": item,
                    "stratum_id": stratum_id,
                    "grade": grade,
                }
            )
    _random.shuffle(receipts)
    for start in range(0, len(new_ballots), 2000):
        session.execute(insert(Ballot), new_ballots[start : start + 2000])
    for start in range(0, len(new_answers), 5000):
        session.execute(insert(Answer), new_answers[start : start + 5000])
    for start in range(0, len(receipts), 5000):
        session.execute(
            insert(Receipt),
            [{"digest": d, "round_id": rnd.id} for d in receipts[start : start + 5000]],
        )
    session.flush()
    return len(new_ballots)


def scrub_dead_rows() -> None:
    """After a close has committed: remove the old row versions from disk.

    PostgreSQL keeps deleted tuples (with their old ctid and xmin) until VACUUM; SQLite has
    overwritten them already (secure_delete) and only needs its WAL folded back.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM answer, ballot, receipt"))
    elif engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            # Outside any transaction, straight on the driver connection.
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
