"""复制为新活动: a round's structure carried into a new draft for another year.

What a round file (``round_file.export_round``/``import_round``) carries, and what it cannot:
the strata with their planned numbers, weights and the subjects each rates; the subjects with
the very cadres they name (``Subject.person``, not a new lookup by name or 工号) and their
units; the per-round items; the rule set as the round has it, edited thresholds included
(``Round.rule_set``); the minimum turnout, mode and kind. Not carried: schedules (a copied
time in the past would open the copy at once), the box's custody (chosen when opening), codes,
paper ballots, results, opinions.

A cadre moved or promoted since (``Person.unit_id``/``Person.post`` differ from the subject's)
is listed for the organiser to confirm per person: take the current 职务 and unit, or keep
the old ones.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from evaluation import audit
from evaluation.accounts.units import in_tree
from evaluation.ballot_forms import BallotForm
from evaluation.errors import FormError, InputError
from evaluation.extensions import db
from evaluation.models import Person, Round, RoundState, Stratum, Subject, Unit
from evaluation.rounds.operations import available_forms, check_year
from evaluation.rounds.state import round_rule_set
from evaluation.rule_sets import RuleSet

MAX_TITLE = 300


@dataclass(frozen=True)
class Moved:
    """A cadre of the round whose 职务 or unit is no longer what the round has."""

    person_id: int
    name: str
    subjects: tuple[str, ...]
    post_then: str
    unit_then: str
    post_now: str
    unit_now: str
    # False when the cadre's unit now is outside the copying account's tree.
    may_take: bool = True


def _moved(person: Person, subject: Subject) -> bool:
    # A blank 职务 (on the cadre: never recorded; on the subject: not shown, as for a
    # 廉洁自律 subject beside the cadre's own) is no change.
    post_changed = bool(person.post and subject.post) and person.post != subject.post
    return person.unit_id != subject.unit_id or post_changed


def moved_people(rnd: Round, scope: Unit | None = None) -> list[Moved]:
    """The round's cadres whose current 职务 or unit differs from the round's, in ballot order
    (one line per cadre, naming each of their subjects)."""
    subjects: dict[int, list[Subject]] = {}
    for subject in rnd.subjects:
        if subject.person is not None:
            subjects.setdefault(subject.person.id, []).append(subject)
    found: list[Moved] = []
    for theirs in subjects.values():
        person = theirs[0].person
        assert person is not None
        changed = [s for s in theirs if _moved(person, s)]
        if not changed:
            continue
        shown = next((s for s in changed if s.post), changed[0])
        found.append(
            Moved(
                person_id=person.id,
                name=person.name,
                subjects=tuple(s.name for s in theirs),
                post_then=shown.post or "",
                unit_then=shown.unit.path,
                post_now=person.post or "",
                unit_now=person.unit.path,
                may_take=in_tree(person.unit, scope),
            )
        )
    return found


def default_title(title: str, old_year: int, new_year: int) -> str:
    """The title with the year replaced: "2026年度…" → "2027年度…" (unchanged without it)."""
    return title.replace(str(old_year), str(new_year))


def copy_round(
    rnd: Round,
    *,
    actor: str,
    year: int,
    title: str,
    take_current: Collection[int] = (),
    scope: Unit | None = None,
) -> Round:
    """A new draft with ``rnd``'s structure, for ``year`` under ``title``; audited.

    ``take_current``: the cadres (person ids, from ``moved_people``) whose current 职务 and
    unit the copy takes; every other subject keeps the round's. ``scope``: the copying
    account's tree — a cadre now outside it cannot be taken into it.
    """
    title = (title or "").strip()
    if not title:
        raise InputError("测评活动名称不能为空")
    if len(title) > MAX_TITLE:
        raise InputError(f"测评活动名称不能超过 {MAX_TITLE} 字")
    year = check_year(year)
    taken = set(take_current)
    for moved in moved_people(rnd, scope):
        if moved.person_id in taken and not moved.may_take:
            raise InputError(
                f"“{moved.name}”现在的单位不在您的管辖范围内，不能按现单位复制："
                "请选择保留原职务和单位，或复制后删除该测评对象"
            )
    rule_set = RuleSet.from_dict(rnd.rule_set) if rnd.rule_set else round_rule_set(rnd)
    copy = Round(
        title=title,
        unit=rnd.unit,
        year=year,
        mode=rnd.mode,
        kind=rnd.kind,
        min_turnout=rnd.min_turnout,
        state=RoundState.DRAFT,
        forms=_forms(rnd, rule_set),
        rule_set=rule_set.to_dict(),
    )
    db.session.add(copy)
    subjects: dict[int, Subject] = {}
    took: list[str] = []
    for position, old in enumerate(rnd.subjects):
        person = old.person
        current = person is not None and person.id in taken
        if current and person is not None and person.name not in took:
            took.append(person.name)
        new = Subject(
            name=old.name,
            form_id=old.form_id,
            person=person,
            unit=person.unit if current and person is not None else old.unit,
            # A blank 职务 stays blank; a typed one becomes the cadre's current one.
            post=(person.post or old.post) if current and person and old.post else old.post,
            position=position,
        )
        copy.subjects.append(new)
        subjects[old.id] = new
    for position, old_stratum in enumerate(rnd.strata):
        copy.strata.append(
            Stratum(
                name=old_stratum.name,
                planned=old_stratum.planned,
                weight=old_stratum.weight,
                position=position,
                rates_all=old_stratum.rates_all,
                rated=[subjects[s.id] for s in old_stratum.rated if s.id in subjects],
            )
        )
    db.session.flush()
    audit.record(
        actor,
        "round.copy",
        round_id=copy.id,
        source_round_id=rnd.id,
        title=title,
        year=year,
        strata=len(copy.strata),
        subjects=len(copy.subjects),
        took_current=took,
    )
    return copy


def _forms(rnd: Round, rule_set: RuleSet) -> dict[str, dict[str, object]]:
    """The round's forms for the copy: today's form files where they still exist (a revised
    form is what next year's ballot should show), with the round's per-round items, graded by
    the round's rule set."""
    installed = available_forms()
    forms: dict[str, dict[str, object]] = {}
    for form_id, snapshot in (rnd.forms or {}).items():
        old = BallotForm.from_dict(snapshot)
        form = installed.get(form_id, old)
        if form.items_per_round:
            form = form.with_items([item.text for item in old.items])
        try:
            forms[form_id] = rule_set.apply(form).to_dict()
        except FormError as exc:
            raise InputError(exc.message) from None
    return forms
