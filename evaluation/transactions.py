"""The one commit point: every change a page or a command makes is committed here.

Operations change objects and ``flush()``; they never commit. A view or command that writes
runs inside ``write_transaction`` (or is decorated with ``writes``): it takes the write lock
first (``BEGIN IMMEDIATE`` on SQLite, where a reader cannot later become a writer), commits once
when the block ends, rolls everything back on any error, and then runs what the block asked to
run after the commit (``after_commit``: the close's scrub of dead rows, which cannot run inside
a transaction).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from evaluation.extensions import db

P = ParamSpec("P")
T = TypeVar("T")

_WRITING = "evaluation.writing"
_AFTER_COMMIT = "evaluation.after_commit"


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


def in_write_transaction() -> bool:
    """True inside ``write_transaction``: the write lock is held and the commit will follow."""
    return bool(db.session().info.get(_WRITING))


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block as one write transaction: lock, run, commit; roll back on any error.

    Nested use joins the outer transaction (the outermost block commits). After the commit,
    the callbacks registered with ``after_commit`` run in order; after a rollback they are
    dropped.
    """
    session = db.session()
    if session.info.get(_WRITING):
        yield
        return
    begin_write()
    session.info[_WRITING] = True
    session.info[_AFTER_COMMIT] = []
    try:
        yield
        db.session.commit()
    except BaseException:
        session.info.pop(_AFTER_COMMIT, None)
        db.session.rollback()
        raise
    finally:
        session.info.pop(_WRITING, None)
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


def writes(fn: Callable[P, T]) -> Callable[P, T]:
    """Decorator: the view or command runs inside ``write_transaction``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with write_transaction():
            return fn(*args, **kwargs)

    return wrapper


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current write transaction has committed (never if it fails).

    A callback registered twice in one transaction (two rounds closed by one tick) runs once.
    """
    if not in_write_transaction():
        raise RuntimeError("after_commit() outside write_transaction()")
    pending = db.session().info[_AFTER_COMMIT]
    if callback not in pending:
        pending.append(callback)


def read_without_transaction() -> None:
    """Let this request's reads run without BEGIN … ROLLBACK around them (PostgreSQL).

    For requests that read a row or two and write nothing, or write only through
    ``write_transaction`` (which starts a real transaction on a fresh checkout): each statement
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
