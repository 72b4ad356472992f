"""Account pages: login and logout, one's own password, and (for admins) the accounts.

A session carries the account's ``session_version`` from its login; the user loader refuses a
session whose version is no longer the account's, so logout, a password change or reset and
deactivation end every session opened before them — a copy of an old cookie included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length

from evaluation import audit
from evaluation.accounts import operations, units
from evaluation.accounts.access import (
    check_new_account,
    check_unit_change,
    chosen_unit,
    managed_account,
    managed_accounts,
    managed_unit,
    roles_required,
    visible_units,
)
from evaluation.accounts.forms import (
    NO_UNIT,
    MergeUnitForm,
    NewUnitForm,
    PasswordChangeForm,
    RenameUnitForm,
    UserForm,
)
from evaluation.accounts.operations import authenticate
from evaluation.archive import accountability
from evaluation.errors import Forbidden, InputError, NotFound
from evaluation.extensions import db, limiter, login_manager
from evaluation.forms import ActionForm
from evaluation.models import Role, Unit, User
from evaluation.transactions import write_transaction, writes
from evaluation.web import done, refused

bp = Blueprint("accounts", __name__)


# The session key holding the account's session version from the moment of login.
SESSION_VERSION = "account_version"


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    # A deactivated account, or one whose sessions were revoked (logout, password change or
    # reset), loses its open sessions at once, not when they expire.
    user = db.session.get(User, int(user_id))
    if user is None or not user.active:
        return None
    if session.get(SESSION_VERSION) != user.session_version:
        return None
    return user


def _start_session(user: User) -> None:
    """Log ``user`` in on this session, bound to the account's current session version."""
    # A fresh CSRF token: a token seen before the login (on a shared machine, in a page
    # someone saved) is worth nothing after it.
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)
    login_user(user)
    session[SESSION_VERSION] = user.session_version
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME


# Endpoints an account with a one-time password may still reach.
_WHILE_PASSWORD_MUST_CHANGE = {"accounts.password", "accounts.logout", "static"}


@bp.before_app_request
def _send_to_password_change() -> Any:
    """An account reset by an admin goes to the change page until it sets its own password."""
    # Voting pages never touch accounts (and must not start a transaction here).
    if request.blueprint == "voting" or request.endpoint in _WHILE_PASSWORD_MUST_CHANGE:
        return None
    if "_user_id" not in session or not current_user.is_authenticated:
        return None
    if current_user.must_change_password:
        flash("您的密码是管理员重置的一次性密码，请先设置新密码。", "warning")
        return redirect(url_for("accounts.password"))
    return None


# --- pages -------------------------------------------------------------------------------------


class LoginForm(FlaskForm):
    """用户名 + 密码."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=80)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码")])


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _account_login_limit() -> str:
    return str(current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"])


def _login_account() -> str:
    # Prefixed so an account named like an address never shares the address's counter.
    return "account:" + (request.form.get("username") or "").strip()


def _failed(response: Any) -> bool:
    return bool(response.status_code == 401)


# Both limits count failed logins only (a shared office address is not refused for its
# colleagues' successful logins), and both are checked before the password: once a limit is
# reached every attempt is refused, the right password too — otherwise the refusal itself
# would tell a guesser which password is right. See README (账号管理).
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    _login_limit,
    methods=["POST"],
    deduct_when=_failed,
    error_message="此地址登录失败次数过多，请稍后再试。",
)
@limiter.limit(
    _account_login_limit,
    key_func=_login_account,
    methods=["POST"],
    deduct_when=_failed,
    error_message="该账号登录失败次数过多，已暂停登录，请稍后再试；如非本人所为，请联系管理员。",
)
def login() -> Any:
    """Log in; failures are limited per client address and per account."""
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
        with write_transaction():
            operations.record_login(user, form.password.data or "")
        _start_session(user)
        if user.must_change_password:
            return redirect(url_for("accounts.password"))
        target = _local_target(request.args.get("next", ""))
        return redirect(target or url_for("rounds.index"))
    return render_template("accounts/login.html", form=form)


def _local_target(target: str) -> str | None:
    """``target`` if it is a path on this site; None for anything a browser may read as a host.

    Browsers drop tabs and newlines inside a URL and read a backslash as "/", so "/<tab>/evil/"
    leads away like "//evil/": any control character, space or backslash refuses the target.
    """
    if not target.startswith("/") or target.startswith("//"):
        return None
    if any(ch <= " " or ch in "\\\x7f" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Any:
    """Log out: every session of this account ends, copies of this one's cookie included."""
    with write_transaction():
        operations.end_sessions(current_user)
    logout_user()
    session.pop(SESSION_VERSION, None)
    flash("您已退出登录。", "info")
    return redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    """修改密码: any account changes its own; its other sessions end, this one goes on."""
    form = PasswordChangeForm()
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            with write_transaction():
                operations.change_password(
                    current_user, form.current.data or "", form.password.data or ""
                )
        except InputError as exc:
            problems = [exc.message, *exc.problems]
        else:
            session[SESSION_VERSION] = current_user.session_version
            return done("密码已修改。其他设备上的登录已全部退出。", url_for("rounds.index"))
    status = 400 if form.is_submitted() else 200
    page = render_template(
        "accounts/password.html",
        form=form,
        problems=problems,
        min_length=operations.MIN_PASSWORD_LENGTH,
    )
    return page, status


# --- accounts (admins) -------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def users() -> Any:
    """账号: the accounts of the admin's tree, a form to create one, (de)activation buttons."""
    form = UserForm()
    choices = [SelectChoice(u.id, u.path) for u in visible_units(current_user)]
    if current_user.unit is None:
        choices.insert(0, SelectChoice(NO_UNIT, "（不属于任何单位：管理全部单位的管理员）"))
    form.unit_id.choices = choices  # type: ignore[assignment]
    if not form.is_submitted() and current_user.unit is not None:
        form.unit_id.data = current_user.unit.id
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            unit = (
                chosen_unit(current_user, form.unit_id.data)
                if form.unit_id.data != NO_UNIT
                else None
            )
            check_new_account(current_user, form.role.data or "", unit)
            with write_transaction():
                user = operations.create_user(
                    actor=current_user.username,
                    username=form.username.data or "",
                    password=form.password.data or "",
                    role=form.role.data or "",
                    unit=unit,
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
        users=managed_accounts(current_user),
        action_form=ActionForm(),
    ), status


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
@roles_required(Role.ADMIN)
@writes
def deactivate_user(user_id: int) -> Any:
    """停用账号: it can no longer log in, and its open sessions end."""
    user = managed_account(current_user, user_id)
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
    user = managed_account(current_user, user_id)
    operations.set_user_active(user, True, actor=current_user)
    return done(f"已恢复账号“{user.username}”。", url_for("accounts.users"))


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@roles_required(Role.ADMIN)
def reset_password(user_id: int) -> Any:
    """重置密码: a one-time password, shown once on this page and never stored in clear."""
    user = managed_account(current_user, user_id)
    try:
        with write_transaction():
            one_time = operations.reset_password(user, actor=current_user)
    except InputError as exc:
        return refused(exc, url_for("accounts.users"))
    page = render_template("accounts/password_reset.html", account=user, one_time=one_time)
    # Rendered here, not flashed: a flashed message would travel in the session cookie.
    return page, 200, {"Cache-Control": "no-store"}


# --- the unit tree (admins) --------------------------------------------------------------------


def _unit_choices(scope: list[Unit]) -> list[SelectChoice]:
    return [SelectChoice(u.id, u.path) for u in scope]


def _render_units(
    new_form: NewUnitForm | None = None, problems: list[str] | None = None, status: int = 200
) -> Any:
    scope = visible_units(current_user)
    new_form = new_form or NewUnitForm()
    new_form.parent_id.choices = _unit_choices(scope)  # type: ignore[assignment]
    root = current_user.unit
    sets = accountability.available_sets()
    # 查找: a province's two hundred units, narrowed to those whose path holds the words.
    query = request.args.get("q", "").strip()[:100]
    shown = [u for u in scope if query in u.path] if query else scope
    return render_template(
        "accounts/units.html",
        units=scope,
        shown=shown,
        query=query,
        root=root,
        depth={u.id: u.path.count(units.SEPARATOR) for u in scope},
        new_form=new_form,
        problems=problems or [],
        rule_sets=sets,
        choices=accountability.unit_choices(scope, sets),
    ), status


@bp.route("/units", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def unit_tree() -> Any:
    """单位: the admin's tree, and 新建下级单位 (the one way a page creates a unit)."""
    scope = visible_units(current_user)
    form = NewUnitForm()
    form.parent_id.choices = _unit_choices(scope)  # type: ignore[assignment]
    if not form.validate_on_submit():
        return _render_units(form, status=400 if form.is_submitted() else 200)
    parent = managed_unit(current_user, form.parent_id.data or 0)
    try:
        with write_transaction():
            unit = units.create_child_unit(
                parent, form.name.data or "", actor=current_user.username
            )
    except InputError as exc:
        return _render_units(form, [exc.message, *exc.problems], 400)
    return done(f"已新建单位“{unit.path}”。", url_for("accounts.unit_tree"))


@bp.route("/units/top", methods=["POST"])
@roles_required(Role.ADMIN)
def new_top_unit() -> Any:
    """新建顶级单位: only an admin of the whole tree (a fresh installation starts here)."""
    form = RenameUnitForm()
    if current_user.unit is not None:
        raise Forbidden("只有管理全部单位的管理员可以新建顶级单位。")
    if not form.validate_on_submit():
        return refused(InputError("请填写单位名称"), url_for("accounts.unit_tree"))
    try:
        with write_transaction():
            unit = units.create_top_unit(form.name.data or "", actor=current_user.username)
    except InputError as exc:
        return refused(exc, url_for("accounts.unit_tree"))
    return done(f"已新建单位“{unit.path}”。", url_for("accounts.unit_tree"))


@bp.route("/units/<int:unit_id>/rename", methods=["POST"])
@roles_required(Role.ADMIN)
def rename_unit(unit_id: int) -> Any:
    """改名: the unit and the paths of its whole subtree."""
    unit = managed_unit(current_user, unit_id)
    check_unit_change(current_user, unit)
    form = RenameUnitForm()
    if not form.validate_on_submit():
        return refused(
            InputError("请填写新名称", [e for es in form.errors.values() for e in es]),
            url_for("accounts.unit_tree"),
        )
    old = unit.path
    try:
        with write_transaction():
            units.rename_unit(unit, form.name.data or "", actor=current_user.username)
    except InputError as exc:
        return refused(exc, url_for("accounts.unit_tree"))
    return done(f"已把单位“{old}”改名为“{unit.path}”。", url_for("accounts.unit_tree"))


@bp.route("/units/<int:unit_id>/merge", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def merge_unit(unit_id: int) -> Any:
    """合并: everything of the unit moves to another unit of the tree; the unit is removed.

    The target is chosen on a page of its own (the 单位 page links to it): a list of every
    unit on each of a province's hundreds of rows would make that page megabytes long.
    """
    source = managed_unit(current_user, unit_id)
    check_unit_change(current_user, source)
    scope = visible_units(current_user)
    form = MergeUnitForm()
    form.target_id.choices = _unit_choices(scope)  # type: ignore[assignment]
    if request.method == "GET":
        targets = [u for u in scope if u.path != source.path and not units.in_tree(u, source)]
        return render_template("accounts/unit_merge.html", source=source, targets=targets)
    if not form.validate_on_submit():
        raise NotFound("所选单位不存在或不在您的管辖范围内")
    target = managed_unit(current_user, form.target_id.data or 0)
    source_path, target_path = source.path, target.path
    try:
        with write_transaction():
            units.merge_units(source, target, actor=current_user.username)
    except InputError as exc:
        return refused(exc, url_for("accounts.unit_tree"))
    return done(
        f"已把单位“{source_path}”合并到“{target_path}”：其人员、测评对象、测评活动、账号、"
        "下级单位和档案记录均已转入。",
        url_for("accounts.unit_tree"),
    )


@bp.route("/units/<int:unit_id>/accountability", methods=["POST"])
@roles_required(Role.ADMIN)
def choose_accountability_rules(unit_id: int) -> Any:
    """选用责任追究规则集 for a unit in the admin's tree ("" = 沿用上级单位), audited."""
    unit = managed_unit(current_user, unit_id)
    form = ActionForm()
    if not form.validate_on_submit():
        return refused(InputError("页面已过期，请刷新后重试"), url_for("accounts.unit_tree"))
    set_id = request.form.get("rules", "")
    try:
        with write_transaction():
            changed = accountability.choose_set(unit, set_id, actor=current_user.username)
            choice = accountability.unit_choice(unit)
    except InputError as exc:
        return refused(exc, url_for("accounts.unit_tree"))
    if not changed:
        return done("没有改动。", url_for("accounts.unit_tree"))
    how = "选用" if unit.accountability_rules else "沿用上级单位的"
    return done(
        f"单位“{unit.path}”{how}责任追究规则集“{choice.rules.name}”，已记入审计日志；"
        "该单位及沿用其选择的下级单位的预警随之按此规则集判断。",
        url_for("accounts.unit_tree"),
    )
