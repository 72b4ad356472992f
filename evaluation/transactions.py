"""Transaction helpers shared by every write path."""

from __future__ import annotations

from evaluation.extensions import db


def begin_write() -> None:
    """Start the session's next transaction as a writer.

    On SQLite this issues ``BEGIN IMMEDIATE`` so the transaction holds the write lock from its
    first statement: a deferred transaction that reads and then writes cannot wait for the lock
    and fails with "database is locked" under concurrent voters. On PostgreSQL it is a plain
    ``BEGIN``. Anything read earlier in the request is committed (it holds no changes).
    """
    if db.session().in_transaction():
        if db.session.dirty or db.session.new or db.session.deleted:
            raise RuntimeError("begin_write() called with unsaved changes in the session")
        db.session.commit()
    db.session.connection(execution_options={"write": True})
