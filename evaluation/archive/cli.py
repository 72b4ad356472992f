"""``flask archive export [--unit U] [--person STAFF_NO] --out FILE.xlsx``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from evaluation import audit
from evaluation.accounts.units import get_unit
from evaluation.archive.export import archive_contents, scope_text, write_workbook
from evaluation.archive.queries import count_visible, find_person_by_staff_no
from evaluation.cli import ACTOR, Commands, one_line_errors
from evaluation.errors import InputError

archive_cli = Commands("archive", help="廉政档案")


@archive_cli.command("export", help="导出廉政档案工作簿（档案记录、预警、核验、审计日志）")
@click.option(
    "--unit", "unit_path", default=None, help="单位（含下级单位及现属干部），如 甘肃省局/兰州市局"
)
@click.option("--person", "staff_no", default=None, help="干部工号")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="输出文件 .xlsx")
def export_command(unit_path: str | None, staff_no: str | None, out: Path) -> None:
    """Export the archive (sheets 档案记录, 预警, 核验, 审计日志) to an .xlsx file."""

    @one_line_errors
    def _export() -> int:
        if out.suffix.lower() != ".xlsx":
            raise InputError(f"输出文件应以 .xlsx 结尾：{out}")
        tree = get_unit(unit_path) if unit_path else None
        person = find_person_by_staff_no(staff_no) if staff_no else None
        # Recorded and committed first (as a download from the pages is): the workbook carries
        # the audit log's head that includes this export, and the seconds a province's archive
        # takes to write hold no write lock (on SQLite that lock would stall every voter).
        head = audit.record_download(
            ACTOR,
            "archive.export",
            unit=tree.path if tree else None,
            staff_no=person.staff_no if person else None,
            entries=count_visible(None, person=person, tree=tree),
        )
        contents = archive_contents(None, tree=tree, person=person)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            # Written beside the target and renamed over it once complete: a failed or
            # interrupted export leaves no half-written workbook behind.
            with tempfile.NamedTemporaryFile(
                dir=out.parent, prefix=f".{out.name}.", suffix=".part", delete=False
            ) as part:
                try:
                    count = write_workbook(
                        part, contents, audit_head=head, scope=scope_text(None, tree, person)
                    )
                except BaseException:
                    Path(part.name).unlink(missing_ok=True)
                    raise
            os.replace(part.name, out)
        except OSError as exc:
            raise InputError(f"无法写入 {out}：{exc.strerror}") from None
        return count

    count = _export()
    click.echo(f"已导出 {count} 条档案记录")
    click.echo(str(out))
