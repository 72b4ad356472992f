"""``flask codes issue ID --stratum … --count N --csv OUT.csv [--pdf OUT.pdf]``."""

from __future__ import annotations

from pathlib import Path

import click

from evaluation.cli import ACTOR, CommandError, Commands, one_line_errors
from evaluation.codes import codes
from evaluation.codes.slips import slips_pdf
from evaluation.rounds.state import get_round
from evaluation.transactions import write_transaction

codes_cli = Commands("codes", help="测评码")


@codes_cli.command(
    "issue", help="为一个测评人员类别发放测评码，写出 CSV（code,url），可另写 A4 测评码条 PDF"
)
@click.argument("round_id", type=int)
@click.option("--stratum", required=True, help="测评人员类别名称")
@click.option("--count", required=True, help="数量")
@click.option(
    "--csv", "csv_path", required=True, type=click.Path(path_type=Path), help="测评码 CSV 写到这里"
)
@click.option(
    "--pdf",
    "pdf_path",
    default=None,
    type=click.Path(path_type=Path),
    help="A4 测评码条 PDF 写到这里",
)
def codes_issue(
    round_id: int, stratum: str, count: str, csv_path: Path, pdf_path: Path | None
) -> None:
    """Issue codes for a stratum; write the CSV (code,url) and optionally the A4 slips."""
    written: list[Path] = []
    batch_number = 0

    @one_line_errors
    def _issue() -> codes.IssuedBatch:
        # Slips are rendered before the write lock is taken; the lock covers the hashes and
        # the file writes (a failed write rolls the batch back).
        rnd = get_round(round_id)
        found = codes.stratum_named(rnd, stratum)
        number = codes.parse_count(count)
        codes.check_can_issue(rnd, found)
        plain = codes.new_codes(number)
        # The serials the slips will carry; drawn again if another issue took them meanwhile.
        letter = codes.stratum_letter(rnd, found)
        draft = codes.IssuedBatch(0, rnd.title, found.name, plain, letter, codes.next_serial(found))
        pdf = slips_pdf(draft) if pdf_path is not None else b""
        with write_transaction():
            rnd = get_round(round_id)
            issued = codes.issue_batch(
                rnd, codes.stratum_named(rnd, found.name), number, actor=ACTOR, plain=plain
            )
            if pdf_path is not None and issued.first_serial != draft.first_serial:
                pdf = slips_pdf(issued)
            nonlocal batch_number
            batch_number = codes.batch_number(rnd, issued.batch_id)
            try:
                _write(csv_path, codes.csv_text(issued).encode("utf-8"), written)
                if pdf_path is not None:
                    _write(pdf_path, pdf, written)
            except OSError as exc:
                for path in written:
                    path.unlink(missing_ok=True)
                raise CommandError(f"无法写入文件：{exc.strerror}（{exc.filename}）") from None
        return issued

    issued = _issue()
    click.echo(
        f"已发放 {len(issued.codes)} 个测评码（{issued.round_title} · {issued.stratum_name}，"
        f"第 {batch_number} 批，编号 "
        f"{codes.serial_range(issued.letter, issued.first_serial, len(issued.codes))}）"
    )
    for path in written:
        click.echo(str(path))
    click.echo("测评码只保存在上述文件中，系统内只存哈希：请妥善保管，遗失请作废该批并重新发放。")


def _write(path: Path, data: bytes, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)
