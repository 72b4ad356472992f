"""``flask round import|open|close|archive|void|tick``: the lifecycle from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from evaluation.cli import ACTOR, Commands, one_line_errors
from evaluation.errors import InputError
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import check_round_data, import_round, read_round_file
from evaluation.rounds.state import get_round
from evaluation.transactions import write_transaction, writes
from evaluation.voting import box

round_cli = Commands("round", help="测评活动")


@round_cli.command("import", help="从测评文件（TOML）创建测评活动，最后一行单独打印新活动的编号")
@click.argument("path", type=click.Path(path_type=Path))
@one_line_errors
def round_import(path: Path) -> None:
    """Import a round file; prints the new round's id alone on the last line."""
    # Parsed and checked before the write lock is taken; the lock covers the writes.
    data = read_round_file(path)
    check_round_data(data, path.name)
    with write_transaction():
        rnd = import_round(data, actor=ACTOR, source=path.name)
    click.echo(
        f"已导入测评活动“{rnd.title}”：{len(rnd.strata)} 个类别，{len(rnd.subjects)} 个测评对象"
    )
    click.echo(str(rnd.id))


@round_cli.command("open", help="开始测评（监票人保管时私钥写到 --key-out）")
@click.argument("round_id", type=int)
@click.option(
    "--custody",
    default="服务器",
    help="投票箱私钥保管：服务器（默认）或 监票人（须同时给出 --key-out）",
)
@click.option(
    "--key-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="监票人保管时写出私钥文件的路径（结束测评时用 --key 提交）",
)
@one_line_errors
def round_open(round_id: int, custody: str, key_out: Path | None) -> None:
    """Open a draft round (with 监票人 custody, the box's private key goes to --key-out)."""
    chosen = box.CUSTODY_BY_LABEL.get(custody.strip())
    if chosen is None:
        raise InputError(f"--custody 只能是“服务器”或“监票人”，而不是“{custody}”")
    if chosen == box.CUSTODY_SCRUTINEER:
        if key_out is None:
            raise InputError("监票人保管私钥时必须用 --key-out 指定私钥文件的写出路径")
        if key_out.exists():
            raise InputError(f"{key_out} 已存在：请换一个路径，不要覆盖已有的私钥文件")
        if not key_out.parent.is_dir():
            raise InputError(f"目录 {key_out.parent} 不存在")
    partial = key_out.with_name(key_out.name + ".partial") if key_out else None
    try:
        with write_transaction():
            rnd = get_round(round_id)
            if chosen == box.CUSTODY_SCRUTINEER and partial is not None and key_out is not None:
                private_key = lifecycle.prepare_scrutineer_key(rnd, actor=ACTOR)
                lifecycle.open_round(rnd, actor=ACTOR, key=private_key)
                # Written before the open commits: a round never opens without its key in hand.
                partial.write_text(box.key_file_text(rnd, private_key), encoding="utf-8")
                partial.chmod(0o600)
                partial.replace(key_out)
            else:
                rnd.box_custody = box.CUSTODY_SERVER
                lifecycle.open_round(rnd, actor=ACTOR)
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    click.echo(f"测评活动 {round_id} 已开始")
    if key_out is not None and chosen == box.CUSTODY_SCRUTINEER:
        click.echo(f"投票箱私钥已写入 {key_out}：请交监票人保管，结束测评时用 --key 提交")


@round_cli.command("close", help="结束测评（不可撤销）：开箱、打乱写入、封存")
@click.argument("round_id", type=int)
@click.option(
    "--key",
    "key_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="监票人保管的投票箱私钥文件",
)
@one_line_errors
def round_close(round_id: int, key_file: Path | None) -> None:
    """Close an open round (final): the box is opened, ballots shuffled and sealed."""
    key = None
    if key_file is not None:
        try:
            key = box.parse_key(key_file.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            raise InputError(f"无法读取私钥文件 {key_file}") from None
    _close(round_id, key)
    click.echo(f"测评活动 {round_id} 已结束")


@writes
def _close(round_id: int, key: bytes | None) -> None:
    lifecycle.close_round(get_round(round_id), actor=ACTOR, key=key)


@round_cli.command("archive", help="把已结束的测评归入廉政档案")
@click.argument("round_id", type=int)
@one_line_errors
@writes
def round_archive(round_id: int) -> None:
    """Archive a closed round into the 廉政档案."""
    rnd = get_round(round_id)
    lifecycle.archive_round(rnd, actor=ACTOR)
    click.echo(f"测评活动 {rnd.id} 已归档")


@round_cli.command("void", help="作废测评活动（须写明原因）")
@click.argument("round_id", type=int)
@click.option("--reason", required=True, help="作废原因")
@one_line_errors
@writes
def round_void(round_id: int, reason: str) -> None:
    """Void a round with a reason."""
    rnd = get_round(round_id)
    lifecycle.void_round(rnd, actor=ACTOR, reason=reason)
    click.echo(f"测评活动 {rnd.id} 已作废")


@round_cli.command("tick", help="按计划开始/结束时间开始或结束到时的测评活动")
@one_line_errors
def round_tick() -> None:
    """Open and close rounds whose scheduled time has passed (run from cron).

    Each round on its own: one that cannot be closed is reported (exit status 1) and the
    others go on.
    """
    changed, failures = lifecycle.apply_due_schedules()
    click.echo(f"按计划变更了 {changed} 个测评活动")
    for line in failures:
        click.echo(f"未能完成：{line}", err=True)
    if failures:
        raise SystemExit(1)
