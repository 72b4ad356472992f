"""测评活动 dashboard: the rounds an account sees, filtered, searched and paginated, each with
its turnout, dates and the next thing to do.

A page costs the same handful of statements however many rounds exist or are shown: one count,
one page of rounds (without their JSON columns), one GROUP BY for the codes of the rounds
shown, one read of their strata's paper counts, and one count per *open* round shown (an open
round's votes are in its own sealed box table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import load_only

from evaluation.accounts.units import subtree_clause
from evaluation.codes.turnout import SMALL_BATCH
from evaluation.extensions import db
from evaluation.models import (
    Code,
    CodeBatch,
    CodeState,
    Role,
    Round,
    RoundState,
    Stratum,
    Unit,
    User,
)
from evaluation.paper.counts import paper_counts
from evaluation.voting import box

PAGE_SIZE = 50
NEXT_ACTIONS = {
    RoundState.DRAFT: "准备测评对象、发放测评码，然后开始测评",
    RoundState.OPEN: "查看参测情况；投票结束后结束测评",
    RoundState.CLOSED: "查看结果、填写反馈意见，然后归档",
    RoundState.ARCHIVED: "已归档：可查看结果和廉政档案",
    RoundState.VOID: "已作废",
}
# A 计票员 does one thing in a round: enter its paper ballots while it is open.
COUNTER_ACTIONS = {RoundState.OPEN: "录入交回的纸质票"}


@dataclass(frozen=True)
class Filters:
    """What the organiser asked for: year, unit, state, words of the title, page."""

    year: int | None = None
    unit_id: int | None = None
    state: RoundState | None = None
    query: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: dict[str, str]) -> Filters:
        """From the query string; anything unreadable is simply not a filter."""

        def number(key: str) -> int | None:
            value = (args.get(key) or "").strip()
            return int(value) if value.isdigit() and len(value) < 10 else None

        state = (args.get("state") or "").strip()
        return cls(
            year=number("year"),
            unit_id=number("unit"),
            state=RoundState(state) if state in {s.value for s in RoundState} else None,
            query=(args.get("q") or "").strip()[:100],
            page=max(1, number("page") or 1),
        )

    @property
    def active(self) -> bool:
        """True when anything narrows the list."""
        return bool(self.year or self.unit_id or self.state or self.query)

    def query_args(self, page: int) -> dict[str, str | int]:
        """The query string of ``page`` of this list: the filters as understood, nothing else
        (what could not be read is not carried from page to page)."""
        args: dict[str, str | int] = {}
        if self.query:
            args["q"] = self.query
        if self.year:
            args["year"] = self.year
        if self.unit_id:
            args["unit"] = self.unit_id
        if self.state:
            args["state"] = self.state.value
        if page > 1:
            args["page"] = page
        return args


def page_links(page: int, pages: int, around: int = 2) -> list[int | None]:
    """The pages a pager names: the first, the last, and those near ``page``; None for a gap.
    ``page_links(7, 40)`` → [1, None, 5, 6, 7, 8, 9, None, 40]."""
    shown = {1, pages, *range(max(1, page - around), min(pages, page + around) + 1)}
    out: list[int | None] = []
    for number in sorted(shown):
        if out and out[-1] is not None and number > out[-1] + 1:
            out.append(None)
        out.append(number)
    return out


@dataclass(frozen=True)
class RoundRow:
    """One line of the dashboard."""

    round: Round
    unit_path: str
    issued: int
    used: int
    next_action: str

    @property
    def turnout(self) -> Fraction | None:
        """Used / issued (None before any code or paper ballot went out)."""
        return Fraction(self.used, self.issued) if self.issued else None


@dataclass(frozen=True)
class Dashboard:
    """A page of rounds with the total that matched and what to filter by."""

    rows: list[RoundRow]
    total: int
    page: int
    pages: int
    years: list[int]
    counts_by_state: dict[RoundState, int]


def _scoped(user: User, query: Select) -> Select | None:  # type: ignore[type-arg]
    if user.unit is not None:
        return query.where(subtree_clause(Unit.path, user.unit))
    if user.role != Role.ADMIN:
        return None
    return query


def _turnouts(rounds: list[Round]) -> dict[int, tuple[int, int]]:
    """Issued and used per round shown, by the rules of ``codes.turnout`` (batched)."""
    ids = [r.id for r in rounds]
    if not ids:
        return {}
    is_open = {r.id for r in rounds if r.state == RoundState.OPEN}
    voided_big = (Code.state == CodeState.VOID) & (CodeBatch.count >= SMALL_BATCH)
    # While open a slip voided alone (its batch not void) still counts as issued.
    single_void = (Code.state == CodeState.VOID) & ~CodeBatch.void
    rows = db.session.execute(
        select(
            Code.round_id,
            func.count(),
            func.sum(case((voided_big, 1), else_=0)),
            func.sum(case((voided_big & single_void, 1), else_=0)),
            func.sum(case((Code.state == CodeState.USED, 1), else_=0)),
        )
        .join(CodeBatch, CodeBatch.id == Code.batch_id)
        .where(Code.round_id.in_(ids))
        .group_by(Code.round_id)
    ).all()
    out: dict[int, tuple[int, int]] = {}
    for round_id, total, void_big, void_single, used in rows:
        not_counted = int(void_big or 0) - (int(void_single or 0) if round_id in is_open else 0)
        out[round_id] = (int(total) - not_counted, int(used or 0))
    papers = db.session.execute(
        select(Stratum.round_id, Stratum.paper).where(Stratum.round_id.in_(ids))
    ).all()
    for round_id, paper in papers:
        counts = paper_counts(paper)
        issued, used = out.get(round_id, (0, 0))
        extra_used = counts.invalid + (0 if round_id in is_open else counts.valid)
        out[round_id] = (issued + counts.printed, used + extra_used)
    for round_id in is_open:
        issued, used = out.get(round_id, (0, 0))
        in_box = sum(box.used_per_stratum(round_id).values())
        # Voted codes of voided batches count as issued while open (``codes.turnout``).
        voted_void = sum(box.voted_in_voided_batches(round_id, SMALL_BATCH).values())
        out[round_id] = (issued + voted_void, used + in_box)
    return out


def dashboard(user: User, filters: Filters) -> Dashboard:
    """The page of rounds ``user`` sees that ``filters`` asks for, newest first."""
    base = _scoped(user, select(Round).join(Unit, Round.unit_id == Unit.id))
    if base is None:
        return Dashboard([], 0, 1, 1, [], {})
    years = sorted(
        {
            y
            for y in db.session.execute(
                _scoped(user, select(Round.year).join(Unit, Round.unit_id == Unit.id)).distinct()  # type: ignore[union-attr]
            ).scalars()
        },
        reverse=True,
    )
    query = base
    if filters.year:
        query = query.where(Round.year == filters.year)
    if filters.unit_id:
        unit = db.session.get(Unit, filters.unit_id)
        if unit is not None:
            query = query.where(subtree_clause(Unit.path, unit))
    if filters.query:
        like = filters.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Round.title.like(f"%{like}%", escape="\\"))
    by_state = query.with_only_columns(Round.state, func.count()).group_by(Round.state)
    counts = {RoundState(s): int(n) for s, n in db.session.execute(by_state)}
    if filters.state:
        query = query.where(Round.state == filters.state)
    total = sum(n for s, n in counts.items() if filters.state in (None, s))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(filters.page, pages)
    rounds = list(
        db.session.execute(
            query.add_columns(Unit.path)
            .options(
                load_only(
                    Round.id,
                    Round.title,
                    Round.year,
                    Round.unit_id,
                    Round.state,
                    Round.mode,
                    Round.kind,
                    Round.opens_at,
                    Round.closes_at,
                    Round.created_at,
                    Round.closed_at,
                    Round.box_custody,
                )
            )
            .order_by(Round.year.desc(), Round.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
    )
    turnouts = _turnouts([r for r, _path in rounds])
    rows = [
        RoundRow(
            round=r,
            unit_path=path,
            issued=turnouts.get(r.id, (0, 0))[0],
            used=turnouts.get(r.id, (0, 0))[1],
            next_action=(
                COUNTER_ACTIONS.get(r.state, "—")
                if user.role == Role.COUNTER
                else NEXT_ACTIONS[r.state]
            ),
        )
        for r, path in rounds
    ]
    return Dashboard(rows, total, page, pages, years, counts)


def round_dates(rnd: Round) -> tuple[datetime | None, datetime | None]:
    """The round's start and end as the dashboard shows them: scheduled, else actual close."""
    return rnd.opens_at, rnd.closed_at or rnd.closes_at
