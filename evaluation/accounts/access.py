"""Who may do what: every check of "may this account do this to that round, unit or account".

Views and commands never decide it themselves: they are decorated with ``roles_required`` or
``round_in_state``, load what they show through ``visible_round`` or ``managed_account``, and
ask the ``check_*`` functions before they create something in a unit; units picked from a list
come through ``chosen_unit``, units changed on the 单位 page through ``managed_unit``. A
unit-scoped account sees and acts in its unit and everything beneath it; an admin without a
unit, everywhere. A refusal names only what the account may see itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask_login import current_user, login_required

from evaluation.accounts.operations import list_users
from evaluation.accounts.units import (
    all_units,
    can_see,
    in_tree,
    path_in_tree,
    scope_root,
    subtree_clause,
)
from evaluation.errors import Forbidden, InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Role, Round, RoundState, Unit, User, is_row_id
from evaluation.rounds.state import require_state

P = ParamSpec("P")
T = TypeVar("T")


def roles_required(*roles: Role) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """View decorator: logged in, and with one of ``roles``."""

    def decorator(view: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(view)
        @login_required
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            if current_user.role not in roles:
                raise Forbidden("您的账号没有执行此操作的权限。")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


# What a 计票员 may open: the stacks of paper ballots, the round list, their own account.
COUNTER_ENDPOINTS = frozenset(
    {"rounds.index", "accounts.login", "accounts.logout", "accounts.password", "static"}
)


def counter_may_open(endpoint: str | None) -> bool:
    """True for the pages a 计票员 may open: paper entry and their account, nothing else —
    no results, no archive, no codes (``app.restrict_counters`` asks this per request)."""
    return endpoint is not None and (
        endpoint in COUNTER_ENDPOINTS
        or endpoint.startswith("paper.")
        or endpoint.startswith("voting.")
    )


def visible_round(round_id: int) -> Round:
    """The round, if the current user's units include it; NotFound otherwise."""
    rnd = db.session.get(Round, round_id) if is_row_id(round_id) else None
    if rnd is None or not can_see(current_user, rnd.unit):
        raise NotFound(f"测评活动 {round_id} 不存在或不在您的管辖范围内")
    return rnd


def round_in_state(*states: RoundState, action: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """View decorator: load ``round_id`` (scoped to the user) and check its state first.

    The view receives the round as ``rnd`` instead of ``round_id``.
    """

    def decorator(view: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            rnd = visible_round(int(kwargs.pop("round_id")))  # type: ignore[call-overload]
            require_state(rnd, *states, action=action)
            kwargs["rnd"] = rnd
            return view(*args, **kwargs)

        return wrapper

    return decorator


# --- units -------------------------------------------------------------------------------------


def acting_scope(user: User) -> Unit | None:
    """The root of the tree ``user`` acts in (None: the whole tree, an admin without a unit).

    Cadres are matched by 工号 only within it (``evaluation.rounds.operations.resolve_person``).
    """
    return scope_root(user)


def visible_units(user: User) -> list[Unit]:
    """The units ``user`` sees (to pick from), in path order."""
    return [u for u in all_units() if can_see(user, u)]


def visible_rounds(user: User) -> list[Round]:
    """The rounds of ``user``'s units, newest first."""
    query = db.select(Round).join(Unit, Round.unit_id == Unit.id)
    if user.unit is not None:
        query = query.where(subtree_clause(Unit.path, user.unit))
    elif user.role != Role.ADMIN:
        return []
    return list(db.session.execute(query.order_by(Round.year.desc(), Round.id.desc())).scalars())


def unit_allowed(user: User) -> Callable[[str], bool]:
    """A test for unit paths typed in a file: True for ``user``'s unit and beneath."""
    root = scope_root(user)
    return lambda path: path_in_tree(path, root)


def chosen_unit(user: User, unit_id: int | None) -> Unit:
    """A unit picked from a list: one ``user`` sees; NotFound otherwise."""
    unit = db.session.get(Unit, unit_id) if unit_id and is_row_id(unit_id) else None
    if unit is None or not can_see(user, unit):
        raise NotFound("所选单位不存在或不在您的管辖范围内")
    return unit


def check_person_change(user: User, person_unit: Unit, target: Unit) -> None:
    """A cadre's 职务 or unit is changed only by an organiser or admin who sees both the unit
    the cadre is in now and the one they move to (a superior of both, for a move between
    units); NotFound otherwise, naming nothing outside the actor's scope."""
    if user.role not in (Role.ORGANISER, Role.ADMIN):
        raise Forbidden("只有组织者和管理员可以修改干部的职务或单位")
    if not can_see(user, person_unit) or not can_see(user, target):
        raise NotFound("干部或所选单位不存在或不在您的管辖范围内")


def check_new_unit(user: User, path: str) -> None:
    """A round file may name a missing unit only for an admin, and only inside its own tree."""
    if user.role != Role.ADMIN:
        raise Forbidden(
            f"单位“{path.strip()}”不存在：只有管理员可以新建单位，请联系管理员在“单位”页面新建。"
        )
    root = scope_root(user)
    if not path_in_tree(path, root):
        assert root is not None
        raise InputError(
            f"单位“{path.strip()}”不在您的管辖范围内：只能在“{root.path}”及其下级单位中新建。"
        )


def managed_unit(admin: User, unit_id: int) -> Unit:
    """The unit with this id, if it lies in ``admin``'s tree; NotFound otherwise."""
    unit = db.session.get(Unit, unit_id) if is_row_id(unit_id) else None
    if unit is None or admin.role != Role.ADMIN or not in_tree(unit, scope_root(admin)):
        raise NotFound(f"单位 {unit_id} 不存在或不在您的管辖范围内")
    return unit


def check_unit_change(admin: User, unit: Unit) -> None:
    """Renaming or merging away a unit: only one strictly beneath the admin's own unit.

    An admin's own unit is its scope; only an admin above it may rename or merge it.
    """
    root = scope_root(admin)
    if root is not None and unit.id == root.id:
        raise Forbidden("不能改名或合并您自己所属的单位，请联系上级管理员。")


# --- accounts ----------------------------------------------------------------------------------


def may_manage_account(admin: User, account: User) -> bool:
    """True when ``admin`` may see and (de)activate ``account``: one in its own tree.

    An account without a unit (an admin of the whole tree) is managed only by such an admin,
    and another admin of the very same unit only by a superior: a peer could otherwise reset
    its password and act under its name.
    """
    if admin.role != Role.ADMIN:
        return False
    root = scope_root(admin)
    if root is None:
        return True
    if account.unit is None or not in_tree(account.unit, root):
        return False
    peer = account.role == Role.ADMIN and account.unit_id == root.id and account.id != admin.id
    return not peer


def managed_accounts(admin: User) -> list[User]:
    """The accounts ``admin`` manages, admins first, then by username."""
    return [u for u in list_users() if may_manage_account(admin, u)]


def managed_account(admin: User, user_id: int) -> User:
    """The account with this id, if ``admin`` manages it; NotFound otherwise."""
    account = db.session.get(User, user_id) if is_row_id(user_id) else None
    if account is None or not may_manage_account(admin, account):
        raise NotFound(f"账号 {user_id} 不存在或不在您的管辖范围内")
    return account


def check_new_account(admin: User, role: str, unit: Unit | None) -> None:
    """An admin creates accounts only inside its own tree, never one wider than itself."""
    root = scope_root(admin)
    if root is None:
        return
    if unit is None:
        what = "管理员" if role == Role.ADMIN.value else "账号"
        raise InputError(
            f"您只能在“{root.path}”及其下级单位中创建{what}，请选择所属单位"
            "（不能创建不属于任何单位的账号）。"
        )
    if not in_tree(unit, root):
        raise NotFound("所选单位不存在或不在您的管辖范围内")
