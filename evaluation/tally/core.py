"""计票: the pure tally core — plain data in, exact results out (SPEC §4).

Everything here is a plain function over plain dataclasses, with ``fractions.Fraction`` for
every share: a threshold of 1/3 is exactly one third. The database part
(``evaluation.tally.aggregate``) only aggregates the ballots with one GROUP BY and feeds this
module.

* All shares are over **valid votes** (votes for the subject that are not 弃权).
* 优秀率 = best grade / valid; 满意率 = grades marked ``satisfied`` / valid; 信任率 = all but the
  worst grade / valid; 综合得分 = Σ score × share.
* Weighted rounds: each stratum's share is computed on its own, then combined with the weights
  of the strata that cast at least one valid vote for that subject, renormalised over them. A
  stratum without a weight in a weighted round counts with weight 0. Then every share — rates,
  grade rules, rank — is the weighted one; counts stay counts.
* A stratum may rate only some subjects (``SubjectInput.rated_by``): a subject's groups,
  pool and weights are those of the strata that rate it, and nothing else; turnout still
  counts each voter once, per stratum and overall.
* 测评等次: the form's rules, first match wins; no valid votes → no grade.
* 排名: within each form, by grade (best first), then 满意率, then 优秀率; ties share a rank
  (competition ranking: 1, 1, 3); no valid votes → no rank; a form with a single subject has
  no rank at all (results before version 4 ranked by 满意率 alone, single forms included).
* Small groups are pooled, not hidden: per subject, a stratum with fewer than
  ``min_group_size`` ballots for that subject is pooled with the next smallest strata into one
  group, 其他类别, until the pool holds at least that many (all strata together, if need be).
  Hiding the cell would not do: the overall row minus the visible strata (or the weighted rate
  minus the weighted visible strata) would give it back. The pool is decided once per subject
  from its overall answers and used for its items too; it is a group like any other in the
  breakdowns and in the weighting (weight = the sum of its members' weights, share = the
  pooled share). A subject's overall row is never pooled.
* Results sealed before pooling (``version`` 2) kept small cells ``suppressed`` instead; they
  are still read (and recounted by ``tally(..., pooling=False)``) exactly as they were sealed.
* A round whose turnout (used codes / issued) is below its minimum is 无效.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from evaluation.ballot_forms import BallotForm

OVERALL = ""
# 2: each subject also carries its post (职务), so the sealed result alone rebuilds a TallyResult.
# 3: small strata are pooled into 其他类别 (cells name their members) instead of suppressed.
# 4: rank by grade, then 满意率, then 优秀率; no rank in a form with one subject.
RESULT_VERSION = 4
RANK_BY_GRADE_VERSION = 4
LEGACY_RESULT_VERSION = 2
POOL_NAME = "其他类别"
POOL_ID = 0  # the stratum_id of a pool's cell (database ids start at 1)


# --- input -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperFigures:
    """A stratum's paper ballots: printed, valid, and 废票 / 按弃权计 counts by rule label."""

    printed: int = 0
    valid: int = 0
    invalid_by_rule: tuple[tuple[str, int], ...] = ()
    abstained_by_rule: tuple[tuple[str, int], ...] = ()

    @property
    def invalid(self) -> int:
        """废票: whole paper ballots invalid."""
        return sum(n for _, n in self.invalid_by_rule)

    @property
    def any(self) -> bool:
        """True when the stratum had paper ballots printed or entered."""
        return bool(self.printed or self.valid or self.invalid)

    def to_json(self) -> dict[str, Any]:
        return {
            "printed": self.printed,
            "valid": self.valid,
            "invalid": dict(self.invalid_by_rule),
            "abstained": dict(self.abstained_by_rule),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PaperFigures:
        data = data or {}
        return cls(
            printed=int(data.get("printed", 0)),
            valid=int(data.get("valid", 0)),
            invalid_by_rule=tuple(
                (str(k), int(n)) for k, n in dict(data.get("invalid", {})).items()
            ),
            abstained_by_rule=tuple(
                (str(k), int(n)) for k, n in dict(data.get("abstained", {})).items()
            ),
        )


@dataclass(frozen=True)
class StratumInput:
    """A stratum of voters: its weight (None = unweighted) and its codes issued / used."""

    id: int
    name: str
    weight: Fraction | None = None
    issued: int = 0
    used: int = 0
    planned: int = 0
    # Paper ballots among them (SPEC §8): entered valid, 废票 per rule label, and questions
    # counted 弃权 per rule label; empty without paper.
    paper: PaperFigures = field(default_factory=lambda: PaperFigures())


@dataclass(frozen=True)
class SubjectInput:
    """A subject and the form it is graded with.

    ``rated_by``: the ids of the strata that rate it (None: every stratum of the round).
    """

    id: int
    name: str
    form: BallotForm
    post: str = ""
    rated_by: frozenset[int] | None = None

    def raters(self, strata: tuple[StratumInput, ...]) -> tuple[StratumInput, ...]:
        """The strata of the round that rate this subject, in round order."""
        if self.rated_by is None:
            return strata
        return tuple(s for s in strata if s.id in self.rated_by)


@dataclass(frozen=True)
class CountRow:
    """One row of the GROUP BY: how many answers gave ``grade`` (None = 弃权)."""

    subject_id: int
    item: str
    stratum_id: int
    grade: str | None
    count: int


@dataclass(frozen=True)
class TallyInput:
    """Everything the tally needs, already aggregated."""

    strata: tuple[StratumInput, ...]
    subjects: tuple[SubjectInput, ...]
    rows: tuple[CountRow, ...]
    min_turnout: Fraction = Fraction(2, 3)
    min_group_size: int = 5
    ballots: int = 0

    @property
    def weighted(self) -> bool:
        """True when any stratum carries a weight."""
        return any(s.weight is not None for s in self.strata)


# --- output ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Counts and shares of one group of ballots (a subject, a stratum, an item …)."""

    counts: dict[str, int]
    abstentions: int
    # grade key → share of valid votes (weighted when the round is); None without valid votes
    shares: dict[str, Fraction] | None
    excellent_rate: Fraction | None
    satisfaction_rate: Fraction | None
    trust_rate: Fraction | None
    score: Fraction | None

    @property
    def valid(self) -> int:
        """Valid votes (not 弃权)."""
        return sum(self.counts.values())

    @property
    def ballots(self) -> int:
        """Ballots in the group: valid votes and abstentions."""
        return self.valid + self.abstentions


@dataclass(frozen=True)
class StratumCell:
    """A subject's (or item's) figures in one stratum, or in the pool of small strata.

    A pool (``members`` not empty) has ``stratum_id`` ``POOL_ID`` and is named
    "其他类别（含：A、B）". ``suppressed`` cells (no figures) exist only in results sealed
    before pooling (version 2).
    """

    stratum_id: int
    name: str
    ballots: int
    suppressed: bool
    figures: Figures | None
    # The renormalised weight this group had in the subject's weighted figures (or None).
    weight: Fraction | None = None
    # The weight set for the stratum (for a pool: the sum of its members'); None unweighted.
    base_weight: Fraction | None = None
    members: tuple[str, ...] = ()
    member_ids: tuple[int, ...] = ()

    @property
    def pooled(self) -> bool:
        """True for the pool of small strata (其他类别)."""
        return bool(self.members)


@dataclass(frozen=True)
class ItemResult:
    """One item of a per-item form: overall figures and per-stratum cells."""

    code: str
    text: str
    figures: Figures
    strata: tuple[StratumCell, ...]


@dataclass(frozen=True)
class SubjectResult:
    """Everything the tally says about one subject."""

    subject_id: int
    name: str
    post: str
    form: BallotForm
    figures: Figures
    grade: str | None
    rank: int | None
    strata: tuple[StratumCell, ...]
    items: tuple[ItemResult, ...]
    # Subjects of the same form that have a rank (the "of N" of 第 k 名 / 共 N 名).
    ranked_in_form: int = 0

    @property
    def grade_label(self) -> str | None:
        """Chinese label of the grade (None without valid votes)."""
        return self.form.label(self.grade) if self.grade is not None else None

    @property
    def pool(self) -> StratumCell | None:
        """The pool of small strata (其他类别) of this subject, if any."""
        return next((c for c in self.strata if c.pooled), None)

    @property
    def raw_figures(self) -> Figures:
        """The overall figures unweighted: counts and their plain shares of valid votes."""
        return unweighted(self.form, self.figures)


@dataclass(frozen=True)
class StratumTurnoutResult:
    """Codes issued and used in one stratum."""

    stratum_id: int
    name: str
    planned: int
    issued: int
    used: int
    weight: Fraction | None
    paper: PaperFigures = field(default_factory=lambda: PaperFigures())

    @property
    def rate(self) -> Fraction | None:
        """Used / issued (None when nothing was issued)."""
        return Fraction(self.used, self.issued) if self.issued else None


@dataclass(frozen=True)
class TallyResult:
    """The tally of a round."""

    weighted: bool
    min_turnout: Fraction
    min_group_size: int
    ballots: int
    turnout: tuple[StratumTurnoutResult, ...]
    subjects: tuple[SubjectResult, ...]
    anomalies: tuple[str, ...] = field(default=())
    version: int = RESULT_VERSION

    @property
    def pooling(self) -> bool:
        """True when small strata are pooled (version 3); False for older sealed results."""
        return self.version >= 3

    @property
    def rank_by_grade(self) -> bool:
        """True when ranks go by grade first (version 4); older results ranked by 满意率."""
        return self.version >= RANK_BY_GRADE_VERSION

    @property
    def issued(self) -> int:
        """Codes issued in all strata."""
        return sum(t.issued for t in self.turnout)

    @property
    def used(self) -> int:
        """Codes used in all strata."""
        return sum(t.used for t in self.turnout)

    @property
    def turnout_rate(self) -> Fraction | None:
        """Overall turnout, used / issued."""
        return Fraction(self.used, self.issued) if self.issued else None

    @property
    def valid(self) -> bool:
        """False (无效) when the turnout is below the round's minimum."""
        rate = self.turnout_rate
        return rate is not None and rate >= self.min_turnout

    def subject(self, subject_id: int) -> SubjectResult:
        """The result of one subject (KeyError if none)."""
        for s in self.subjects:
            if s.subject_id == subject_id:
                return s
        raise KeyError(subject_id)


# --- the arithmetic ----------------------------------------------------------------------------


def rates(form: BallotForm, shares: Mapping[str, Fraction]) -> dict[str, Fraction]:
    """优秀率, 满意率, 信任率 and 综合得分 from the shares of each grade."""
    return {
        "excellent_rate": shares.get(form.best.key, Fraction(0)),
        "satisfaction_rate": sum(
            (shares.get(g.key, Fraction(0)) for g in form.grades if g.satisfied), Fraction(0)
        ),
        "trust_rate": sum((shares.get(g.key, Fraction(0)) for g in form.grades[:-1]), Fraction(0)),
        "score": sum((g.score * shares.get(g.key, Fraction(0)) for g in form.grades), Fraction(0)),
    }


def figures(
    form: BallotForm,
    counts: Mapping[str, int],
    abstentions: int,
    shares: Mapping[str, Fraction] | None = None,
) -> Figures:
    """Figures of a group; shares default to count / valid (pass weighted shares to override)."""
    ordered = {g.key: int(counts.get(g.key, 0)) for g in form.grades}
    valid = sum(ordered.values())
    if shares is None and valid:
        shares = {k: Fraction(n, valid) for k, n in ordered.items()}
    if not valid or shares is None:
        return Figures(ordered, abstentions, None, None, None, None, None)
    full = {g.key: Fraction(shares.get(g.key, 0)) for g in form.grades}
    r = rates(form, full)
    return Figures(
        ordered,
        abstentions,
        full,
        r["excellent_rate"],
        r["satisfaction_rate"],
        r["trust_rate"],
        r["score"],
    )


def unweighted(form: BallotForm, f: Figures) -> Figures:
    """The same counts with plain shares (count / valid): what stands beside a weighted rate."""
    return figures(form, f.counts, f.abstentions)


def pool_label(members: Iterable[str]) -> str:
    """The name of a pool: "其他类别（含：A、B）"."""
    return f"{POOL_NAME}（含：{'、'.join(members)}）"


def choose_pool(
    strata: tuple[StratumInput, ...], ballots: Mapping[int, int], min_group_size: int
) -> tuple[int, ...]:
    """The strata one subject pools into 其他类别, in round order (empty when none is small).

    ``ballots``: the subject's ballots per stratum (overall answers). Every stratum with
    ballots but fewer than ``min_group_size`` goes into the pool; while the pool is still
    below the size, the next smallest stratum joins it (all strata together, if need be).
    Strata without ballots for the subject are no group at all and stay out.
    """
    order = {s.id: i for i, s in enumerate(strata)}
    present = sorted(
        (s.id for s in strata if ballots.get(s.id, 0) > 0),
        key=lambda sid: (ballots[sid], order[sid]),
    )
    pool = [sid for sid in present if ballots[sid] < min_group_size]
    if not pool:
        return ()
    rest = [sid for sid in present if sid not in pool]
    total = sum(ballots[sid] for sid in pool)
    while total < min_group_size and rest:
        sid = rest.pop(0)
        pool.append(sid)
        total += ballots[sid]
    return tuple(sorted(pool, key=order.__getitem__))


def weighted_shares(
    form: BallotForm, parts: Iterable[tuple[Fraction, Figures]]
) -> tuple[dict[str, Fraction] | None, dict[int, Fraction]]:
    """Combine per-stratum shares by weight over the strata with a valid vote, renormalised.

    ``parts`` holds (weight, figures) per stratum in order; returns the combined shares and
    the renormalised weight of each part by position. When the strata that voted all have
    weight 0, the unweighted shares of their votes are used (the weights say nothing then).
    """
    voted = [(i, w, f) for i, (w, f) in enumerate(parts) if f.valid > 0]
    if not voted:
        return None, {}
    total = sum((w for _, w, _ in voted), Fraction(0))
    if total == 0:
        counts: dict[str, int] = defaultdict(int)
        for _, _, f in voted:
            for k, n in f.counts.items():
                counts[k] += n
        valid = sum(counts.values())
        return {g.key: Fraction(counts[g.key], valid) for g in form.grades}, {}
    combined = {g.key: Fraction(0) for g in form.grades}
    used: dict[int, Fraction] = {}
    for i, w, f in voted:
        norm = w / total
        used[i] = norm
        assert f.shares is not None
        for k in combined:
            combined[k] += norm * f.shares[k]
    return combined, used


def decide_grade(form: BallotForm, shares: Mapping[str, Fraction] | None) -> str | None:
    """The form's rules in order, first match wins; None without valid votes."""
    if shares is None:
        return None
    for rule in form.rules:
        if rule.unconditional:
            return rule.grade
        share = sum((shares.get(k, Fraction(0)) for k in rule.share_of), Fraction(0))
        if rule.at_least is not None and share >= rule.at_least:
            return rule.grade
        if rule.below is not None and share < rule.below:
            return rule.grade
    return None  # unreachable: a validated form ends with an unconditional rule


def competition_ranks(values: Mapping[int, Any]) -> dict[int, int | None]:
    """Rank keys by value, highest first, ties sharing a rank (1, 1, 3); None stays unranked.

    Values are anything ordered (a Fraction, or a tuple of them compared in turn).
    """
    ranked = sorted((v for v in values.values() if v is not None), reverse=True)
    first: dict[Any, int] = {}
    for position, value in enumerate(ranked, 1):
        first.setdefault(value, position)
    return {k: (first[v] if v is not None else None) for k, v in values.items()}


# --- the tally ---------------------------------------------------------------------------------


def _group(
    form: BallotForm,
    strata: tuple[StratumInput, ...],
    by_stratum: Mapping[int, Mapping[str | None, int]],
    weighted: bool,
    min_group_size: int,
    pool: tuple[int, ...] | None,
) -> tuple[Figures, tuple[StratumCell, ...]]:
    """Overall figures and per-group cells of one subject (or one item of it).

    ``pool``: the ids of the strata pooled into 其他类别 (decided once per subject); None for
    the rules of version-2 results, where each stratum is its own group and small ones are
    suppressed.
    """
    total: dict[str, int] = defaultdict(int)
    abstained = 0
    plain: dict[int, tuple[dict[str, int], int]] = {}
    for s in strata:
        cell = by_stratum.get(s.id, {})
        counts = {k: n for k, n in cell.items() if k is not None}
        abst = cell.get(None, 0)
        plain[s.id] = (counts, abst)
        for k, n in counts.items():
            total[k] += n
        abstained += abst

    # The groups: each stratum outside the pool, then the pool (if any).
    pooled = set(pool or ())
    groups: list[tuple[list[StratumInput], Figures]] = []
    for s in strata:
        if s.id not in pooled:
            counts, abst = plain[s.id]
            groups.append(([s], figures(form, counts, abst)))
    if pool:
        members = [s for s in strata if s.id in pooled]
        summed: dict[str, int] = defaultdict(int)
        abst_sum = 0
        for s in members:
            counts, abst = plain[s.id]
            for k, n in counts.items():
                summed[k] += n
            abst_sum += abst
        groups.append((members, figures(form, summed, abst_sum)))

    def group_weight(members: list[StratumInput]) -> Fraction | None:
        if not weighted:
            return None
        return sum((s.weight or Fraction(0) for s in members), Fraction(0))

    used: dict[int, Fraction] = {}
    if weighted:
        shares, used = weighted_shares(
            form, ((group_weight(m) or Fraction(0), f) for m, f in groups)
        )
        overall = figures(form, total, abstained, shares)
    else:
        overall = figures(form, total, abstained)

    cells = []
    for i, (members, f) in enumerate(groups):
        if len(members) == 1 and members[0].id not in pooled:
            s = members[0]
            suppressed = pool is None and f.ballots < min_group_size
            cells.append(
                StratumCell(
                    stratum_id=s.id,
                    name=s.name,
                    ballots=f.ballots,
                    suppressed=suppressed,
                    figures=None if suppressed else f,
                    weight=used.get(i),
                    base_weight=s.weight if pool is not None else None,
                )
            )
        else:
            names = tuple(s.name for s in members)
            cells.append(
                StratumCell(
                    stratum_id=POOL_ID,
                    name=pool_label(names),
                    ballots=f.ballots,
                    suppressed=False,
                    figures=f,
                    weight=used.get(i),
                    base_weight=group_weight(members),
                    members=names,
                    member_ids=tuple(s.id for s in members),
                )
            )
    return overall, tuple(cells)


def rank_key(
    form: BallotForm, grade: str | None, f: Figures
) -> tuple[int, Fraction, Fraction] | None:
    """What 排名 compares: the grade (best first), then 满意率, then 优秀率; None: no rank."""
    if grade is None or f.satisfaction_rate is None or f.excellent_rate is None:
        return None
    return (-form.grade_keys.index(grade), f.satisfaction_rate, f.excellent_rate)


def tally(data: TallyInput, *, pooling: bool = True, version: int = RESULT_VERSION) -> TallyResult:
    """Tally a round from its aggregated answers.

    ``pooling=False`` applies the rules of version-2 results (small cells suppressed, each
    stratum weighted on its own), and ``version`` below 4 the rank of older results (by
    满意率 alone): only to recount a round sealed under them.
    """
    if not pooling:
        version = min(version, LEGACY_RESULT_VERSION)
    subjects = {s.id: s for s in data.subjects}
    strata_ids = {s.id for s in data.strata}
    # subject → item → stratum → grade → count
    grid: dict[int, dict[str, dict[int, dict[str | None, int]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )
    anomalies: list[str] = []
    for row in data.rows:
        subject = subjects.get(row.subject_id)
        if subject is None or row.count == 0:
            continue
        form = subject.form
        if row.stratum_id not in strata_ids:
            anomalies.append(
                f"测评对象“{subject.name}”有 {row.count} 条答案属于本活动以外的类别，未计入"
            )
            continue
        if subject.rated_by is not None and row.stratum_id not in subject.rated_by:
            anomalies.append(
                f"测评对象“{subject.name}”有 {row.count} 条答案属于不评价它的类别，未计入"
            )
            continue
        if row.grade is not None and row.grade not in form.grade_keys:
            anomalies.append(
                f"测评对象“{subject.name}”有 {row.count} 条答案的等次“{row.grade}”"
                f"不在测评表中，未计入"
            )
            continue
        if row.item != OVERALL and row.item not in {i.code for i in form.items}:
            anomalies.append(
                f"测评对象“{subject.name}”有 {row.count} 条答案的测评内容“{row.item}”"
                f"不在测评表中，未计入"
            )
            continue
        cell = grid[row.subject_id][row.item][row.stratum_id]
        cell[row.grade] = cell.get(row.grade, 0) + row.count

    weighted = data.weighted
    partial: list[tuple[SubjectInput, Figures, str | None, tuple[StratumCell, ...], tuple]] = []
    for subject in data.subjects:
        form = subject.form
        per_item = grid.get(subject.id, {})
        answers = per_item.get(OVERALL, {})
        # Only the strata that rate the subject are its groups (breakdown, pool, weights).
        raters = subject.raters(data.strata)
        pool = (
            choose_pool(
                raters,
                {sid: sum(cell.values()) for sid, cell in answers.items()},
                data.min_group_size,
            )
            if pooling
            else None
        )
        overall, cells = _group(form, raters, answers, weighted, data.min_group_size, pool)
        items = []
        for item in form.items:
            if item.code not in per_item:
                continue
            item_fig, item_cells = _group(
                form, raters, per_item[item.code], weighted, data.min_group_size, pool
            )
            items.append(ItemResult(item.code, item.text, item_fig, item_cells))
        partial.append((subject, overall, decide_grade(form, overall.shares), cells, tuple(items)))

    ranks: dict[int, int | None] = {}
    ranked_in_form: dict[str, int] = defaultdict(int)
    for form_id in dict.fromkeys(s.form.id for s in data.subjects):
        members = [(s, f, grade) for s, f, grade, *_ in partial if s.form.id == form_id]
        values: dict[int, Any]
        if version >= RANK_BY_GRADE_VERSION:
            if len(members) < 2:
                continue  # one subject: nothing to rank it among
            values = {s.id: rank_key(s.form, grade, f) for s, f, grade in members}
        else:
            values = {s.id: f.satisfaction_rate for s, f, _ in members}
        ranks.update(competition_ranks(values))
        ranked_in_form[form_id] = sum(v is not None for v in values.values())

    results = tuple(
        SubjectResult(
            subject_id=s.id,
            name=s.name,
            post=s.post,
            form=s.form,
            figures=f,
            grade=grade,
            rank=ranks.get(s.id),
            strata=cells,
            items=items,
            ranked_in_form=ranked_in_form[s.form.id],
        )
        for s, f, grade, cells, items in partial
    )
    turnout = tuple(
        StratumTurnoutResult(s.id, s.name, s.planned, s.issued, s.used, s.weight, s.paper)
        for s in data.strata
    )
    return TallyResult(
        weighted=weighted,
        min_turnout=data.min_turnout,
        min_group_size=data.min_group_size,
        ballots=data.ballots,
        turnout=turnout,
        subjects=results,
        anomalies=tuple(dict.fromkeys(anomalies)),
        version=version,
    )


# --- JSON (the sealed result) ------------------------------------------------------------------


def fraction_text(value: Fraction | None) -> str | None:
    """An exact fraction as "p/q" text (None stays None)."""
    if value is None:
        return None
    return f"{value.numerator}/{value.denominator}"


def _figures_json(f: Figures | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {
        "counts": dict(f.counts),
        "abstentions": f.abstentions,
        "valid": f.valid,
        "shares": (
            {k: fraction_text(v) for k, v in f.shares.items()} if f.shares is not None else None
        ),
        "excellent_rate": fraction_text(f.excellent_rate),
        "satisfaction_rate": fraction_text(f.satisfaction_rate),
        "trust_rate": fraction_text(f.trust_rate),
        "score": fraction_text(f.score),
    }


def _cells_json(cells: tuple[StratumCell, ...], version: int) -> list[dict[str, Any]]:
    if version < 3:
        return [
            {
                "stratum_id": c.stratum_id,
                "name": c.name,
                "ballots": c.ballots,
                "suppressed": c.suppressed,
                "weight": fraction_text(c.weight),
                "figures": _figures_json(c.figures),
            }
            for c in cells
        ]
    return [
        {
            "stratum_id": c.stratum_id,
            "name": c.name,
            "ballots": c.ballots,
            "members": list(c.members),
            "member_ids": list(c.member_ids),
            "base_weight": fraction_text(c.base_weight),
            "weight": fraction_text(c.weight),
            "figures": _figures_json(c.figures),
        }
        for c in cells
    ]


def to_json(result: TallyResult) -> dict[str, Any]:
    """The result as plain JSON (fractions as "p/q" strings): what the seal stores."""
    subjects = []
    for s in result.subjects:
        row = _figures_json(s.figures)
        assert row is not None
        subjects.append(
            {
                "subject_id": s.subject_id,
                "name": s.name,
                "post": s.post,
                "form_id": s.form.id,
                **row,
                "grade": s.grade,
                "grade_label": s.grade_label,
                "rank": s.rank,
                "strata": _cells_json(s.strata, result.version),
                "items": [
                    {
                        "code": i.code,
                        "figures": _figures_json(i.figures),
                        "strata": _cells_json(i.strata, result.version),
                    }
                    for i in s.items
                ],
            }
        )
    return {
        "version": result.version,
        "weighted": result.weighted,
        "min_turnout": fraction_text(result.min_turnout),
        "min_group_size": result.min_group_size,
        "valid": result.valid,
        "ballots": result.ballots,
        "turnout": {
            "issued": result.issued,
            "used": result.used,
            "rate": fraction_text(result.turnout_rate),
            "valid": result.valid,
            "strata": [
                {
                    "stratum_id": t.stratum_id,
                    "name": t.name,
                    "planned": t.planned,
                    "issued": t.issued,
                    "used": t.used,
                    "rate": fraction_text(t.rate),
                    "weight": fraction_text(t.weight),
                    # Only where there was paper: results sealed before keep their bytes.
                    **({"paper": t.paper.to_json()} if t.paper.any else {}),
                }
                for t in result.turnout
            ],
        },
        "subjects": subjects,
        "anomalies": list(result.anomalies),
    }


def _fraction(text: str | None) -> Fraction | None:
    return None if text is None else Fraction(text)


def _figures_from_json(data: Mapping[str, Any] | None) -> Figures | None:
    if data is None:
        return None
    shares = data.get("shares")
    return Figures(
        counts={k: int(v) for k, v in data["counts"].items()},
        abstentions=int(data["abstentions"]),
        shares=None if shares is None else {k: Fraction(v) for k, v in shares.items()},
        excellent_rate=_fraction(data.get("excellent_rate")),
        satisfaction_rate=_fraction(data.get("satisfaction_rate")),
        trust_rate=_fraction(data.get("trust_rate")),
        score=_fraction(data.get("score")),
    )


def _cells_from_json(rows: Iterable[Mapping[str, Any]]) -> tuple[StratumCell, ...]:
    return tuple(
        StratumCell(
            stratum_id=int(c["stratum_id"]),
            name=c["name"],
            ballots=int(c["ballots"]),
            suppressed=bool(c.get("suppressed", False)),
            figures=_figures_from_json(c.get("figures")),
            weight=_fraction(c.get("weight")),
            base_weight=_fraction(c.get("base_weight")),
            members=tuple(str(m) for m in c.get("members", ())),
            member_ids=tuple(int(m) for m in c.get("member_ids", ())),
        )
        for c in rows
    )


def withhold_recoverable(result: TallyResult) -> TallyResult:
    """What may be published of a result sealed before pooling (version 2).

    Those results hid a small stratum's cell but kept its neighbours, so the subject's overall
    figures minus the visible cells gave the hidden one back. Wherever a subject (or an item)
    has a hidden cell, all its cells are withheld now; its overall row stays. Pooled results
    (version 3) are returned as they are.
    """
    if result.pooling:
        return result

    def cells(group: tuple[StratumCell, ...]) -> tuple[StratumCell, ...]:
        if not any(c.suppressed for c in group):
            return group
        return tuple(replace(c, suppressed=True, figures=None) for c in group)

    return replace(
        result,
        subjects=tuple(
            replace(
                s,
                strata=cells(s.strata),
                items=tuple(replace(i, strata=cells(i.strata)) for i in s.items),
            )
            for s in result.subjects
        ),
    )


def from_json(data: Mapping[str, Any], forms: Mapping[str, BallotForm]) -> TallyResult:
    """The sealed result back as a ``TallyResult`` (``forms``: the round's form snapshot).

    ``from_json(to_json(r), forms) == r`` for every tally ``r``: pages, reports and the archive
    read a closed round's figures this way, so they show exactly what was sealed. Version-2
    results (sealed before pooling) are read as they were: their small cells stay suppressed.
    """
    subjects = []
    for row in data["subjects"]:
        form = forms[row["form_id"]]
        figures = _figures_from_json(row)
        assert figures is not None
        texts = {item.code: item.text for item in form.items}
        subjects.append(
            SubjectResult(
                subject_id=int(row["subject_id"]),
                name=row["name"],
                post=row.get("post", ""),
                form=form,
                figures=figures,
                grade=row.get("grade"),
                rank=row.get("rank"),
                strata=_cells_from_json(row["strata"]),
                items=tuple(
                    ItemResult(
                        code=i["code"],
                        text=texts.get(i["code"], i["code"]),
                        figures=_figures_from_json(i["figures"]),  # type: ignore[arg-type]
                        strata=_cells_from_json(i["strata"]),
                    )
                    for i in row["items"]
                ),
            )
        )
    ranked = {
        form_id: sum(s.rank is not None for s in subjects if s.form.id == form_id)
        for form_id in {s.form.id for s in subjects}
    }
    turnout = data["turnout"]
    return TallyResult(
        weighted=bool(data["weighted"]),
        min_turnout=Fraction(data["min_turnout"]),
        min_group_size=int(data["min_group_size"]),
        ballots=int(data["ballots"]),
        turnout=tuple(
            StratumTurnoutResult(
                stratum_id=int(t["stratum_id"]),
                name=t["name"],
                planned=int(t["planned"]),
                issued=int(t["issued"]),
                used=int(t["used"]),
                weight=_fraction(t.get("weight")),
                paper=PaperFigures.from_json(t.get("paper")),
            )
            for t in turnout["strata"]
        ),
        subjects=tuple(replace(s, ranked_in_form=ranked[s.form.id]) for s in subjects),
        anomalies=tuple(data.get("anomalies", ())),
        version=int(data.get("version", LEGACY_RESULT_VERSION)),
    )


# --- display -----------------------------------------------------------------------------------


def percent(value: Fraction | None, places: int = 2) -> str:
    """A share as a percentage with ``places`` decimals, rounded half up ("66.67%"); "—" if None."""
    if value is None:
        return "—"
    scaled = value * 100 * 10**places
    rounded = int(scaled + Fraction(1, 2)) if scaled >= 0 else -int(-scaled + Fraction(1, 2))
    whole, frac = divmod(abs(rounded), 10**places)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{whole}.{frac:0{places}d}%" if places else f"{sign}{whole}%"


def decimal_text(value: Fraction | None, places: int = 2) -> str:
    """A number such as 综合得分 with ``places`` decimals, rounded half up; "—" if None."""
    if value is None:
        return "—"
    scaled = value * 10**places
    rounded = int(scaled + Fraction(1, 2))
    whole, frac = divmod(rounded, 10**places)
    return f"{whole}.{frac:0{places}d}" if places else str(whole)
