"""Reading the 廉政档案: what a user may see, timelines, cadres, flags and search.

Scoping: an entry is visible to a user when it was made in one of the user's units or belongs
to a cadre now in one of them (跟踪追究).

Reads stay flat in the length of the history (issue 18): a page reads its own subject's entries
through an index (``archive_entry.unit_id``, ``archive_entry.person_id``), never the whole
tree's; a tree is resolved to its unit and cadre ids first, so the filter is ``unit_id IN (…) OR
person_id IN (…)``, which both engines serve from those two indexes; the flags of a tree are
judged from plain columns (``subject_records``: no ORM object, no round row), and only the entries
of the flags shown are loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

from sqlalchemy import func, or_, true
from sqlalchemy.orm import aliased, contains_eager, selectinload

from evaluation.accounts.units import in_tree, path_in_tree, scope_root, subtree_clause
from evaluation.archive.accountability import subject_rules, unit_rule_sets
from evaluation.archive.rules import Flag, Judgement, Record, RuleConfig, SubjectKey, judge
from evaluation.ballot_forms import SHORT_FORM_NAMES
from evaluation.errors import NotFound
from evaluation.extensions import db
from evaluation.models import (
    ArchiveAnnotation,
    ArchiveEntry,
    Person,
    Round,
    Subject,
    Unit,
    User,
    is_row_id,
)

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


def _entries_query() -> Any:
    """Entries with their unit, cadre and cadre's current unit joined and loaded (one statement
    for any number of rows) and their correction notes; oldest first. Filters are added by the
    caller. The round is not loaded: its forms and sealed result are large and no archive page
    reads them (the entry's figures carry its title and close time)."""
    entry_unit = aliased(Unit)
    person_unit = aliased(Unit)
    return (
        db.select(ArchiveEntry)
        .join(entry_unit, ArchiveEntry.unit_id == entry_unit.id)
        .outerjoin(Person, ArchiveEntry.person_id == Person.id)
        .outerjoin(person_unit, Person.unit_id == person_unit.id)
        .join(Round, ArchiveEntry.round_id == Round.id)
        .options(
            contains_eager(ArchiveEntry.unit.of_type(entry_unit)),
            contains_eager(ArchiveEntry.person.of_type(Person)).contains_eager(
                Person.unit.of_type(person_unit)
            ),
            selectinload(ArchiveEntry.annotations),
        )
        .order_by(ArchiveEntry.year, Round.closed_at, ArchiveEntry.round_id, ArchiveEntry.id)
    )


@dataclass(frozen=True)
class Members:
    """A unit tree as ids: its units, and the cadres now in them."""

    unit_ids: list[int]
    person_ids: list[int]

    def entries(self) -> Any:
        """SQL condition: made in the tree, or of a cadre now in it (two index lookups)."""
        return or_(
            ArchiveEntry.unit_id.in_(self.unit_ids), ArchiveEntry.person_id.in_(self.person_ids)
        )

    def subjects(self) -> Any:
        """SQL condition: entries of the subjects now in the tree — its teams and organs, and
        its cadres with their whole history (made in the tree by a cadre who has left is not)."""
        return or_(
            (ArchiveEntry.unit_id.in_(self.unit_ids) & ArchiveEntry.person_id.is_(None)),
            ArchiveEntry.person_id.in_(self.person_ids),
        )


def members(tree: Unit, *, subtree: bool = True) -> Members:
    """The ids of ``tree``'s units (only itself with ``subtree=False``) and of its cadres now."""
    units = (
        db.select(Unit.id).where(subtree_clause(Unit.path, tree))
        if subtree
        else db.select(Unit.id).where(Unit.id == tree.id)
    )
    unit_ids = [int(i) for i in db.session.execute(units).scalars()]
    people = db.select(Person.id).where(Person.unit_id.in_(unit_ids))
    return Members(unit_ids, [int(i) for i in db.session.execute(people).scalars()])


def _visible_to(root: Unit | None, person: Person | None = None) -> list[Any]:
    """Conditions for entries ``root`` may see (of ``person`` when given)."""
    if person is not None:
        conditions = [ArchiveEntry.person_id == person.id]
        if root is not None and not in_scope(person.unit, root):
            # A cadre who moved away: only what was made in the account's units.
            conditions.append(ArchiveEntry.unit_id.in_(members(root).unit_ids))
        return conditions
    return [] if root is None else [members(root).entries()]


def visible_conditions(
    root: Unit | None, *, person: Person | None = None, tree: Unit | None = None
) -> list[Any]:
    """Conditions for the entries in scope; optionally of one person, or under one unit's tree
    (with its cadres). ``tree`` must be in scope (``get_unit``): what is made in it or belongs
    to a cadre now in it is then visible, so the scope's own condition is not needed beside it.
    """
    if tree is not None and person is None:
        return [members(tree).entries()]
    conditions = _visible_to(root, person)
    if tree is not None:
        conditions.append(members(tree).entries())
    return conditions


def visible_entries(
    root: Unit | None, *, person: Person | None = None, tree: Unit | None = None
) -> list[ArchiveEntry]:
    """Entries in scope; optionally of one person, or under one unit's tree (with its cadres)."""
    query = _entries_query().where(*visible_conditions(root, person=person, tree=tree))
    return list(db.session.execute(query).scalars())


def visible_entries_of(root: Unit | None, people: Iterable[int | None]) -> list[ArchiveEntry]:
    """The entries of these cadres that ``root`` may see (through the person index)."""
    ids = sorted({p for p in people if p is not None})
    query = _entries_query().where(ArchiveEntry.person_id.in_(ids), *_visible_to(root))
    return list(db.session.execute(query).scalars())


def unit_cadre_entries(unit: Unit, year: int) -> list[ArchiveEntry]:
    """The entries of cadres evaluated in ``unit`` (in scope) in ``year``."""
    query = _entries_query().where(
        ArchiveEntry.unit_id == unit.id,
        ArchiveEntry.year == year,
        ArchiveEntry.person_id.is_not(None),
    )
    return list(db.session.execute(query).scalars())


def count_visible(
    root: Unit | None, *, person: Person | None = None, tree: Unit | None = None
) -> int:
    """How many entries ``visible_entries`` would return, without reading them."""
    conditions = visible_conditions(root, person=person, tree=tree)
    query = db.select(func.count()).select_from(ArchiveEntry).where(*conditions)
    return int(db.session.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class CadreRow:
    """The cadre of an ``EntryRow``."""

    id: int
    name: str
    staff_no: str | None
    post: str | None


@dataclass(frozen=True, slots=True)
class UnitRow:
    """The unit of an ``EntryRow`` (where the entry was made)."""

    id: int
    path: str


@dataclass(frozen=True, slots=True)
class EntryRow:
    """An archive entry as the export writes it: plain columns, no ORM object (a province's
    12,000 entries stream in a fraction of the time). Same attribute names as ArchiveEntry."""

    id: int
    round_id: int
    subject_id: int
    year: int
    subject_name: str
    form_id: str
    figures: dict[str, Any]
    grade: str | None
    rank: int | None
    valid_round: bool
    seal: str
    opinion: str
    rectification: str
    person: CadreRow | None
    unit: UnitRow

    @property
    def round(self) -> Round:
        """The entry's round (read only for entries whose figures predate what they keep)."""
        return db.session.get_one(Round, self.round_id)


def stream_entries(
    conditions: Sequence[Any], chunk: int = 200
) -> Iterator[tuple[EntryRow, str | None]]:
    """The entries matching ``conditions`` in archive order, each with the 职务 its round's
    subject row kept, read ``chunk`` rows at a time through one statement (a server-side
    cursor on PostgreSQL): memory holds a chunk, not the archive. Correction notes are read
    apart (``notes_by_entry``)."""
    entry_unit = aliased(Unit)
    query = (
        db.select(
            ArchiveEntry.id,
            ArchiveEntry.round_id,
            ArchiveEntry.subject_id,
            ArchiveEntry.year,
            ArchiveEntry.subject_name,
            ArchiveEntry.form_id,
            ArchiveEntry.figures,
            ArchiveEntry.grade,
            ArchiveEntry.rank,
            ArchiveEntry.valid_round,
            ArchiveEntry.seal,
            ArchiveEntry.opinion,
            ArchiveEntry.rectification,
            Person.id,
            Person.name,
            Person.staff_no,
            Person.post,
            entry_unit.id,
            entry_unit.path,
            Subject.post,
        )
        .join(entry_unit, ArchiveEntry.unit_id == entry_unit.id)
        .outerjoin(Person, ArchiveEntry.person_id == Person.id)
        .outerjoin(Subject, ArchiveEntry.subject_id == Subject.id)
        .join(Round, ArchiveEntry.round_id == Round.id)
        .where(*conditions)
        .order_by(ArchiveEntry.year, Round.closed_at, ArchiveEntry.round_id, ArchiveEntry.id)
        .execution_options(yield_per=chunk)
    )
    for row in db.session.execute(query):
        person = None if row[13] is None else CadreRow(row[13], row[14], row[15], row[16])
        entry = EntryRow(
            id=row[0],
            round_id=row[1],
            subject_id=row[2],
            year=row[3],
            subject_name=row[4],
            form_id=row[5],
            figures=row[6] or {},
            grade=row[7],
            rank=row[8],
            valid_round=bool(row[9]),
            seal=row[10],
            opinion=row[11] or "",
            rectification=row[12] or "",
            person=person,
            unit=UnitRow(row[17], row[18]),
        )
        yield entry, row[19]


def notes_by_entry(conditions: Sequence[Any]) -> dict[int, list[ArchiveAnnotation]]:
    """The correction notes of the entries matching ``conditions``, oldest first (one read)."""
    query = (
        db.select(ArchiveAnnotation)
        .join(ArchiveEntry, ArchiveAnnotation.entry_id == ArchiveEntry.id)
        .where(*conditions)
        .order_by(ArchiveAnnotation.id)
    )
    notes: dict[int, list[ArchiveAnnotation]] = {}
    for note in db.session.execute(query).scalars():
        notes.setdefault(note.entry_id, []).append(note)
    return notes


def entries_by_id(ids: Iterable[int]) -> dict[int, ArchiveEntry]:
    """Entries by id, loaded as the pages show them (the caller has checked the scope)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = _entries_query().where(ArchiveEntry.id.in_(wanted))
    return {e.id: e for e in db.session.execute(query).scalars()}


def get_entry(entry_id: int, root: Unit | None) -> ArchiveEntry:
    """One entry in scope; NotFound otherwise."""
    entry = db.session.execute(
        _entries_query().where(ArchiveEntry.id == entry_id, *_visible_to(root))
    ).scalar_one_or_none()
    if entry is None:
        raise NotFound(f"档案记录 {entry_id} 不存在或不在您的管辖范围内")
    return entry


def get_person(person_id: int, root: Unit | None) -> Person:
    """The person, if they are in scope now or have an entry in scope; NotFound otherwise."""
    person = db.session.get(Person, person_id) if is_row_id(person_id) else None
    if person is not None and (
        in_scope(person.unit, root) or count_visible(root, person=person) > 0
    ):
        return person
    raise NotFound(f"干部 {person_id} 不存在或不在您的管辖范围内")


def get_unit(unit_id: int, root: Unit | None) -> Unit:
    """The unit, if it is in scope; NotFound otherwise."""
    unit = db.session.get(Unit, unit_id) if is_row_id(unit_id) else None
    if unit is None or not in_scope(unit, root):
        raise NotFound(f"单位 {unit_id} 不存在或不在您的管辖范围内")
    return unit


# --- reading entries ---------------------------------------------------------------------------


def share(entry: ArchiveEntry | EntryRow, key: str) -> Fraction | None:
    """An exact share from the entry's figures ("p/q" text), or None."""
    return fraction((entry.figures or {}).get(key))


def fraction(text: str | None) -> Fraction | None:
    """A stored exact share ("p/q" or "n") as a Fraction; None stays None."""
    return None if text is None else _fraction(str(text))


@lru_cache(maxsize=8192)
def _fraction(text: str) -> Fraction:
    """Shares repeat across a history (1/2, 2/3 …): each text is parsed once per process
    (a Fraction is immutable, so sharing one is safe)."""
    numerator, slash, denominator = str(text).partition("/")
    try:
        return Fraction(int(numerator), int(denominator) if slash else 1)
    except ValueError:
        return Fraction(text)  # any other form Fraction reads ("0.5")


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def closed_at(entry: ArchiveEntry) -> datetime | None:
    """When the entry's round closed (UTC)."""
    return _aware(entry.closed_at)


def subject_key(entry: ArchiveEntry) -> tuple[str, int]:
    """("person", id) for a cadre, ("unit", id) for a team or discipline organ."""
    if entry.person_id is not None:
        return ("person", entry.person_id)
    return ("unit", entry.unit_id)


def _label(name: str, staff_no: str | None) -> str:
    return f"{name}（{staff_no}）" if staff_no else name


def subject_label(entry: ArchiveEntry) -> str:
    """How flags name the subject: the cadre's name (and staff number), or the unit's path."""
    if entry.person is not None:
        return _label(entry.person.name, entry.person.staff_no)
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
        satisfaction=fraction(entry.satisfaction_rate),
        trust=fraction(entry.trust_rate),
        grade=entry.grade,
        weighted=entry.weighted,
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


@dataclass
class Judged:
    """Records judged, each subject by the set of its current unit."""

    judgement: Judgement
    rule_sets: dict[str, RuleConfig]


def build_timeline(entries: Sequence[ArchiveEntry], *, restricted: bool = False) -> Timeline:
    """Apply the rules to ``entries``: each subject by the set of its current unit."""
    config = subject_rules({subject_key(e): current_unit(e) for e in entries})
    judgement = judge([to_record(e) for e in entries], config, form_titles(entries))
    used = {r.id: r for r in (config(subject) for subject in {subject_key(e) for e in entries})}
    return Timeline(
        entries=list(entries),
        flags=judgement.flags,
        current=judgement.current,
        counted=judgement.counted,
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
    """The entries of a unit's own team and discipline organ (``unit`` is in scope)."""
    query = _entries_query().where(
        ArchiveEntry.unit_id == unit.id, ArchiveEntry.person_id.is_(None)
    )
    return build_timeline(list(db.session.execute(query).scalars()))


@dataclass(frozen=True)
class Cadre:
    """A cadre listed on a unit's page."""

    person: Person
    current: bool
    years: tuple[int, ...]


def unit_cadres(unit: Unit, root: Unit | None) -> list[Cadre]:
    """Cadres now in the unit, and those evaluated there before they moved (two statements)."""
    years: dict[int, set[int]] = {}
    evaluated_here = db.select(ArchiveEntry.person_id, ArchiveEntry.year).where(
        ArchiveEntry.unit_id == unit.id, ArchiveEntry.person_id.is_not(None)
    )
    for person_id, year in db.session.execute(evaluated_here.distinct()):
        years.setdefault(int(person_id), set()).add(int(year))
    person_unit = aliased(Unit)
    people = (
        db.select(Person)
        .join(person_unit, Person.unit_id == person_unit.id)
        .where(or_(Person.unit_id == unit.id, Person.id.in_(sorted(years))))
        .options(contains_eager(Person.unit.of_type(person_unit)))
    )
    return sorted(
        (
            Cadre(person=p, current=p.unit_id == unit.id, years=tuple(sorted(years.get(p.id, ()))))
            for p in db.session.execute(people).scalars()
        ),
        key=lambda c: (not c.current, c.person.name, c.person.id),
    )


def subject_records(condition: Any) -> Iterator[tuple[SubjectKey, int, list[Record]]]:
    """The rules' data of the entries matching ``condition``, one subject at a time: (subject,
    the id of the unit it belongs to now, its records). Plain columns (no figures, no ORM
    object), one statement read in chunks, ordered by subject: memory holds one subject's
    history, not the archive's."""
    entry_unit = aliased(Unit)
    query = (
        db.select(
            ArchiveEntry.id,
            ArchiveEntry.person_id,
            ArchiveEntry.unit_id,
            ArchiveEntry.year,
            ArchiveEntry.form_id,
            ArchiveEntry.valid_round,
            ArchiveEntry.round_id,
            ArchiveEntry.grade,
            ArchiveEntry.closed_at,
            ArchiveEntry.satisfaction_rate,
            ArchiveEntry.trust_rate,
            ArchiveEntry.weighted,
            Person.name,
            Person.staff_no,
            Person.unit_id,
            entry_unit.path,
        )
        .join(entry_unit, ArchiveEntry.unit_id == entry_unit.id)
        .outerjoin(Person, ArchiveEntry.person_id == Person.id)
        .where(condition)
        # A cadre's entries together (across the units they served in), then each team's.
        .order_by(ArchiveEntry.person_id, ArchiveEntry.unit_id)
        .execution_options(yield_per=500)
    )
    current: SubjectKey | None = None
    unit_now = 0
    records: list[Record] = []
    for row in db.session.execute(query):
        entry_id, person_id, unit_id, year, form_id, valid, round_id, grade = row[:8]
        closed, satisfaction, trust, weighted, name, staff_no, now_in, path = row[8:]
        subject: SubjectKey = ("person", person_id) if person_id is not None else ("unit", unit_id)
        if subject != current:
            if current is not None:
                yield current, unit_now, records
            current, records = subject, []
            unit_now = now_in if person_id is not None else unit_id
        records.append(
            Record(
                entry_id=entry_id,
                subject=subject,
                subject_name=_label(name, staff_no) if person_id is not None else path,
                year=year,
                form_id=form_id,
                valid_round=bool(valid),
                round_id=round_id,
                closed_at=_aware(closed),
                satisfaction=fraction(satisfaction),
                trust=fraction(trust),
                grade=grade,
                weighted=bool(weighted),
            )
        )
    if current is not None:
        yield current, unit_now, records


class _FormTitles(dict[str, str]):
    """Form id → the title a flag names it by: the short name of a shipped form, else the
    title an entry of the form keeps (read once per other form, when first needed)."""

    def __missing__(self, form_id: str) -> str:
        title = (
            SHORT_FORM_NAMES.get(form_id)
            or db.session.execute(
                db.select(ArchiveEntry.figures["form_title"].as_string())
                .where(ArchiveEntry.form_id == form_id)
                .limit(1)
            ).scalar()
        )
        self[form_id] = title or form_id
        return self[form_id]


def judge_condition(condition: Any) -> Judged:
    """The rules applied to the entries matching ``condition``, subject by subject (each by
    the set of the unit it belongs to now): two statements — the units, and the entries'
    plain columns streamed (``subject_records``) — however long the history."""
    # Every unit, so that a subject's unit and its ancestors are found without a query each
    # (units, not entries: a province has a few hundred).
    units = {u.id: u for u in db.session.execute(db.select(Unit)).scalars()}
    rules_of = unit_rule_sets(units)
    titles = _FormTitles()
    flags: list[Flag] = []
    latest: dict[SubjectKey, int] = {}
    counted: set[int] = set()
    used: dict[str, RuleConfig] = {}
    for _subject, unit_id, records in subject_records(condition):
        rules = rules_of(unit_id)
        used[rules.id] = rules
        for form_id in {r.form_id for r in records}:
            titles[form_id]  # noqa: B018 - read now, outside the rules (they take a mapping)
        judged = judge(records, rules, titles)
        flags += judged.flags
        latest.update(judged.latest)
        counted |= judged.counted
    flags.sort(key=lambda f: (f.subject, f.year, f.rule, f.form_id))
    return Judged(Judgement(flags, latest, counted), used)


def current_flags_under(
    root: Unit | None, tree: Unit | None = None, *, subtree: bool = True
) -> list[Flag]:
    """Every flag still in force for subjects now under ``tree`` (default: the scope), or now
    in ``tree`` itself with ``subtree=False``.

    The rules run over each subject's whole history, so a cadre who moved in brings the years
    served elsewhere with them; a cadre who moved away is judged by their new unit. A subject
    now in the account's scope may be seen whole (SPEC §9 跟踪追究).
    """
    where = tree if tree is not None else root
    condition = true() if where is None else members(where, subtree=subtree).subjects()
    return judge_condition(condition).judgement.current


def with_entries(flags: Sequence[Flag]) -> list[tuple[Flag, ArchiveEntry]]:
    """Each flag with the entry it was raised on (loaded in one statement)."""
    entries = entries_by_id(f.entry_ids[-1] for f in flags)
    return [(f, entries[f.entry_ids[-1]]) for f in flags]


def flags_overview(root: Unit | None, tree: Unit | None = None) -> list[tuple[Flag, ArchiveEntry]]:
    """All flags still in force for subjects now under ``tree`` (default: the user's scope),
    each with the entry it was raised on."""
    return with_entries(current_flags_under(root, tree))


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
    query = (
        db.select(ArchiveEntry.year)
        .where(ArchiveEntry.unit_id == unit.id, ArchiveEntry.person_id.is_not(None))
        .distinct()
    )
    return sorted((int(y) for y in db.session.execute(query).scalars()), reverse=True)


def find_person_by_staff_no(staff_no: str) -> Person:
    """The person with this staff number; NotFound otherwise."""
    person = db.session.execute(
        db.select(Person).where(Person.staff_no == staff_no.strip())
    ).scalar_one_or_none()
    if person is None:
        raise NotFound(f"工号“{staff_no}”的干部不存在")
    return person
