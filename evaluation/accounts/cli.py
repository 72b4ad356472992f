"""``flask user create NAME --role … [--unit …]``."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from evaluation.accounts.operations import create_user
from evaluation.cli import ACTOR, one_line_errors
from evaluation.transactions import writes

user_cli = AppGroup("user", help="账号管理")


@user_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "organiser", "viewer"]), required=True)
@click.option("--unit", "unit_path", default=None, help="所属单位，如 甘肃省局/兰州市局")
@one_line_errors
@writes
def user_create(name: str, role: str, unit_path: str | None) -> None:
    """Create an account; the password is asked twice on a terminal, else read from stdin."""
    if sys.stdin.isatty():
        password = click.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    user = create_user(
        actor=ACTOR, username=name, password=password, role=role, unit_path=unit_path
    )
    click.echo(f"已创建用户 {user.username}（{role}）")
