"""Who may do what: every check of "may this account do this to that round or unit".

Views never decide it themselves: they are decorated with ``roles_required`` or
``round_in_state``, or load what they show through ``visible_round``. A unit-scoped account
sees its unit and everything beneath it; an admin without a unit sees everything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask_login import current_user, login_required

from evaluation.accounts.units import can_see
from evaluation.errors import Forbidden, NotFound
from evaluation.extensions import db
from evaluation.models import Role, Round, RoundState
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


def visible_round(round_id: int) -> Round:
    """The round, if the current user's units include it; NotFound otherwise."""
    rnd = db.session.get(Round, round_id)
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
