"""Accounts: login, roles (admin / organiser / viewer) scoped by unit, and user management."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from evaluation import audit
from evaluation.errors import Forbidden, InputError, NotFound
from evaluation.extensions import db, limiter, login_manager
from evaluation.models import Role, Round, User
from evaluation.units import can_see, ensure_unit

bp = Blueprint("accounts", __name__)

MIN_PASSWORD_LENGTH = 8
ROLE_LABELS = {Role.ADMIN: "管理员", Role.ORGANISER: "组织者", Role.VIEWER: "查看者"}


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    # A deactivated account loses its open sessions at once, not when they expire.
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


# --- operations --------------------------------------------------------------------------------


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


# --- access control ----------------------------------------------------------------------------

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


# --- pages -------------------------------------------------------------------------------------


class LoginForm(FlaskForm):
    """用户名 + 密码."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=80)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码")])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Any:
    """Log in; rate limited per client address."""
    if current_user.is_authenticated:
        return redirect(url_for("organiser.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data or "", form.password.data or "")
        if user is None:
            audit.record(form.username.data or "", "login.failed")
            db.session.commit()
            flash("用户名或密码不正确。", "error")
            return render_template("accounts/login.html", form=form), 401
        login_user(user)
        from flask import session

        session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
        audit.record(user.username, "login")
        db.session.commit()
        target = request.args.get("next", "")
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("organiser.index")
        return redirect(target)
    return render_template("accounts/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    """Log out."""
    audit.record(current_user.username, "logout")
    db.session.commit()
    logout_user()
    flash("您已退出登录。", "info")
    return redirect(url_for("accounts.login"))
