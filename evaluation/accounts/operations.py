"""Accounts: creating, listing and (de)activating them, and checking a password.

Operations flush; the caller commits (``evaluation.transactions``).
"""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from evaluation import audit
from evaluation.accounts.units import ensure_unit
from evaluation.errors import InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Role, User

MIN_PASSWORD_LENGTH = 8
ROLE_LABELS = {Role.ADMIN: "管理员", Role.ORGANISER: "组织者", Role.VIEWER: "查看者"}


def create_user(
    *, actor: str, username: str, password: str, role: str, unit_path: str | None = None
) -> User:
    """Create an account; organisers and viewers must belong to a unit."""
    username = (username or "").strip()
    if not username:
        raise InputError("用户名不能为空")
    try:
        role_value = Role(role)
    except ValueError:
        raise InputError(f"角色应为 admin、organiser 或 viewer，而不是“{role}”") from None
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InputError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    if db.session.execute(db.select(User).where(User.username == username)).scalar():
        raise InputError(f"用户“{username}”已存在")
    unit = ensure_unit(unit_path) if unit_path else None
    if unit is None and role_value != Role.ADMIN:
        raise InputError("组织者和查看者必须指定所属单位（--unit）")
    user = User(
        username=username,
        password_hash=generate_password_hash(password),
        role=role_value,
        unit=unit,
        active=True,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        actor,
        "user.create",
        username=username,
        role=role_value.value,
        unit=unit.path if unit else None,
    )
    return user


def set_user_active(user: User, active: bool, *, actor: User) -> None:
    """Deactivate or reactivate an account (never one's own, never the last active admin)."""
    if user.active == active:
        return
    if not active:
        if user.id == actor.id:
            raise InputError("不能停用自己的账号。")
        if user.role == Role.ADMIN and _active_admins() <= 1:
            raise InputError("这是最后一个可用的管理员账号，不能停用。")
    user.active = active
    db.session.flush()
    audit.record(
        actor.username, "user.reactivate" if active else "user.deactivate", username=user.username
    )


def _active_admins() -> int:
    rows = db.session.execute(
        db.select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
    ).all()
    return len(rows)


def list_users() -> list[User]:
    """Every account, admins first, then by username."""
    users = db.session.execute(db.select(User).order_by(User.username)).scalars()
    order = {Role.ADMIN: 0, Role.ORGANISER: 1, Role.VIEWER: 2}
    return sorted(users, key=lambda u: (order[u.role], u.username))


def get_user(user_id: int) -> User:
    """The account with this id; NotFound otherwise."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"账号 {user_id} 不存在")
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = db.session.execute(
        db.select(User).where(User.username == (username or "").strip())
    ).scalar_one_or_none()
    if user is None or not user.active:
        # Spend the same time as a real check so timing does not reveal usernames.
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    return user


_DUMMY_HASH = generate_password_hash("not-a-real-password")
