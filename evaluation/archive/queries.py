"""Reading the 廉政档案: what a user may see, timelines, cadres, flags and search.

Scoping: an entry is visible to a user when it was made in one of the user's units or belongs
to a cadre now in one of them (跟踪追究).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.orm import aliased, contains_eager, selectinload

from evaluation.accounts.units import in_tree, path_in_tree, scope_root, subtree_clause
from evaluation.archive.accountability import subject_rules
from evaluation.archive.rules import (
    Flag,
    Record,
    RuleConfig,
    counted_entry_ids,
    evaluate,
    is_current,
    latest_years,
)
from evaluation.errors import NotFound
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Person, Round, Unit, User, is_row_id

# --- scoping -----------------------------------------------------------------------------------


def user_root(user: User) -> Unit | None:
    """The unit whose tree the user sees; None for an admin of the whole tree."""
    return scope_root(user)


def in_scope(unit: Unit, root: Unit | None) -> bool:
    """True when ``unit`` is ``root`` or beneath it (None: everything)."""
    return in_tree(unit, root)


def rounds_in_scope(entries: Iterable[ArchiveEntry], root: Unit | None) -> set[int]:
    """The rounds of ``entries`` the account (scope ``root``) may open, in one query.

    A round outside the scope is named on the archive pages but not linked, and its ranks are
    not shown: a rank is a place among subjects the account cannot see (SPEC §7 scope).
    """
    ids = {e.round_id for e in entries}
    if not ids:
        return set()
    if root is None:
        return ids
    rows = db.session.execute(
        db.select(Round.id, Unit.path).join(Unit, Round.unit_id == Unit.id).where(Round.id.in_(ids))
    )
    return {int(round_id) for round_id, path in rows if path_in_tree(path, root)}


def _entries_query(*trees: Unit | None, subjects_now_in: Unit | None = None) -> Any:
    """Entries made in each of ``trees`` or belonging to a cadre now in it (None: everywhere).

    ``subjects_now_in`` keeps only the entries of units in that tree and of cadres now in it.
    """
    entry_unit = aliased(Unit)
    person_unit = aliased(Unit)
    query = (
        db.select(ArchiveEntry)
        .join(entry_unit, ArchiveEntry.unit_id == entry_unit.id)
        .outerjoin(Person, ArchiveEntry.person_id == Person.id)
        .outerjoin(person_unit, Person.unit_id == person_unit.id)
        .join(Round, ArchiveEntry.round_id == Round.id)
        .options(
            selectinload(ArchiveEntry.annotations),
            selectinload(ArchiveEntry.round),
            selectinload(ArchiveEntry.unit),
            selectinload(ArchiveEntry.person).selectinload(Person.unit),
        )
    )
    for tree in trees:
        if tree is not None:
            query = query.where(
                or_(subtree_clause(entry_unit.path, tree), subtree_clause(person_unit.path, tree))
            )
    if subjects_now_in is not None:
        query = query.where(
            or_(
                and_(
                    ArchiveEntry.person_id.is_(None),
                    subtree_clause(entry_unit.path, subjects_now_in),
                ),
                subtree_clause(person_unit.path, subjects_now_in),
            )
        )
    return query.order_by(
        ArchiveEntry.year, Round.closed_at, ArchiveEntry.round_id, ArchiveEntry.id
    )


def visible_entries(
    root: Unit | None, *, person: Person | None = None, tree: Unit | None = None
) -> list[ArchiveEntry]:
    """Entries in scope; optionally of one person, or under one unit's tree (with its cadres)."""
    query = _entries_query(root, tree)
    if person is not None:
        query = query.where(ArchiveEntry.person_id == person.id)
    return list(db.session.execute(query).scalars())


def get_entry(entry_id: int, root: Unit | None) -> ArchiveEntry:
    """One entry in scope; NotFound otherwise."""
    entry = db.session.execute(
        _entries_query(root).where(ArchiveEntry.id == entry_id)
    ).scalar_one_or_none()
    if entry is None:
        raise NotFound(f"档案记录 {entry_id} 不存在或不在您的管辖范围内")
    return entry


def get_person(person_id: int, root: Unit | None) -> Person:
    """The person, if they are in scope now or have an entry in scope; NotFound otherwise."""
    person = db.session.get(Person, person_id) if is_row_id(person_id) else None
    if person is not None and (in_scope(person.unit, root) or visible_entries(root, person=person)):
        return person
    raise NotFound(f"干部 {person_id} 不存在或不在您的管辖范围内")


def get_unit(unit_id: int, root: Unit | None) -> Unit:
    """The unit, if it is in scope; NotFound otherwise."""
    unit = db.session.get(Unit, unit_id) if is_row_id(unit_id) else None
    if unit is None or not in_scope(unit, root):
        raise NotFound(f"单位 {unit_id} 不存在或不在您的管辖范围内")
    return unit


# --- reading entries ---------------------------------------------------------------------------


def share(entry: ArchiveEntry, key: str) -> Fraction | None:
    """An exact share from the entry's figures ("p/q" text), or None."""
    value = (entry.figures or {}).get(key)
    return None if value is None else Fraction(value)


def closed_at(entry: ArchiveEntry) -> datetime | None:
    """When the entry's round closed (UTC)."""
    text = (entry.figures or {}).get("closed_at")
    moment = datetime.fromisoformat(text) if text else entry.round.closed_at
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def subject_key(entry: ArchiveEntry) -> tuple[str, int]:
    """("person", id) for a cadre, ("unit", id) for a team or discipline organ."""
    if entry.person_id is not None:
        return ("person", entry.person_id)
    return ("unit", entry.unit_id)


def subject_label(entry: ArchiveEntry) -> str:
    """How flags name the subject: the cadre's name (and staff number), or the unit's path."""
    if entry.person is not None:
        person = entry.person
        return f"{person.name}（{person.staff_no}）" if person.staff_no else person.name
    return entry.unit.path


def to_record(entry: ArchiveEntry) -> Record:
    """The plain data the rules need from an entry."""
    return Record(
        entry_id=entry.id,
        subject=subject_key(entry),
        subject_name=subject_label(entry),
        year=entry.year,
        form_id=entry.form_id,
        valid_round=entry.valid_round,
        round_id=entry.round_id,
        closed_at=closed_at(entry),
        satisfaction=share(entry, "satisfaction_rate"),
        trust=share(entry, "trust_rate"),
        grade=entry.grade,
        weighted=bool((entry.figures or {}).get("weighted")),
    )


def form_titles(entries: Iterable[ArchiveEntry]) -> dict[str, str]:
    """Form id → title, from the entries' own figures."""
    return {e.form_id: (e.figures or {}).get("form_title", e.form_id) for e in entries}


@dataclass
class Timeline:
    """A person's or unit's entries with the rules applied."""

    entries: list[ArchiveEntry]
    flags: list[Flag]
    current: list[Flag]
    counted: set[int]
    restricted: bool = False
    years: list[int] = field(default_factory=list)
    # The rule sets that judged these entries' subjects (by id), and the forms they read.
    rule_sets: dict[str, RuleConfig] = field(default_factory=dict)
    counted_forms: set[str] = field(default_factory=set)

    def flags_for(self, entry: ArchiveEntry) -> list[Flag]:
        """Flags an entry contributes to, raised in its own year."""
        return [f for f in self.flags if f.entry_ids and f.entry_ids[-1] == entry.id]


def current_unit(entry: ArchiveEntry) -> Unit:
    """The unit a subject belongs to now: a cadre's current unit, else the entry's unit."""
    return entry.person.unit if entry.person is not None else entry.unit


def build_timeline(entries: Sequence[ArchiveEntry], *, restricted: bool = False) -> Timeline:
    """Apply the rules to ``entries``: each subject by the set of its current unit."""
    config = subject_rules({subject_key(e): current_unit(e) for e in entries})
    records = [to_record(e) for e in entries]
    flags = evaluate(records, config, form_titles(entries))
    latest = latest_years(records, config)
    used = {r.id: r for r in (config(rec.subject) for rec in records)}
    return Timeline(
        entries=list(entries),
        flags=flags,
        current=[f for f in flags if is_current(f, latest)],
        counted=counted_entry_ids(records, config),
        restricted=restricted,
        years=sorted({e.year for e in entries}),
        rule_sets=used,
        counted_forms=set().union(*(r.forms for r in used.values())),
    )


def person_timeline(person: Person, root: Unit | None) -> Timeline:
    """Every year's entries of a cadre, across the units they served in."""
    entries = visible_entries(root, person=person)
    restricted = not in_scope(person.unit, root)
    timeline = build_timeline(entries, restricted=restricted)
    if restricted:
        # Only part of the history is visible here: what is in force is for the new unit to say.
        timeline.current = []
    return timeline


def unit_timeline(unit: Unit, root: Unit | None) -> Timeline:
    """The entries of a unit's own team and discipline organ."""
    entries = [
        e for e in visible_entries(root, tree=unit) if e.person_id is None and e.unit_id == unit.id
    ]
    return build_timeline(entries)


@dataclass(frozen=True)
class Cadre:
    """A cadre listed on a unit's page."""

    person: Person
    current: bool
    years: tuple[int, ...]


def unit_cadres(unit: Unit, root: Unit | None) -> list[Cadre]:
    """Cadres now in the unit, and those evaluated there before they moved."""
    entries = [e for e in visible_entries(root, tree=unit) if e.person is not None]
    years: dict[int, set[int]] = {}
    people: dict[int, Person] = {}
    for e in entries:
        assert e.person is not None
        if e.unit_id == unit.id or e.person.unit_id == unit.id:
            people[e.person.id] = e.person
            if e.unit_id == unit.id:
                years.setdefault(e.person.id, set()).add(e.year)
    for person in db.session.execute(db.select(Person).where(Person.unit_id == unit.id)).scalars():
        people.setdefault(person.id, person)
    return sorted(
        (
            Cadre(person=p, current=p.unit_id == unit.id, years=tuple(sorted(years.get(p.id, ()))))
            for p in people.values()
        ),
        key=lambda c: (not c.current, c.person.name, c.person.id),
    )


def flags_overview(root: Unit | None, tree: Unit | None = None) -> list[tuple[Flag, ArchiveEntry]]:
    """All flags still in force for subjects now under ``tree`` (default: the user's scope).

    The rules run over each subject's whole visible history, so a cadre who moved in brings the
    years served elsewhere with them; a cadre who moved away is judged by their new unit.
    """
    where = tree if tree is not None else root
    query = _entries_query(root, subjects_now_in=where)
    entries = list(db.session.execute(query).scalars())
    timeline = build_timeline(entries)
    by_id = {e.id: e for e in entries}
    return [(f, by_id[f.entry_ids[-1]]) for f in timeline.current]


# --- search ------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """Cadres and units matching a search."""

    people: list[Person]
    units: list[Unit]
    # How many matched in all (the lists stop at the search's limit; the page says so).
    people_total: int = 0
    units_total: int = 0


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(root: Unit | None, query: str, limit: int = 100) -> SearchResult:
    """Cadres by name or staff number, units by name or path, within the user's scope."""
    query = (query or "").strip()
    units_q = db.select(Unit).order_by(Unit.path)
    if root is not None:
        units_q = units_q.where(subtree_clause(Unit.path, root))
    if query:
        units_q = units_q.where(Unit.path.like(_like(query), escape="\\"))
    units = list(db.session.execute(units_q.limit(limit)).scalars())
    units_total = _total(units_q, len(units), limit)
    if not query:
        return SearchResult(people=[], units=units, units_total=units_total)
    person_unit = aliased(Unit)
    people_q = (
        db.select(Person)
        .join(person_unit, Person.unit_id == person_unit.id)
        .where(
            or_(
                Person.name.like(_like(query), escape="\\"),
                Person.staff_no.ilike(_like(query), escape="\\"),
                person_unit.path.like(_like(query), escape="\\"),
            )
        )
        .order_by(Person.name, Person.id)
        # The unit is joined already: the page reads it without one query per cadre.
        .options(contains_eager(Person.unit.of_type(person_unit)))
    )
    if root is not None:
        entry_unit = aliased(Unit)
        had_entry_here = (
            db.select(ArchiveEntry.id)
            .join(entry_unit, ArchiveEntry.unit_id == entry_unit.id)
            .where(ArchiveEntry.person_id == Person.id, subtree_clause(entry_unit.path, root))
            .exists()
        )
        people_q = people_q.where(or_(subtree_clause(person_unit.path, root), had_entry_here))
    people = list(db.session.execute(people_q.limit(limit)).scalars())
    return SearchResult(
        people=people,
        units=units,
        people_total=_total(people_q, len(people), limit),
        units_total=units_total,
    )


def _total(query: Any, shown: int, limit: int) -> int:
    """How many rows ``query`` matches: ``shown`` unless the list stopped at ``limit``."""
    if shown < limit:
        return shown
    counted = query.order_by(None).options().with_only_columns(func.count()).limit(None)
    return int(db.session.execute(counted).scalar_one())


def feedback_years(unit: Unit, root: Unit | None) -> list[int]:
    """Years in which cadres of ``unit`` have archived results, newest first."""
    years = {
        e.year for e in visible_entries(root, tree=unit) if e.person_id and e.unit_id == unit.id
    }
    return sorted(years, reverse=True)


def find_person_by_staff_no(staff_no: str) -> Person:
    """The person with this staff number; NotFound otherwise."""
    person = db.session.execute(
        db.select(Person).where(Person.staff_no == staff_no.strip())
    ).scalar_one_or_none()
    if person is None:
        raise NotFound(f"工号“{staff_no}”的干部不存在")
    return person
