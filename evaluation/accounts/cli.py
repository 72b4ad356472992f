"""``flask user create NAME --role … [--unit …]`` and ``flask user passwd NAME``."""

from __future__ import annotations

import sys

import click

from evaluation.accounts.operations import create_user, set_password
from evaluation.cli import ACTOR, Commands, one_line_errors
from evaluation.transactions import writes

user_cli = Commands("user", help="账号管理")


@user_cli.command("create", help="创建账号（终端上输入两次密码，否则从标准输入读一行）")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["admin", "organiser", "viewer", "counter"]),
    required=True,
    help="角色：admin 管理员、organiser 组织者、viewer 查看者、counter 计票员",
)
@click.option("--unit", "unit_path", default=None, help="所属单位，如 甘肃省局/兰州市局")
@one_line_errors
@writes
def user_create(name: str, role: str, unit_path: str | None) -> None:
    """Create an account; the password is asked twice on a terminal, else read from stdin."""
    password = _read_password("密码")
    user = create_user(
        actor=ACTOR, username=name, password=password, role=role, unit_path=unit_path
    )
    click.echo(f"已创建用户 {user.username}（{role}）")


@user_cli.command("passwd", help="设置账号的新密码（同样输入两次或从标准输入读一行）")
@click.argument("name")
@one_line_errors
@writes
def user_passwd(name: str) -> None:
    """Set an account's password (asked twice on a terminal, else read from stdin).

    The account's open sessions end; a one-time password from an admin's reset is replaced.
    """
    user = set_password(name, _read_password("新密码"), actor=ACTOR)
    click.echo(f"已修改用户 {user.username} 的密码，该账号原有的登录已全部退出")


def _read_password(label: str) -> str:
    """Twice, hidden, on a terminal; otherwise one line from stdin (scripts, pipes)."""
    if sys.stdin.isatty():
        return str(click.prompt(label, hide_input=True, confirmation_prompt=f"再次输入{label}"))
    return sys.stdin.readline().rstrip("\r\n")
