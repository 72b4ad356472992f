"""Command line (SPEC §11): what every ``flask …`` command shares, and ``flask setup``/``audit``.

Each package registers its own group (``evaluation.accounts.cli``, ``rounds.cli``, ``codes.cli``,
``reports.cli``, ``archive.cli``); the app factory adds them all. A command that changes
anything runs in the one commit point (``@writes``); every command exits non-zero with a
one-line Chinese reason on bad input (``@one_line_errors``, never a traceback), and records what
it changes in the audit log.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import AppGroup

from evaluation import audit
from evaluation.accounts.operations import create_user
from evaluation.codes import codes
from evaluation.demo import create_demo, load_demo_if_empty, print_demo
from evaluation.errors import DomainError
from evaluation.extensions import db
from evaluation.models import Round, User
from evaluation.transactions import writes

ACTOR = "命令行"

P = ParamSpec("P")
T = TypeVar("T")


class CommandError(click.ClickException):
    """A command's reason for refusing: one line, "错误：…", on standard error; exit status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"错误：{self.format_message()}", file=file, err=file is None)


# Click's own words for the usual mistakes on a command line, in Chinese.
_CLICK_WORDS = (
    (re.compile(r"^'(.*)' is not a valid integer( range)?\.$", re.S), "“{0}”不是整数"),
    (re.compile(r"^'(.*)' is not a valid float( range)?\.$", re.S), "“{0}”不是数字"),
    (re.compile(r"^'(.*)' is not one of (.*)\.$", re.S), "“{0}”不是可选的值（{1}）"),
    (re.compile(r"^(?:File|Path|Directory) '(.*)' does not exist\.$", re.S), "“{0}”不存在"),
    (re.compile(r"^(?:File|Path) '(.*)' is a directory\.$", re.S), "“{0}”是目录，不是文件"),
    (re.compile(r"^Directory '(.*)' is a file\.$", re.S), "“{0}”是文件，不是目录"),
    (re.compile(r"^Got unexpected extra arguments? \((.*)\)$", re.S), "多余的参数：{0}"),
    (re.compile(r"^Option '(.*)' requires an argument\.$", re.S), "选项 {0} 后面要给一个值"),
    (re.compile(r"^Option '(.*)' requires (\d+) arguments\.$", re.S), "选项 {0} 后面要给 {1} 个值"),
)


def usage_reason(exc: click.UsageError) -> str:
    """A usage error (a missing, unknown or malformed argument) as one line of Chinese."""
    where = f"（用法见 {exc.ctx.command_path} --help）" if exc.ctx is not None else ""
    if isinstance(exc, click.MissingParameter):
        hint = exc.param.get_error_hint(exc.ctx) if exc.param and exc.ctx else ""
        kind = exc.param.param_type_name if exc.param is not None else exc.param_type
        return f"缺少{'参数' if kind == 'argument' else '选项'} {hint}{where}"
    if isinstance(exc, click.NoSuchOption):
        return f"没有选项 {exc.option_name}{where}"
    message = exc.message
    for pattern, words in _CLICK_WORDS:
        if found := pattern.match(message):
            message = words.format(*found.groups())
            break
    if isinstance(exc, click.BadParameter) and exc.param is not None and exc.ctx is not None:
        return f"{exc.param.get_error_hint(exc.ctx)} 的值不对：{message}{where}"
    return f"{message}{where}"


class Command(click.Command):
    """A ``flask`` command whose usage errors are one Chinese line, like its other refusals."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # shows the help, as ``--help`` does
        except click.UsageError as exc:
            raise CommandError(usage_reason(exc)) from None


class Commands(Command, AppGroup):
    """A group of ``flask`` commands (``flask round …``): each a ``Command``, and the group's
    own usage errors (an unknown sub-command) one Chinese line too."""

    command_class = Command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            known = "、".join(sorted(self.list_commands(ctx)))
            raise CommandError(
                f"没有命令 {ctx.command_path} {args[0] if args else ''}（可用：{known}）"
            ) from None


def one_line_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn a domain error into a one-line Chinese reason and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            problems = getattr(exc, "problems", [])
            detail = ("：" + "；".join(problems)) if problems else ""
            raise CommandError(exc.message + detail) from None

    return wrapper


audit_cli = Commands("audit", help="审计日志")


@audit_cli.command(
    "verify",
    help=(
        "核对审计日志的哈希链，有断裂时指出第一条并以 1 退出；"
        "--against 核对备份、工作簿或档案导出里记录的链头"
    ),
)
@click.option(
    "--against",
    "against",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="备份文件（.jsonl/.jsonl.gz）、测评结果工作簿或档案导出（.xlsx）：核对其中记录的链头",
)
@one_line_errors
def audit_verify(against: Path | None) -> None:
    """Check the audit log's hash chain; exit 1 naming the first broken entry.

    With ``--against FILE``, also check that the chain's head recorded in FILE is still in the
    log with the same digest (a cut tail or a rebuilt chain is found).
    """
    if against is None:
        checked, problem = audit.verify_chain()
        if problem is not None:
            raise CommandError(f"{problem}（此前 {checked} 条完好）")
        click.echo(f"审计日志完好：共 {checked} 条记录，哈希链无断裂")
        return
    head = audit.recorded_head(against)
    checked, problem = audit.check_against(head)
    if problem is not None:
        raise CommandError(f"{problem}（核对 {against.name} 记录的链头：{head}）")
    click.echo(
        f"审计日志完好：共 {checked} 条记录，哈希链无断裂，包含 {against.name} 记录的链头（{head}）"
    )


@click.command(
    "setup",
    cls=Command,
    help="首次运行：没有账号时创建管理员（密码只显示一次），空数据库时载入示例测评",
)
@click.option(
    "--host", default="127.0.0.1", help="服务的地址（未设 PUBLIC_BASE_URL 时用于登录链接）"
)
@click.option("--port", default=5000, type=int, help="服务的端口")
@one_line_errors
@writes
def setup_command(host: str, port: int) -> None:
    """First run: create an admin (password printed once) if there is no account."""
    if db.session.execute(db.select(User.id).limit(1)).first() is None:
        password = secrets.token_urlsafe(12)
        create_user(actor=ACTOR, username="admin", password=password, role="admin")
        click.echo("=" * 60)
        click.echo("已创建首个管理员账号（密码只显示这一次，请妥善保存）：")
        click.echo("  用户名：admin")
        click.echo(f"  密码：  {password}")
        click.echo("=" * 60)
    # Links (login, voting, QR codes) are built on PUBLIC_BASE_URL, which `make run` sets to
    # the address served unless told otherwise.
    base = str(current_app.config.get("PUBLIC_BASE_URL") or f"http://{host}:{port}")
    click.echo(f"登录：{base}/login")
    if urlsplit(base).hostname in ("0.0.0.0", "::", "localhost", "127.0.0.1", "::1"):
        click.echo(
            "提示：测评码链接和二维码指向 "
            f"{base}，只有本机能打开；要用手机投票，请以 HOST=0.0.0.0 "
            "PUBLIC_BASE_URL=http://本机局域网地址:端口 运行（见 README“用手机试”）"
        )
    load_demo_if_empty(actor=ACTOR)


@click.command("demo", cls=Command, help="新建并开始一个示例测评（含测评码），打印几条投票链接")
@click.option(
    "--csv",
    "csv_path",
    default=None,
    type=click.Path(path_type=Path),
    help="另把全部测评码（code,url）写到这个 CSV 文件",
)
def demo_command(csv_path: Path | None) -> None:
    """Create a complete, open sample round with codes and print a few voting links."""

    @one_line_errors
    @writes
    def _create() -> tuple[Round, dict[str, list[str]]]:
        return create_demo(actor=ACTOR)

    rnd, issued = _create()
    print_demo(rnd, issued)
    if csv_path is not None:
        lines = ["code,url"] + [f"{c},{codes.code_url(c)}" for b in issued.values() for c in b]
        csv_path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        click.echo(f"全部 {sum(map(len, issued.values()))} 个测评码已写入 {csv_path}")
