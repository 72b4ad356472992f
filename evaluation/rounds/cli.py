"""``flask round import|open|close|archive|void|tick``: the lifecycle from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from evaluation.cli import ACTOR, one_line_errors
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import import_round_file
from evaluation.rounds.state import get_round
from evaluation.transactions import writes

round_cli = AppGroup("round", help="测评活动")


@round_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@one_line_errors
@writes
def round_import(path: Path) -> None:
    """Import a round file; prints the new round's id alone on the last line."""
    rnd = import_round_file(path, actor=ACTOR)
    click.echo(
        f"已导入测评活动“{rnd.title}”：{len(rnd.strata)} 个类别，{len(rnd.subjects)} 个测评对象"
    )
    click.echo(str(rnd.id))


@round_cli.command("open")
@click.argument("round_id", type=int)
@one_line_errors
@writes
def round_open(round_id: int) -> None:
    """Open a draft round."""
    rnd = get_round(round_id)
    lifecycle.open_round(rnd, actor=ACTOR)
    click.echo(f"测评活动 {rnd.id} 已开始")


@round_cli.command("close")
@click.argument("round_id", type=int)
@one_line_errors
def round_close(round_id: int) -> None:
    """Close an open round (final): ballots are shuffled, sealed, and old rows scrubbed."""
    _close(round_id)
    click.echo(f"测评活动 {round_id} 已结束")


@writes
def _close(round_id: int) -> None:
    lifecycle.close_round(get_round(round_id), actor=ACTOR)


@round_cli.command("archive")
@click.argument("round_id", type=int)
@one_line_errors
@writes
def round_archive(round_id: int) -> None:
    """Archive a closed round into the 廉政档案."""
    rnd = get_round(round_id)
    lifecycle.archive_round(rnd, actor=ACTOR)
    click.echo(f"测评活动 {rnd.id} 已归档")


@round_cli.command("void")
@click.argument("round_id", type=int)
@click.option("--reason", required=True, help="作废原因")
@one_line_errors
@writes
def round_void(round_id: int, reason: str) -> None:
    """Void a round with a reason."""
    rnd = get_round(round_id)
    lifecycle.void_round(rnd, actor=ACTOR, reason=reason)
    click.echo(f"测评活动 {rnd.id} 已作废")


@round_cli.command("tick")
@one_line_errors
def round_tick() -> None:
    """Open and close rounds whose scheduled time has passed (run from cron)."""
    changed = _tick()
    click.echo(f"按计划变更了 {changed} 个测评活动")


@writes
def _tick() -> int:
    return lifecycle.apply_due_schedules()
