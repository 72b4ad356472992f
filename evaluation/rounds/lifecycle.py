"""The round's lifecycle: the only place that opens, closes, archives and voids a round.

Every path — the organiser's pages, ``flask round …``, ``flask round tick``, the voting request
that finds a closing time passed — calls these functions, inside the one commit point
(``evaluation.transactions.write_transaction``). Opening makes the round's sealed ballot box
(``evaluation.voting.box``). Closing is the heaviest move and the only clean one (SPEC §5.10):
the box is opened, the ballots written in clear once in random order, the codes rewritten, the
box dropped with its key, the result sealed; once that has committed the old row versions are
scrubbed from disk.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete

from evaluation import audit
from evaluation.archive.entries import append_round
from evaluation.codes import codes, reconcile
from evaluation.errors import DomainError, InputError, StateError
from evaluation.extensions import db
from evaluation.models import PaperBatch, Round, RoundState, utcnow
from evaluation.rounds.operations import unrated_problems
from evaluation.rounds.state import require_state, round_forms, schedule_due, transition
from evaluation.tally.aggregate import seal_round
from evaluation.transactions import after_commit, in_write_transaction, write_transaction
from evaluation.voting import box
from evaluation.voting.anonymity import rewrite_codes, scrub_dead_rows, store_in_random_order

SCHEDULE_ACTOR = "计划任务"
log = logging.getLogger(__name__)


def prepare_scrutineer_key(rnd: Round, *, actor: str) -> bytes:
    """In draft: make the box's key pair for 监票人保管; the caller hands the private key over.

    The round then opens only with that key presented back (``open_round(key=…)``), and no
    longer opens or closes on a schedule. Called again, it replaces the pair.
    """
    require_state(rnd, RoundState.DRAFT, action="生成投票箱密钥")
    private_key = box.prepare_scrutineer_key(rnd)
    db.session.flush()
    audit.record(
        actor,
        "round.box_key",
        round_id=rnd.id,
        key=box.fingerprint(bytes(rnd.box_public_key or b"")),
    )
    return private_key


def open_problems(rnd: Round) -> list[str]:
    """What still stops a draft from opening, in words (empty when ready), for the
    confirmation page to say before the organiser confirms; ``open_round`` checks the same."""
    problems = []
    if not rnd.strata:
        problems.append("还没有测评人员类别：请先添加至少一个")
    if not rnd.subjects:
        problems.append("还没有测评对象：请先添加至少一个")
    problems.extend(unrated_problems(rnd) if rnd.strata and rnd.subjects else [])
    problems.extend(
        f"“{form.title}”的测评内容由每次测评活动设定（当年的重点任务），请先在测评活动页面填写"
        for form in round_forms(rnd).values()
        if form.items_per_round and not form.items
    )
    return problems


def open_round(rnd: Round, *, actor: str, key: bytes | None = None) -> None:
    """Open a draft round for voting, with its sealed ballot box.

    Under 监票人保管 ``key`` is the private key made in draft, presented back: without it (or
    with another) the round stays a draft.
    """
    require_state(rnd, RoundState.DRAFT, action="开始测评")
    if not rnd.strata:
        raise InputError("请先添加至少一个测评人员类别，再开始测评")
    if not rnd.subjects:
        raise InputError("请先添加至少一个测评对象，再开始测评")
    unrated = unrated_problems(rnd)
    if unrated:
        raise InputError(unrated[0] + "，再开始测评", unrated[1:])
    for form in round_forms(rnd).values():
        if form.items_per_round and not form.items:
            raise InputError(
                f"“{form.title}”的测评内容由每次测评活动设定（当年的重点任务），"
                "请先在测评活动页面填写测评内容，再开始测评"
            )
    box.create_box(rnd, codes.hash_key(), key)  # refuses a wrong 监票人 key before any change
    transition(rnd, RoundState.OPEN, "开始测评")
    db.session.flush()
    audit.record(
        actor,
        "round.open",
        round_id=rnd.id,
        custody=rnd.box_custody,
        key=box.fingerprint(bytes(rnd.box_public_key or b"")),
    )


def close_round(rnd: Round, *, actor: str, key: bytes | None = None) -> None:
    """Close an open round: final. ``key`` is the box's private key under 监票人保管.

    In the caller's write transaction the box is locked and opened (refused, with nothing
    changed, without the right key), the ballots are written in clear in random order, the
    round's codes rewritten, the box dropped with its key, and the result sealed; once that has
    committed, dead row versions are scrubbed from disk. A close outside ``write_transaction``
    is refused: without the write lock a vote could slip in between opening and sealing, and
    without the commit point nobody would run the scrub.
    """
    if not in_write_transaction():
        raise RuntimeError("close_round() must run inside write_transaction()")
    require_state(rnd, RoundState.OPEN, action="结束测评")
    opened = box.open_box(rnd, key, codes.hash_key())
    # After the box is locked (no vote or paper stack can go in meanwhile, and a second close
    # waits at the lock instead of holding a read of the box it would then block): refused
    # here, nothing has changed yet.
    reconcile.check_close(rnd)
    transition(rnd, RoundState.CLOSED, "结束测评")
    rnd.closed_at = utcnow()
    db.session.flush()
    store_in_random_order(rnd, opened.ballots, opened.receipts)
    rewrite_codes(rnd, opened.digests)
    box.destroy_box(rnd)
    seal_round(rnd)
    audit.record(actor, "round.close", round_id=rnd.id)
    after_commit(scrub_dead_rows)


def archive_round(rnd: Round, *, actor: str) -> None:
    """Move a closed round to archived and append its sealed figures to the 廉政档案."""
    require_state(rnd, RoundState.CLOSED, action="归档")
    transition(rnd, RoundState.ARCHIVED, "归档")
    db.session.flush()
    audit.record(actor, "round.archive", round_id=rnd.id)
    append_round(rnd, actor=actor)


def void_round(rnd: Round, *, actor: str, reason: str) -> None:
    """Void a round that has not been archived, with a reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("作废测评活动必须填写原因")
    was_open = rnd.state == RoundState.OPEN
    transition(rnd, RoundState.VOID, "作废")
    rnd.void_reason = reason
    if was_open:
        # The ballots of a voided round are never counted: the box goes unopened, and its
        # codes keep only whether they voted (the turnout of record).
        box.lock_box(rnd)
        voted, receipts = box.voted_digests(rnd)
        store_in_random_order(rnd, [], receipts)  # a receipt still tells its holder: voided
        rewrite_codes(rnd, voted)
        box.destroy_box(rnd)
        db.session.execute(delete(PaperBatch).where(PaperBatch.round_id == rnd.id))
        after_commit(scrub_dead_rows)
    db.session.flush()
    audit.record(actor, "round.void", round_id=rnd.id, reason=reason)


def apply_schedule(rnd: Round, now: datetime | None = None) -> bool:
    """Open or close the round if its scheduled time has passed; True if it changed."""
    now = now or datetime.now(UTC)
    if not schedule_due(rnd, now):
        return False
    if rnd.state == RoundState.DRAFT:
        if not (rnd.strata and rnd.subjects) or unrated_problems(rnd):
            return False
        open_round(rnd, actor=SCHEDULE_ACTOR)
    if rnd.state == RoundState.OPEN and schedule_due(rnd, now):
        close_round(rnd, actor=SCHEDULE_ACTOR)
    return True


def apply_schedule_now(rnd: Round) -> Round:
    """Let a scheduled open or close take effect, as a writer; return the fresh round."""
    if not schedule_due(rnd):
        return rnd
    round_id = rnd.id
    # The lifecycle reads the round again under the write lock (SQLite cannot upgrade a reader).
    try:
        with write_transaction():
            apply_schedule(db.session.get_one(Round, round_id))
    except StateError as exc:
        # Another request closed it first (the fresh round says so), or the close cannot be
        # done here (the organiser's close page says why); either way the voter is refused.
        log.warning("测评活动 %s 到达结束时间，但未能结束：%s", round_id, exc.message)
    return db.session.get_one(Round, round_id)


def apply_due_schedules(now: datetime | None = None) -> tuple[int, list[str]]:
    """Every round whose scheduled open or close has come (``flask round tick``).

    Each round in a write transaction of its own, read again under the write lock, so a
    close here opens the box, seals and scrubs exactly as a close from the page does, and one
    round that cannot be closed (its server key changed, say) does not hold back the others.
    Returns how many rounds changed, and a line for each that could not.
    """
    due = db.session.execute(
        db.select(Round.id)
        .where(Round.state.in_([RoundState.DRAFT, RoundState.OPEN]))
        .order_by(Round.id)
    ).scalars()
    candidates = list(due)
    db.session.rollback()  # end the read: each round is read again by its own writer
    changed = 0
    failures: list[str] = []
    for round_id in candidates:
        try:
            with write_transaction():
                changed += apply_schedule(db.session.get_one(Round, round_id), now)
        except DomainError as exc:
            failures.append(f"测评活动 {round_id}：{exc.message}")
    return changed, failures
