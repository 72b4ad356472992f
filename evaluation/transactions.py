"""Transaction helpers shared by every write path."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

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


def read_without_transaction() -> None:
    """Let this request's reads run without BEGIN … ROLLBACK around them (PostgreSQL).

    For requests that read a row or two and write nothing, or write only through
    ``begin_write`` (which starts a real transaction on a fresh checkout): each statement
    stands alone, which saves two round trips to the database per request. Call it before the
    request's first query. On SQLite, where a transaction costs no round trip, it does nothing.
    """
    if db.session().in_transaction() or db.engine.dialect.name != "postgresql":
        return
    db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def end_standalone_reads() -> None:
    """Release a connection left in autocommit by ``read_without_transaction``.

    The application context's teardown removes the session anyway; this also holds where one
    context outlives several requests (the test client), so no later transaction runs on it.
    """
    session = db.session()
    if not session.in_transaction():
        return
    try:
        options = session.connection().get_execution_options()
        standalone = options.get("isolation_level") == "AUTOCOMMIT"
    except SQLAlchemyError:  # the request failed on the database: end its transaction too
        standalone = True
    if standalone:
        session.rollback()
