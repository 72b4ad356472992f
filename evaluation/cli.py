"""Command line (SPEC §11): ``flask user|round|codes|audit|demo|report|verify|archive …``.

Every command runs in one transaction, exits non-zero with a one-line Chinese reason on bad
input (never a traceback), and records what it changes in the audit log.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from flask import Flask
from flask.cli import AppGroup

from evaluation import audit, rounds
from evaluation.errors import DomainError, InputError
from evaluation.extensions import db

ACTOR = "命令行"

P = ParamSpec("P")
T = TypeVar("T")


def transactional(fn: Callable[P, T]) -> Callable[P, T]:
    """Run a command in one transaction; turn domain errors into a one-line exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = fn(*args, **kwargs)
            db.session.commit()
            return result
        except DomainError as exc:
            db.session.rollback()
            problems = getattr(exc, "problems", [])
            detail = ("：" + "；".join(problems)) if problems else ""
            raise click.ClickException(exc.message + detail) from None
        except Exception:
            db.session.rollback()
            raise

    return wrapper


def _round(round_id: int):  # type: ignore[no-untyped-def]
    return rounds.get_round(round_id)


user_cli = AppGroup("user", help="账号管理")
round_cli = AppGroup("round", help="测评活动")
audit_cli = AppGroup("audit", help="审计日志")


@user_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "organiser", "viewer"]), required=True)
@click.option("--unit", "unit_path", default=None, help="所属单位，如 甘肃省局/兰州市局")
@transactional
def user_create(name: str, role: str, unit_path: str | None) -> None:
    """Create an account; the password is asked twice on a terminal, else read from stdin."""
    from evaluation.accounts import create_user

    if sys.stdin.isatty():
        password = click.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    user = create_user(
        actor=ACTOR, username=name, password=password, role=role, unit_path=unit_path
    )
    click.echo(f"已创建用户 {user.username}（{role}）")


@round_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@transactional
def round_import(path: Path) -> None:
    """Import a round file; prints the new round's id alone on the last line."""
    from evaluation.round_file import import_round_file

    rnd = import_round_file(path, actor=ACTOR)
    click.echo(
        f"已导入测评活动“{rnd.title}”：{len(rnd.strata)} 个类别，{len(rnd.subjects)} 个测评对象"
    )
    click.echo(str(rnd.id))


@round_cli.command("open")
@click.argument("round_id", type=int)
@transactional
def round_open(round_id: int) -> None:
    """Open a draft round."""
    rnd = _round(round_id)
    rounds.open_round(rnd, actor=ACTOR)
    click.echo(f"测评活动 {rnd.id} 已开始")


@round_cli.command("close")
@click.argument("round_id", type=int)
def round_close(round_id: int) -> None:
    """Close an open round (final): ballots are shuffled and sealed."""
    from evaluation.anonymity import scrub_dead_rows

    @transactional
    def _close() -> Any:
        from evaluation.transactions import begin_write

        begin_write()  # voters may be writing: take the lock before reading the round
        rnd = _round(round_id)
        rounds.close_round(rnd, actor=ACTOR)
        return rnd

    rnd = _close()
    scrub_dead_rows()
    click.echo(f"测评活动 {rnd.id} 已结束")


@round_cli.command("archive")
@click.argument("round_id", type=int)
@transactional
def round_archive(round_id: int) -> None:
    """Archive a closed round into the 廉政档案."""
    rnd = _round(round_id)
    rounds.archive_round(rnd, actor=ACTOR)
    click.echo(f"测评活动 {rnd.id} 已归档")


@round_cli.command("void")
@click.argument("round_id", type=int)
@click.option("--reason", required=True, help="作废原因")
@transactional
def round_void(round_id: int, reason: str) -> None:
    """Void a round with a reason."""
    rnd = _round(round_id)
    rounds.void_round(rnd, actor=ACTOR, reason=reason)
    click.echo(f"测评活动 {rnd.id} 已作废")


@round_cli.command("tick")
@transactional
def round_tick() -> None:
    """Open and close rounds whose scheduled time has passed (run from cron)."""
    from evaluation.models import Round, RoundState

    changed = 0
    for rnd in db.session.execute(
        db.select(Round).where(Round.state.in_([RoundState.DRAFT, RoundState.OPEN]))
    ).scalars():
        changed += rounds.apply_schedule(rnd)
    click.echo(f"按计划变更了 {changed} 个测评活动")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 naming the first broken entry."""
    checked, problem = audit.verify_chain()
    if problem is not None:
        raise click.ClickException(f"{problem}（此前 {checked} 条完好）")
    click.echo(f"审计日志完好：共 {checked} 条记录，哈希链无断裂")


@click.command("setup")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@transactional
def setup_command(host: str, port: int) -> None:
    """First run: create an admin (password printed once) if there is no account."""
    import secrets

    from evaluation.accounts import create_user
    from evaluation.models import User

    if db.session.execute(db.select(User.id).limit(1)).first() is None:
        password = secrets.token_urlsafe(12)
        create_user(actor=ACTOR, username="admin", password=password, role="admin")
        click.echo("=" * 60)
        click.echo("已创建首个管理员账号（密码只显示这一次，请妥善保存）：")
        click.echo("  用户名：admin")
        click.echo(f"  密码：  {password}")
        click.echo("=" * 60)
    click.echo(f"登录：http://{host}:{port}/login")
    from evaluation.demo import load_demo_if_empty

    load_demo_if_empty(actor=ACTOR)


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(setup_command)
    app.cli.add_command(user_cli)
    app.cli.add_command(round_cli)
    app.cli.add_command(audit_cli)
    from evaluation.backup import init_app as init_backup

    init_backup(app)
    from evaluation.archive_export import init_app as init_archive

    init_archive(app)
    from evaluation.issuing import init_app as init_issuing

    init_issuing(app)
    from evaluation.demo import init_app as init_demo

    init_demo(app)
    from evaluation.report_cli import init_app as init_report

    init_report(app)


__all__ = ["init_app", "transactional", "InputError"]
