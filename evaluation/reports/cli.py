"""``flask report ID [--out DIR]`` and ``flask verify ID`` (SPEC §10, §11)."""

from __future__ import annotations

from pathlib import Path

import click

from evaluation import audit
from evaluation.cli import ACTOR, Command, CommandError, one_line_errors
from evaluation.fonts import FontMissing
from evaluation.reports.outputs import write_report
from evaluation.rounds.state import get_round
from evaluation.tally.aggregate import require_results
from evaluation.tally.verify import verify_round
from evaluation.transactions import writes


@click.command(
    "report", cls=Command, help="为已结束的测评生成工作簿、图表和反馈单，每行打印一个文件路径"
)
@click.argument("round_id", type=int)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="输出目录（默认 REPORTS_DIR/<活动编号>/）",
)
@one_line_errors
@writes
def report_command(round_id: int, out: Path | None) -> None:
    """Write the workbook, charts and feedback sheets of a closed round; print each path."""
    rnd = get_round(round_id)
    require_results(rnd)
    # Recorded first: the files carry the head that includes their own entry.
    entry = audit.record(ACTOR, "report.write", round_id=rnd.id)
    try:
        paths = write_report(rnd, out, audit_head=audit.head_of(entry))
    except FontMissing as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"无法写入输出目录：{exc.strerror or exc}") from None
    for path in paths:
        click.echo(str(path))


@click.command(
    "verify", cls=Command, help="按原始选票重新计票并重算封存码，有差异时列出并以 1 退出"
)
@click.argument("round_id", type=int)
@one_line_errors
def verify_command(round_id: int) -> None:
    """Recompute the seal and the tally from the raw ballots; exit 1 naming each difference."""

    @writes
    def _verify():  # type: ignore[no-untyped-def]
        rnd = get_round(round_id)
        report = verify_round(rnd)
        audit.record(
            ACTOR,
            "round.verify",
            round_id=rnd.id,
            ok=report.ok,
            differences=len(report.differences),
        )
        return rnd, report

    rnd, report = _verify()
    if not report.ok:
        click.echo(
            f"测评活动 {rnd.id}“{rnd.title}”核验未通过，发现 {len(report.differences)} 处差异：",
            err=True,
        )
        for difference in report.differences:
            click.echo(f"  - {difference}", err=True)
        for note in report.notes:
            click.echo(f"  说明：{note}", err=True)
        raise CommandError(f"核验失败：{len(report.differences)} 处差异（见上）")
    click.echo(f"测评活动 {rnd.id}“{rnd.title}”核验通过。")
    click.echo(f"  选票 {report.ballots} 张，已使用测评码 {report.used_codes} 个")
    click.echo(
        f"  封存码 {report.computed_seal}（格式 {report.seal_version}，按现有选票重算，与封存一致）"
    )
    for note in report.notes:
        click.echo(f"  说明：{note}")
    click.echo("  按原始选票重新计票，全部结果与封存时一致")
