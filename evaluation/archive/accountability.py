"""责任追究规则集 per unit (SPEC §9): the files, and which set a unit's subjects are judged by.

Sets live in ``<BALLOTS_DIR>/accountability/<id>.toml`` (format: ``evaluation.archive.rules
.parse_rule_set``; the shipped ``000-county.toml`` is 000 §五, one county's policy). A unit
chooses one (``Unit.accountability_rules``); a unit that chose none uses its parent's, and the
top of the tree uses ``000-county``. If that file is absent the built-in copy of it
(``RuleConfig()``, equal to the file) applies, so the archive always has rules.

The flags of a subject follow the set of the subject's **current** unit: a cadre's
``person.unit``, a team's or discipline organ's own unit.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from evaluation import audit
from evaluation.accounts.units import SEPARATOR
from evaluation.archive.rules import (
    DEFAULT_SET_ID,
    RuleConfig,
    RuleConfigError,
    SubjectKey,
    parse_rule_set,
)
from evaluation.ballot_forms import load_form_file
from evaluation.errors import FormError, InputError
from evaluation.extensions import db
from evaluation.models import Unit

ACCOUNTABILITY_DIR = "accountability"

_cache: dict[tuple[object, ...], dict[str, RuleConfig]] = {}


def load_sets(ballots_dir: str | Path) -> dict[str, RuleConfig]:
    """Every set in ``<ballots_dir>/accountability/``, the default first.

    RuleConfigError names the file and the key of the first problem.
    """
    directory = Path(ballots_dir)
    folder = directory / ACCOUNTABILITY_DIR
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    key = (str(directory), *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    if key in _cache:
        return _cache[key]
    grades: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            form = load_form_file(path)
        except FormError:
            continue  # a bad form file is reported where forms are loaded
        grades[form.id] = tuple(g.label for g in form.grades)
    sets: dict[str, RuleConfig] = {DEFAULT_SET_ID: RuleConfig()}
    for path in sorted(files, key=lambda p: (p.stem != DEFAULT_SET_ID, p.stem)):
        where = f"{ACCOUNTABILITY_DIR}/{path.name}"
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise RuleConfigError(f"{where}：TOML 格式错误（{exc}）") from None
        rule_set = parse_rule_set(data, where, grades or None)
        if rule_set.id != path.stem:
            raise RuleConfigError(f"{where}：id “{rule_set.id}”应与文件名 {path.stem} 一致")
        sets[rule_set.id] = rule_set
    _cache.clear()
    _cache[key] = sets
    return sets


def available_sets() -> dict[str, RuleConfig]:
    """The sets of this installation (``BALLOTS_DIR``); a bad file is an InputError."""
    try:
        return load_sets(current_app.config["BALLOTS_DIR"])
    except RuleConfigError as exc:
        raise InputError(f"责任追究规则集文件有误：{exc}") from None


@dataclass(frozen=True)
class Choice:
    """The set that applies to a unit, and where it was chosen."""

    rules: RuleConfig
    # The unit whose choice applies (itself or an ancestor); None: the shipped default.
    chosen_by: Unit | None


def load_ancestors(units: Iterable[Unit]) -> list[Unit]:
    """Read every ancestor of ``units`` in one query, so walking ``Unit.parent`` up from any of
    them finds each in the session instead of one SELECT per level (and per unit).

    The session holds its objects weakly: keep the returned list while walking.
    """
    paths: set[str] = set()
    for unit in units:
        parts = unit.path.split(SEPARATOR)
        paths.update(SEPARATOR.join(parts[:n]) for n in range(1, len(parts)))
    if not paths:
        return []
    query = db.select(Unit).where(Unit.path.in_(sorted(paths)))
    return list(db.session.execute(query).scalars())


def unit_choice(unit: Unit, sets: dict[str, RuleConfig] | None = None) -> Choice:
    """The set for ``unit``: its own choice, else the nearest ancestor's, else the default."""
    sets = sets if sets is not None else available_sets()
    ancestors = load_ancestors([unit])
    choice = _choice(unit, sets)
    del ancestors  # held until the walk is done
    return choice


def unit_choices(units: list[Unit], sets: dict[str, RuleConfig]) -> dict[int, Choice]:
    """``unit_choice`` of each unit, their ancestors read in one query (not one per unit)."""
    ancestors = load_ancestors(units)
    choices = {u.id: _choice(u, sets) for u in units}
    del ancestors  # held until the walks are done
    return choices


def _choice(unit: Unit, sets: dict[str, RuleConfig]) -> Choice:
    """``unit_choice`` for a unit whose ancestors are in the session (``load_ancestors``)."""
    current: Unit | None = unit
    while current is not None:
        if current.accountability_rules:
            rules = sets.get(current.accountability_rules)
            if rules is None:
                raise InputError(
                    f"单位“{current.path}”选用的责任追究规则集“{current.accountability_rules}”"
                    f"不存在（{ACCOUNTABILITY_DIR}/{current.accountability_rules}.toml）；"
                    "请在“单位”页重新选择"
                )
            return Choice(rules, current)
        current = current.parent
    return Choice(sets[DEFAULT_SET_ID], None)


def unit_rules(unit: Unit, sets: dict[str, RuleConfig] | None = None) -> RuleConfig:
    """The set that judges the subjects now in ``unit``."""
    return unit_choice(unit, sets).rules


def subject_rules(units_now: dict[SubjectKey, Unit]) -> Callable[[SubjectKey], RuleConfig]:
    """For ``evaluate``: each subject's set, from its current unit (cached per unit)."""
    sets = available_sets()
    units = {u.id: u for u in units_now.values()}
    ancestors = load_ancestors(units.values())
    rules_of = unit_rule_sets(units, sets)

    def rules_for(subject: SubjectKey) -> RuleConfig:
        unit = units_now.get(subject)
        if unit is None:
            return sets[DEFAULT_SET_ID]
        assert ancestors is not None  # the closure holds them while rules_for lives
        return rules_of(unit.id)

    return rules_for


def unit_rule_sets(
    units: dict[int, Unit], sets: dict[str, RuleConfig] | None = None
) -> Callable[[int], RuleConfig]:
    """Unit id → the set its subjects are judged by, for ``units`` (whose ancestors must be in
    the session: ``load_ancestors``, or every unit read at once), cached per unit."""
    sets = available_sets() if sets is None else sets
    by_unit: dict[int, RuleConfig] = {}

    def rules_for(unit_id: int) -> RuleConfig:
        if unit_id not in by_unit:
            by_unit[unit_id] = _choice(units[unit_id], sets).rules
        return by_unit[unit_id]

    return rules_for


def choose_set(unit: Unit, set_id: str | None, *, actor: str) -> bool:
    """选用责任追究规则集 for ``unit`` (None: inherit the parent's); audited. True if changed."""
    set_id = (set_id or "").strip() or None
    if set_id is not None and set_id not in available_sets():
        raise InputError(f"责任追究规则集“{set_id}”不存在，请从列表中选择")
    old = unit.accountability_rules
    if old == set_id:
        return False
    unit.accountability_rules = set_id
    db.session.flush()
    audit.record(
        actor,
        "unit.accountability_rules",
        unit_id=unit.id,
        unit=unit.path,
        old=old,
        new=set_id,
    )
    return True
