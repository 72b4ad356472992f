"""核对: every slip and paper ballot of a round accounted for, per stratum (issue-time counts
and the ballots they became, never who voted).

    发出 = 测评码 + 纸质票 = 手机投票 + 纸质有效 + 纸质废票 + 未交回 + 作废

Each term is counted on its own: the codes from their rows (void, unused) and the sealed box
(used), the paper ballots from the stratum's counts. More paper ballots entered than printed
breaks it (paper printed outside the system, a stack counted twice), and stops the close until
the organiser records why (``Round.reconciliation_note``).

While the round is open no figure may tell whether a given slip has voted (SPEC §5.8): a slip
voided by its serial is counted as voided whether or not it had voted, and 未交回 is what
remains, so voiding a slip that voted and one that did not change the table alike. After the
close the figures are exact: a voided slip that had voted counts as used (its ballot stands).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from evaluation import audit
from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import Code, CodeBatch, CodeState, PaperBatch, Round, RoundState
from evaluation.paper.counts import paper_counts
from evaluation.rounds.state import require_state
from evaluation.voting import box

MAX_NOTE = 1000


@dataclass(frozen=True)
class StratumReconciliation:
    """The accounting of one stratum."""

    stratum_id: int
    name: str
    planned: int  # 应参加
    slips: int  # 测评码 printed (every code is printed once, at issue)
    reissued: int  # of which 补发
    paper_printed: int
    voided: int  # slips voided (while open: whether or not they had voted)
    phone: int  # ballots cast with a code
    paper_valid: int
    paper_invalid: int
    unreturned: int  # slips not used and paper ballots not entered
    # While open a voided slip that had voted is under 手机投票 and 作废 alike (no figure may
    # tell it), so only the paper side is checked; after the close every term is exact.
    open: bool = False

    @property
    def issued(self) -> int:
        """发出: slips and paper ballots."""
        return self.slips + self.paper_printed

    @property
    def accounted(self) -> int:
        """What the issued became: used, entered, unreturned or voided."""
        return self.phone + self.paper_valid + self.paper_invalid + self.unreturned + self.voided

    @property
    def paper_excess(self) -> int:
        """Paper ballots entered beyond those printed."""
        return max(0, self.paper_valid + self.paper_invalid - self.paper_printed)

    @property
    def balanced(self) -> bool:
        """True when every slip and paper ballot is accounted for exactly once."""
        if self.paper_excess:
            return False
        return self.open or self.issued == self.accounted

    def problems(self) -> list[str]:
        """What does not reconcile, in words."""
        out = []
        if self.paper_excess:
            out.append(
                f"录入的纸质票（{self.paper_valid + self.paper_invalid} 张）比印制的"
                f"（{self.paper_printed} 张）多 {self.paper_excess} 张"
            )
        if not out and self.issued != self.accounted:
            out.append(f"发出 {self.issued} 份，去向合计 {self.accounted} 份")
        return out


@dataclass(frozen=True)
class Reconciliation:
    """The round's accounting: per stratum, and whether all of it balances."""

    strata: tuple[StratumReconciliation, ...]
    note: str | None
    open_batches: int  # paper stacks still being entered

    @property
    def balanced(self) -> bool:
        """True when every stratum balances."""
        return all(s.balanced for s in self.strata)

    @property
    def may_close(self) -> bool:
        """True when the close may go ahead: balanced, or a reason recorded."""
        return self.balanced or bool(self.note)


def _per_stratum(query: object) -> dict[int, int]:
    return {int(s): int(n) for s, n in db.session.execute(query)}  # type: ignore[call-overload]


def reconcile(rnd: Round) -> Reconciliation:
    """Count everything issued in the round and what it became, per stratum."""
    slips = _per_stratum(
        select(Code.stratum_id, func.count())
        .where(Code.round_id == rnd.id)
        .group_by(Code.stratum_id)
    )
    void_rows = _per_stratum(
        select(Code.stratum_id, func.count())
        .where(Code.round_id == rnd.id, Code.state == CodeState.VOID)
        .group_by(Code.stratum_id)
    )
    reissued = _per_stratum(
        select(CodeBatch.stratum_id, func.sum(CodeBatch.count))
        .where(CodeBatch.round_id == rnd.id, CodeBatch.replaces.is_not(None))
        .group_by(CodeBatch.stratum_id)
    )
    is_open = rnd.state == RoundState.OPEN
    if is_open:
        in_box = box.used_per_stratum(rnd.id)  # phone ballots and valid paper ones
    else:
        in_box = _per_stratum(
            select(Code.stratum_id, func.count())
            .where(Code.round_id == rnd.id, Code.state == CodeState.USED)
            .group_by(Code.stratum_id)
        )
    batches = db.session.execute(
        select(func.count()).select_from(PaperBatch).where(PaperBatch.round_id == rnd.id)
    ).scalar_one()
    rows = []
    for s in rnd.strata:
        paper = paper_counts(s.paper)
        phone = in_box.get(s.id, 0) - (paper.valid if is_open else 0)
        voided = void_rows.get(s.id, 0)
        # Open: what remains (a voided slip that voted is in phone and voided alike, so no
        # figure tells it). Closed: the unused rows, exactly.
        unused_slips = max(0, slips.get(s.id, 0) - voided - phone)
        rows.append(
            StratumReconciliation(
                stratum_id=s.id,
                name=s.name,
                planned=s.planned,
                slips=slips.get(s.id, 0),
                reissued=reissued.get(s.id, 0),
                paper_printed=paper.printed,
                voided=voided,
                phone=phone,
                paper_valid=paper.valid,
                paper_invalid=paper.invalid,
                unreturned=unused_slips + max(0, paper.printed - paper.returned),
                open=is_open,
            )
        )
    return Reconciliation(tuple(rows), rnd.reconciliation_note, int(batches))


def record_note(rnd: Round, note: str, *, actor: str) -> None:
    """The organiser's reason why the round does not reconcile (needed before the close)."""
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="填写核对说明")
    note = (note or "").strip()
    if not note:
        raise InputError("请填写核对说明：为什么发出的测评码和纸质票与去向对不上")
    if len(note) > MAX_NOTE:
        raise InputError(f"核对说明最多 {MAX_NOTE} 字")
    rnd.reconciliation_note = note
    db.session.flush()
    audit.record(actor, "round.reconciliation_note", round_id=rnd.id, note=note)


def check_close(rnd: Round) -> None:
    """StateError when the round may not close yet: stacks still being entered, or a mismatch
    without a recorded reason (a scheduled close then waits for the organiser)."""
    result = reconcile(rnd)
    if result.open_batches:
        raise StateError(
            f"还有 {result.open_batches} 批纸质票没有核对入箱：请两位计票员录完并核对一致"
            "（或删除录错的批次）后再结束测评。"
        )
    if not result.may_close:
        problems = "；".join(
            f"{s.name}：{'，'.join(s.problems())}" for s in result.strata if not s.balanced
        )
        raise StateError(
            f"测评码和纸质票的核对不平（{problems}）。请在发放测评码页面查明原因并填写核对说明后"
            "再结束测评。"
        )
