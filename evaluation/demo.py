"""示例测评: a complete sample round for trying the product (``flask demo``, first ``make run``).

The round is the shipped sample round file (``evaluation/rounds/sample-round.toml``, which the
tests and benchmarks use too) set in this year: all five Gansu forms and three strata. It has
codes issued for every stratum and is open, so a newcomer can vote from a phone or browser
within a minute of cloning. Like any issue, the plaintext codes exist only in what this command
prints (and the CSV it may write).
"""

from __future__ import annotations

from datetime import date

import click

from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import (
    SAMPLE_ROUND_FILE,
    import_round,
    parse_round_text,
    sample_round_text,
)


def create_demo(*, actor: str) -> tuple[Round, dict[str, list[str]]]:
    """Create, issue codes for (the planned number per stratum) and open the sample round."""
    data = parse_round_text(sample_round_text(), SAMPLE_ROUND_FILE.name)
    year = date.today().year
    data["year"] = year
    data["title"] = f"{year}年度党风廉政建设责任制示例民主测评"  # its printed titles read so
    rnd = import_round(data, actor=actor)
    issued = {
        s.name: list(codes.issue_batch(rnd, s, s.planned, actor=actor).codes) for s in rnd.strata
    }
    lifecycle.open_round(rnd, actor=actor)
    return rnd, issued


def print_demo(rnd: Round, issued: dict[str, list[str]], *, show: int = 3) -> None:
    """Print the round and a few voting links (one per stratum first)."""
    click.echo(f"已创建并开始示例测评“{rnd.title}”（编号 {rnd.id}）：")
    click.echo(f"  {len(rnd.subjects)} 个测评对象，{len(rnd.strata)} 个测评人员类别，已发放测评码")
    click.echo("用手机或浏览器打开下列任一链接即可投票（每个链接只能投一次）：")
    shown = 0
    for name, batch in issued.items():
        if shown < show and batch:
            click.echo(f"  [{name}] {codes.code_url(batch[0])}")
            shown += 1
    click.echo(f"也可以打开 {codes.entry_url()} 输入测评码。")


def load_demo_if_empty(*, actor: str) -> bool:
    """First run (``flask setup``): load the sample round when there is no round at all."""
    if db.session.execute(db.select(Round.id).limit(1)).first() is not None:
        return False
    rnd, issued = create_demo(actor=actor)
    db.session.flush()
    print_demo(rnd, issued)
    return True
