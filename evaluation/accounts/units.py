"""单位: the unit tree and the scoping of users to a unit and everything beneath it.

A scope is a *root*: the unit whose tree an account acts in, or None for an admin of the whole
tree. ``evaluation.accounts.access`` asks these functions; nothing else compares paths.
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from evaluation import audit
from evaluation.errors import Forbidden, InputError, NotFound
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Person, Role, Round, Subject, Unit, User

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
    """The unit with this full path, creating it and any missing ancestors.

    Only for the operator's commands (``flask round import``, ``flask user create``) and an
    admin's round file within its scope (SPEC §11); pages pick units from the tree.
    """
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


# --- changing the tree (the 单位 page; the caller checks the scope in ``access``) ---------------

MAX_NAME = 200


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InputError("单位名称不能为空")
    if SEPARATOR in name:
        raise InputError(f"单位名称不能含有“{SEPARATOR}”：请先选择上级单位，再填写本级名称")
    if len(name) > MAX_NAME:
        raise InputError(f"单位名称不能超过 {MAX_NAME} 个字")
    return name


def _refuse_clash(path: str) -> None:
    if find_unit(path) is not None:
        raise InputError(f"单位“{path}”已存在，请换一个名称（或把两个单位合并）")


def subtree(unit: Unit) -> list[Unit]:
    """``unit`` and every unit beneath it, in path order."""
    return list(
        db.session.execute(
            db.select(Unit).where(subtree_clause(Unit.path, unit)).order_by(Unit.path)
        ).scalars()
    )


def create_child_unit(parent: Unit, name: str, *, actor: str) -> Unit:
    """新建下级单位: a unit named ``name`` under ``parent`` (refused if it exists)."""
    name = _clean_name(name)
    path = parent.path + SEPARATOR + name
    _refuse_clash(path)
    unit = Unit(name=name, parent=parent, path=path)
    db.session.add(unit)
    db.session.flush()
    audit.record(actor, "unit.create", unit_id=unit.id, path=path)
    return unit


def create_top_unit(name: str, *, actor: str) -> Unit:
    """新建顶级单位 (an admin of the whole tree): a unit with no parent."""
    name = _clean_name(name)
    _refuse_clash(name)
    unit = Unit(name=name, parent=None, path=name)
    db.session.add(unit)
    db.session.flush()
    audit.record(actor, "unit.create", unit_id=unit.id, path=name)
    return unit


def _move_subtree(units: list[Unit], old_prefix: str, new_prefix: str) -> None:
    """Rewrite the paths of ``units`` (a subtree in path order) from one prefix to another."""
    for unit in units:
        unit.path = new_prefix + unit.path[len(old_prefix) :]
    db.session.flush()


def rename_unit(unit: Unit, name: str, *, actor: str) -> None:
    """改名: the unit's name, and the path of the unit and of its whole subtree."""
    name = _clean_name(name)
    old_path = unit.path
    prefix = unit.parent.path + SEPARATOR if unit.parent is not None else ""
    new_path = prefix + name
    if new_path == old_path:
        return
    _refuse_clash(new_path)
    units = subtree(unit)
    unit.name = name
    _move_subtree(units, old_path, new_path)
    audit.record(
        actor, "unit.rename", unit_id=unit.id, old=old_path, new=new_path, units=len(units)
    )


def merge_units(source: Unit, target: Unit, *, actor: str) -> dict[str, int]:
    """合并: everything that points at ``source`` moves to ``target``; ``source`` is removed.

    Persons, subjects, rounds, accounts, child units (with their subtrees) and archive entries
    move. Archive entries record the unit at the time, but a merge is an organisational change:
    the merged unit's history continues under the unit it became part of (and the audit entry
    says so). Refused when ``target`` is ``source`` or beneath it, or when a child unit's name
    is already taken under ``target``.
    """
    if in_tree(target, source):
        raise InputError(f"不能把单位“{source.path}”合并到它自己或它的下级单位“{target.path}”")
    children = list(
        db.session.execute(db.select(Unit).where(Unit.parent_id == source.id)).scalars()
    )
    clashes = [
        target.path + SEPARATOR + c.name
        for c in children
        if find_unit(target.path + SEPARATOR + c.name) is not None
    ]
    if clashes:
        raise InputError(
            f"“{target.path}”下已有同名的下级单位，不能合并：请先把这些单位改名或合并。",
            [f"单位“{path}”已存在" for path in clashes],
        )
    moved: dict[str, int] = {}
    for label, model in (
        ("persons", Person),
        ("subjects", Subject),
        ("rounds", Round),
        ("users", User),
        ("archive_entries", ArchiveEntry),
    ):
        result = db.session.execute(
            update(model)
            .where(model.unit_id == source.id)
            .values(unit_id=target.id)
            .execution_options(synchronize_session="fetch")
        )
        moved[label] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    for child in children:
        units = subtree(child)
        child.parent = target
        _move_subtree(units, child.path, target.path + SEPARATOR + child.name)
    moved["child_units"] = len(children)
    source_path, source_id = source.path, source.id
    db.session.expire_all()
    db.session.delete(db.session.get(Unit, source_id))
    db.session.flush()
    audit.record(
        actor,
        "unit.merge",
        unit_id=source_id,
        source=source_path,
        target=target.path,
        target_id=target.id,
        moved=moved,
        note="档案记录随单位一并转入（合并属于机构调整）",
    )
    return moved
