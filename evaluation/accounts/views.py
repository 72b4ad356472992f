"""Account pages: login and logout, and (for admins) the list of accounts."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from evaluation import audit
from evaluation.accounts import operations
from evaluation.accounts.access import roles_required
from evaluation.accounts.forms import UserForm
from evaluation.accounts.operations import authenticate
from evaluation.accounts.units import all_units
from evaluation.errors import InputError
from evaluation.extensions import db, limiter, login_manager
from evaluation.forms import ActionForm
from evaluation.models import Role, User
from evaluation.transactions import write_transaction, writes
from evaluation.web import done, refused

bp = Blueprint("accounts", __name__)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    # A deactivated account loses its open sessions at once, not when they expire.
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


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
        return redirect(url_for("rounds.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data or "", form.password.data or "")
        if user is None:
            with write_transaction():
                audit.record(form.username.data or "", "login.failed")
            flash("用户名或密码不正确。", "error")
            return render_template("accounts/login.html", form=form), 401
        login_user(user)
        session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
        with write_transaction():
            audit.record(user.username, "login")
        target = request.args.get("next", "")
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("rounds.index")
        return redirect(target)
    return render_template("accounts/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    """Log out."""
    with write_transaction():
        audit.record(current_user.username, "logout")
    logout_user()
    flash("您已退出登录。", "info")
    return redirect(url_for("accounts.login"))


# --- accounts (admins) -------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def users() -> Any:
    """账号: every account, a form to create one, and (de)activation buttons."""
    form = UserForm()
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            with write_transaction():
                user = operations.create_user(
                    actor=current_user.username,
                    username=form.username.data or "",
                    password=form.password.data or "",
                    role=form.role.data or "",
                    unit_path=(form.unit.data or "").strip() or None,
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            return done(f"已创建账号“{user.username}”。", url_for("accounts.users"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "accounts/users.html",
        form=form,
        problems=problems,
        users=operations.list_users(),
        units=all_units(),
        action_form=ActionForm(),
    ), status


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@roles_required(Role.ADMIN)
@writes
def deactivate_user(user_id: int) -> Any:
    """停用账号: it can no longer log in, and its open sessions end."""
    user = operations.get_user(user_id)
    try:
        operations.set_user_active(user, False, actor=current_user)
    except InputError as exc:
        return refused(exc, url_for("accounts.users"))
    return done(f"已停用账号“{user.username}”。", url_for("accounts.users"))


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@roles_required(Role.ADMIN)
@writes
def reactivate_user(user_id: int) -> Any:
    """恢复账号."""
    user = operations.get_user(user_id)
    operations.set_user_active(user, True, actor=current_user)
    return done(f"已恢复账号“{user.username}”。", url_for("accounts.users"))
