"""单位: the unit tree and the scoping of users to a unit and everything beneath it.

A scope is a *root*: the unit whose tree an account acts in, or None for an admin of the whole
tree. ``evaluation.accounts.access`` asks these functions; nothing else compares paths.
"""

from __future__ import annotations

from sqlalchemy import or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from evaluation.errors import Forbidden, InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Role, Unit, User

SEPARATOR = "/"


def split_path(path: str) -> list[str]:
    """Split "甘肃省局/兰州市局" into its names, refusing empty parts."""
    names = [p.strip() for p in path.strip().split(SEPARATOR)]
    if not names or any(not n for n in names):
        raise InputError(f"单位“{path}”格式不正确：应为“上级/下级”，各级名称不能为空")
    return names


def find_unit(path: str) -> Unit | None:
    """The unit with this full path, or None."""
    return db.session.execute(
        db.select(Unit).where(Unit.path == SEPARATOR.join(split_path(path)))
    ).scalar_one_or_none()


def get_unit(path: str) -> Unit:
    """The unit with this full path; NotFound otherwise."""
    unit = find_unit(path)
    if unit is None:
        raise NotFound(f"单位“{path}”不存在")
    return unit


def ensure_unit(path: str) -> Unit:
    """The unit with this full path, creating it and any missing ancestors."""
    parent: Unit | None = None
    so_far: list[str] = []
    for name in split_path(path):
        so_far.append(name)
        full = SEPARATOR.join(so_far)
        unit = db.session.execute(db.select(Unit).where(Unit.path == full)).scalar_one_or_none()
        if unit is None:
            unit = Unit(name=name, parent=parent, path=full)
            db.session.add(unit)
            db.session.flush()
        parent = unit
    assert parent is not None
    return parent


def subtree_clause(
    column_path: ColumnElement[str] | InstrumentedAttribute[str], root: Unit
) -> ColumnElement[bool]:
    """SQL condition: ``column_path`` is ``root`` or beneath it."""
    like = root.path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column_path == root.path, column_path.like(like + SEPARATOR + "%", escape="\\"))


def visible_unit_ids(user: User) -> list[int] | None:
    """Ids of the units ``user`` may see; None means all (an admin without a unit)."""
    if user.unit is None:
        return None if user.role == Role.ADMIN else []
    rows = db.session.execute(
        db.select(Unit.id).where(subtree_clause(Unit.path, user.unit))
    ).scalars()
    return list(rows)


def scope_root(user: User) -> Unit | None:
    """The unit whose tree ``user`` acts in; None for an admin of the whole tree."""
    if user.unit is None and user.role != Role.ADMIN:
        raise Forbidden("您的账号没有所属单位，请联系管理员。")
    return user.unit


def in_tree(unit: Unit, root: Unit | None) -> bool:
    """True when ``unit`` is ``root`` or beneath it (a root of None holds every unit)."""
    return root is None or path_in_tree(unit.path, root)


def path_in_tree(path: str, root: Unit | None) -> bool:
    """True when the unit path (existing or not) is ``root`` or beneath it.

    The path is normalised first, so "甘肃省局 / 兰州市局" and "甘肃省局/兰州市局" are one unit.
    """
    if root is None:
        return True
    try:
        full = SEPARATOR.join(split_path(path))
    except InputError:
        return False
    return full == root.path or full.startswith(root.path + SEPARATOR)


def can_see(user: User, unit: Unit) -> bool:
    """True when ``unit`` is the user's unit or beneath it (admins without a unit see all)."""
    if user.unit is None:
        return user.role == Role.ADMIN
    return in_tree(unit, user.unit)


def all_units() -> list[Unit]:
    """Every unit, in path order."""
    return list(db.session.execute(db.select(Unit).order_by(Unit.path)).scalars())
