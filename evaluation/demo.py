"""示例测评: a complete sample round for trying the product (``flask demo``, first ``make run``).

The round uses all five Gansu forms and three strata, has codes issued for every stratum and is
open, so a newcomer can vote from a phone or browser within a minute of cloning. Like any issue,
the plaintext codes exist only in what this command prints (and the CSV it may write).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from flask import Flask

from evaluation import codes, rounds
from evaluation.models import Round
from evaluation.round_file import import_round, parse_round_text

DEMO_ROUND = """
title = "示例：{year}年度党风廉政建设责任制民主测评"
unit = "甘肃省局/兰州市局"
year = {year}
mode = "集中"
kind = "本级自测"
min_turnout = "2/3"

[[strata]]
name = "班子成员"
codes = 7

[[strata]]
name = "中层干部"
codes = 20

[[strata]]
name = "一般干部"
codes = 40

[[subjects]]
name = "市局领导班子"
form = "gansu-team"

[[subjects]]
name = "市局纪检组"
form = "gansu-discipline"

[[subjects]]
name = "张明"
form = "gansu-principal"
post = "局长"
staff_no = "DEMO-001"

[[subjects]]
name = "李华"
form = "gansu-member"
post = "副局长"
staff_no = "DEMO-002"

[[subjects]]
name = "王强"
form = "gansu-member"
post = "纪检组长"
staff_no = "DEMO-003"

[[subjects]]
name = "张明（廉洁自律）"
form = "gansu-integrity"
staff_no = "DEMO-001"

[forms.gansu-integrity]
items = [
  "严格执行中央八项规定精神，反对“四风”",
  "管好配偶、子女和身边工作人员",
  "不利用职权为本人或他人谋取私利",
]
"""


def create_demo(*, actor: str) -> tuple[Round, dict[str, list[str]]]:
    """Create, issue codes for (the planned number per stratum) and open the sample round."""
    rnd = import_round(parse_round_text(DEMO_ROUND.format(year=date.today().year)), actor=actor)
    issued = {
        s.name: list(codes.issue_batch(rnd, s, s.planned, actor=actor).codes) for s in rnd.strata
    }
    rounds.open_round(rnd, actor=actor)
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
    from evaluation.issuing import entry_url

    click.echo(f"也可以打开 {entry_url()} 输入测评码。")


def load_demo_if_empty(*, actor: str) -> bool:
    """First run (``flask setup``): load the sample round when there is no round at all."""
    from evaluation.extensions import db

    if db.session.execute(db.select(Round.id).limit(1)).first() is not None:
        return False
    rnd, issued = create_demo(actor=actor)
    db.session.flush()
    print_demo(rnd, issued)
    return True


@click.command("demo")
@click.option("--csv", "csv_path", default=None, type=click.Path(path_type=Path))
def demo_command(csv_path: Path | None) -> None:
    """Create a complete, open sample round with codes and print a few voting links."""
    from evaluation.cli import ACTOR, transactional

    @transactional
    def _create() -> tuple[Round, dict[str, list[str]]]:
        return create_demo(actor=ACTOR)

    rnd, issued = _create()
    print_demo(rnd, issued)
    if csv_path is not None:
        lines = ["code,url"] + [f"{c},{codes.code_url(c)}" for b in issued.values() for c in b]
        csv_path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
        click.echo(f"全部 {sum(map(len, issued.values()))} 个测评码已写入 {csv_path}")


def init_app(app: Flask) -> None:
    """Register ``flask demo``."""
    app.cli.add_command(demo_command)
