"""参测情况: codes issued and used per stratum — the only thing visible while a round is open.

A voided batch's unused codes leave the issued count, so the turnout of a lost batch does not
count against the round. But the issued count before and after a void, with the batch's size,
tells how many codes of that batch were used; for a batch of one it tells whether its holder
voted (SPEC §5.8). So a voided batch of fewer than ``SMALL_BATCH`` codes stays counted as
issued: its codes can no longer vote, and the figures change by nothing at all. The limit is
fixed (not a setting) so a sealed round's turnout recounts the same for ever. A slip voided
alone by its serial is, while the round is open, such a batch of one; after the close it
counts as issued only if it had voted.

Paper ballots count with the slips: every paper ballot printed is issued, every one entered
(valid or 废票) is used; the stratum keeps only these counts (``evaluation.paper``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import func

from evaluation.extensions import db
from evaluation.models import Code, CodeBatch, CodeState, Round, RoundState
from evaluation.paper.counts import paper_counts
from evaluation.voting import box

# A voided batch smaller than this still counts as issued (see the module docstring).
SMALL_BATCH = 5


@dataclass(frozen=True)
class StratumTurnout:
    """Issued and used codes and paper ballots of one stratum (void codes of batches of
    ``SMALL_BATCH`` or more are not issued); ``paper_*`` are the paper ballots among them."""

    stratum_id: int
    name: str
    planned: int
    issued: int
    used: int
    paper_printed: int = 0
    paper_valid: int = 0
    paper_invalid: int = 0

    @property
    def rate(self) -> Fraction | None:
        """Used / issued, exact; None when nothing was issued."""
        return Fraction(self.used, self.issued) if self.issued else None


@dataclass(frozen=True)
class Turnout:
    """Turnout of a round: per stratum and overall."""

    strata: tuple[StratumTurnout, ...]

    @property
    def issued(self) -> int:
        """Codes issued in all strata."""
        return sum(s.issued for s in self.strata)

    @property
    def used(self) -> int:
        """Codes used in all strata (= ballots cast)."""
        return sum(s.used for s in self.strata)

    @property
    def rate(self) -> Fraction | None:
        """Overall used / issued; None when nothing was issued."""
        return Fraction(self.used, self.issued) if self.issued else None

    def meets(self, minimum: Fraction) -> bool:
        """True when the overall turnout reaches ``minimum`` (a round below it is 无效)."""
        rate = self.rate
        return rate is not None and rate >= minimum


def round_turnout(rnd: Round) -> Turnout:
    """Count issued and used codes per stratum with one GROUP BY.

    While the round is open the code rows are not written when a code votes: the codes used
    are the ballots in the round's sealed box, counted per stratum.
    """
    counted = (Code.state != CodeState.VOID) | (CodeBatch.count < SMALL_BATCH)
    if rnd.state == RoundState.OPEN:
        counted = counted | ~CodeBatch.void  # a slip voided alone, see the docstring
    rows = db.session.execute(
        db.select(Code.stratum_id, Code.state, func.count())
        .join(CodeBatch, CodeBatch.id == Code.batch_id)
        .where(Code.round_id == rnd.id, counted)
        .group_by(Code.stratum_id, Code.state)
    ).all()
    issued: dict[int, int] = {}
    used: dict[int, int] = {}
    for stratum_id, state, count in rows:
        issued[stratum_id] = issued.get(stratum_id, 0) + count
        if state == CodeState.USED:
            used[stratum_id] = used.get(stratum_id, 0) + count
    paper = {s.id: paper_counts(s.paper) for s in rnd.strata}
    if rnd.state == RoundState.OPEN:
        # The box holds the phone ballots and the valid paper ones.
        used = box.used_per_stratum(rnd.id)
        for stratum_id, count in box.voted_in_voided_batches(rnd.id, SMALL_BATCH).items():
            issued[stratum_id] = issued.get(stratum_id, 0) + count
    else:
        for stratum_id, counts in paper.items():
            used[stratum_id] = used.get(stratum_id, 0) + counts.valid
    return Turnout(
        tuple(
            StratumTurnout(
                stratum_id=s.id,
                name=s.name,
                planned=s.planned,
                issued=issued.get(s.id, 0) + paper[s.id].printed,
                used=used.get(s.id, 0) + paper[s.id].invalid,
                paper_printed=paper[s.id].printed,
                paper_valid=paper[s.id].valid,
                paper_invalid=paper[s.id].invalid,
            )
            for s in rnd.strata
        )
    )
