"""The anonymity guarantees that need code rather than schema (SPEC §5.3, §5.10).

While a round is open nothing about a ballot is stored in clear and the ``code`` table is not
written: ballots wait sealed in the round's box (``evaluation.voting.box``). At close, in one
transaction, the box is opened and

* the ballots, their answers and the receipts are written in clear for the first and only time,
  in a random order with random ballot keys, so row order, rowid, ctid and xmin say nothing
  about who voted when;
* every code row of the round is written again, in a random order with new row ids, with the
  state it ends with: no version of a code row, live or dead, carries the time (or the
  transaction) of its use, and the ids no longer follow the rows of the codes' CSV;
* the box table is dropped and the private key erased.

SQLite runs with ``secure_delete`` so dropped and deleted pages are zeroed; ``scrub_dead_rows``
folds its WAL back once the close has committed. On PostgreSQL the dropped box takes its files
with it, and ``scrub_dead_rows`` vacuums the rewritten code rows' dead versions (which hold
nothing but the codes' states before close).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, text

from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Code, CodeState, Receipt, Round
from evaluation.voting.box import OpenedBallot

_random = secrets.SystemRandom()
log = logging.getLogger(__name__)


def store_in_random_order(
    rnd: Round, ballots: Iterable[OpenedBallot], receipts: Iterable[str]
) -> int:
    """Write the round's ballots, answers and receipts, each in a random order; the count."""
    shuffled = list(ballots)
    _random.shuffle(shuffled)
    new_ballots: list[dict[str, Any]] = []
    new_answers: list[dict[str, Any]] = []
    for ballot in shuffled:
        ballot_id = uuid.uuid4()
        new_ballots.append({"id": ballot_id, "round_id": rnd.id, "stratum_id": ballot.stratum_id})
        new_answers.extend(
            {
                "ballot_id": ballot_id,
                "subject_id": subject_id,
                "item": item,
                "stratum_id": ballot.stratum_id,
                "grade": grade,
            }
            for subject_id, item, grade in ballot.answers
        )
    shuffled_receipts = list(receipts)
    _random.shuffle(shuffled_receipts)
    session = db.session
    for start in range(0, len(new_ballots), 2000):
        session.execute(insert(Ballot), new_ballots[start : start + 2000])
    for start in range(0, len(new_answers), 5000):
        session.execute(insert(Answer), new_answers[start : start + 5000])
    for start in range(0, len(shuffled_receipts), 5000):
        session.execute(
            insert(Receipt),
            [{"digest": d, "round_id": rnd.id} for d in shuffled_receipts[start : start + 5000]],
        )
    session.flush()
    return len(new_ballots)


def rewrite_codes(rnd: Round, used: set[str]) -> None:
    """Write every code row of the round again, in random order, with its final state.

    ``used`` holds the keyed hashes of the codes that cast a ballot; they end ``used`` whatever
    else happened to them (a batch voided while its holder was voting still counts the ballot).
    The slips' serial tags are not written again: once the round is closed no slip can be
    voided, and without them no row says which printed slip voted.
    """
    rows: list[dict[str, Any]] = [
        {
            "round_id": rnd.id,
            "stratum_id": r.stratum_id,
            "batch_id": r.batch_id,
            "digest": r.digest,
            "state": CodeState.USED if r.digest in used else r.state,
        }
        for r in db.session.execute(
            select(Code.stratum_id, Code.batch_id, Code.digest, Code.state).where(
                Code.round_id == rnd.id
            )
        )
    ]
    _random.shuffle(rows)
    db.session.execute(delete(Code).where(Code.round_id == rnd.id))
    # New ids, drawn in the shuffled order: ids no longer follow the codes' CSV rows.
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Code), rows[start : start + 5000])
    db.session.flush()


def scrub_dead_rows() -> None:
    """After a close has committed: fold the old row versions away.

    PostgreSQL keeps the code rows' old versions until VACUUM (they hold only the states
    before close, but there is no reason to keep them); the box went with its table. SQLite
    has zeroed what it deleted (secure_delete) and only needs its WAL folded back.
    """
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM code, round"))
    elif engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            # Outside any transaction, straight on the driver connection. The checkpoint waits
            # (up to the busy timeout) for readers on an old snapshot; if one outlasts it the
            # WAL keeps the box's pages until the next checkpoint, so say so.
            busy = raw.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()[0]
            if busy:
                log.warning(
                    "结束测评后未能截断 SQLite 的 WAL 文件（有读者未结束），下次检查点时回收"
                )
        finally:
            raw.close()
