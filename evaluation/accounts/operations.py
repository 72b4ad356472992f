"""Accounts: creating, listing and (de)activating them, checking and changing passwords.

Operations flush; the caller commits (``evaluation.transactions``). Passwords are hashed with
Werkzeug's default method (scrypt); a hash made with another method or older parameters is
replaced at the next successful login. No password ever reaches the audit log.
"""

from __future__ import annotations

import secrets
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from evaluation import audit
from evaluation.accounts.units import ensure_unit
from evaluation.errors import InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Role, Unit, User

MIN_PASSWORD_LENGTH = 8
ROLE_LABELS = {
    Role.ADMIN: "管理员",
    Role.ORGANISER: "组织者",
    Role.VIEWER: "查看者",
    Role.COUNTER: "计票员",
}


def create_user(
    *,
    actor: str,
    username: str,
    password: str,
    role: str,
    unit_path: str | None = None,
    unit: Unit | None = None,
) -> User:
    """Create an account; organisers and viewers must belong to a unit.

    Pages pass a ``unit`` picked from the tree; ``unit_path`` (created if missing) is for the
    operator's ``flask user create --unit``.
    """
    username = (username or "").strip()
    if not username:
        raise InputError("用户名不能为空")
    try:
        role_value = Role(role)
    except ValueError:
        raise InputError(
            f"角色应为 admin、organiser、viewer 或 counter（计票员），而不是“{role}”"
        ) from None
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InputError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")
    # One account per name whatever its letters' case: "ZUZHI" beside "zuzhi" is a slip.
    same = db.session.execute(
        db.select(User.username).where(db.func.lower(User.username) == username.lower())
    ).scalar()
    if same is not None:
        taken = "" if same == username else f"（用户名不区分大小写：已有“{same}”）"
        raise InputError(f"用户“{username}”已存在{taken}")
    if unit is None and unit_path:
        unit = ensure_unit(unit_path)
    if unit is None and role_value != Role.ADMIN:
        raise InputError("组织者、查看者和计票员必须指定所属单位（只有管理员可以不属于任何单位）")
    user = User(
        username=username,
        password_hash=hash_password(password),
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
    if not active:
        user.session_version += 1  # its open sessions end at once
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
    order = {Role.ADMIN: 0, Role.ORGANISER: 1, Role.VIEWER: 2, Role.COUNTER: 3}
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
        check_password_hash(dummy_hash(), password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    return user


@cache
def dummy_hash() -> str:
    """A hash of no one's password, checked when the username is unknown. Made on first use
    (90 ms of scrypt): a command that never logs anyone in does not pay for it; gunicorn
    workers make it as they start (gunicorn.conf.py), so no login waits for it."""
    return generate_password_hash("not-a-real-password")


# --- passwords -----------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """The password hashed with Werkzeug's current default method (scrypt)."""
    return generate_password_hash(password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with another method or older parameters than today's
    (the method and its parameters are everything before the salt: "scrypt:32768:8:1")."""
    return password_hash.split("$", 1)[0] != dummy_hash().split("$", 1)[0]


def record_login(user: User, password: str) -> None:
    """After a successful login: rehash an outdated hash, and note the login in the audit log."""
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.flush()
    audit.record(user.username, "login")


def _check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InputError(f"密码至少 {MIN_PASSWORD_LENGTH} 位")


def _replace_password(user: User, password: str, *, one_time: bool) -> None:
    user.password_hash = hash_password(password)
    user.must_change_password = one_time
    user.session_version += 1  # every session opened with the old password ends
    db.session.flush()


def end_sessions(user: User) -> None:
    """Log out: every session of the account ends (``session_version`` moves on)."""
    user.session_version += 1
    db.session.flush()
    audit.record(user.username, "logout")


def change_password(user: User, current: str, new: str) -> None:
    """The account's own change: the current password is required, the new one must differ."""
    if not check_password_hash(user.password_hash, current or ""):
        raise InputError("当前密码不正确。")
    _check_new_password(new)
    if check_password_hash(user.password_hash, new):
        raise InputError("新密码不能与当前密码相同。")
    _replace_password(user, new, one_time=False)
    audit.record(user.username, "password.change", username=user.username)


def reset_password(user: User, *, actor: User) -> str:
    """An admin's reset: a one-time password, returned once, to be changed at the next login.

    The caller loads ``user`` through ``access.managed_account`` (the admin's scope).
    """
    if user.id == actor.id:
        raise InputError("不能重置自己的密码，请在“修改密码”页面修改。")
    one_time = secrets.token_urlsafe(12)
    _replace_password(user, one_time, one_time=True)
    audit.record(actor.username, "password.reset", username=user.username)
    return one_time


def set_password(username: str, password: str, *, actor: str) -> User:
    """Set an account's password from the command line (``flask user passwd``)."""
    user = db.session.execute(
        db.select(User).where(User.username == (username or "").strip())
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"用户“{username}”不存在")
    _check_new_password(password)
    _replace_password(user, password, one_time=False)
    audit.record(actor, "password.set", username=user.username)
    return user
