"""Results pages an official can sign (issue 15): the rule set printed, raw counts and shares
beside weighted rates, no rank for a form of one, and readable download names."""

from __future__ import annotations

from urllib.parse import quote

from flask.testing import FlaskClient
from markupsafe import escape

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.reports.wording import rule_set_lines
from evaluation.rounds.operations import choose_rule_set
from evaluation.rounds.state import round_rule_set
from evaluation.tally.aggregate import sealed_result
from tests.helpers import tally as th
from tests.helpers.tally import INTEGRITY, PRINCIPAL, TEAM, vote, vote_with_small_stratum
from tests.helpers.web import AuthActions


def _page(client: FlaskClient, url: str) -> str:
    res = client.get(url)
    assert res.status_code == 200, url
    return res.get_data(as_text=True)


def test_pages_print_the_rule_set_and_no_rank_for_a_form_of_one(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    auth.login("viewer")
    rule_set = round_rule_set(sample_round)
    page = _page(client, f"/rounds/{sample_round.id}/results")
    assert f"等次规则：{rule_set.title}（来源：{rule_set.source}）" in page
    assert "本系统默认规则" in page and "非004原文" in page
    forms = [
        sealed_result(sample_round).subject(th.subject(sample_round, n).id).form
        for n in (TEAM, PRINCIPAL)
    ]
    lines = rule_set_lines(rule_set, forms)
    assert len(lines) == 3 and "基本称职" in lines[2]
    for line in lines:
        assert str(escape(line)) in page
    # every form has one subject here: nobody is ranked, and "第1名（共1）" never appears
    assert "（共1）" not in page and "第1名" not in page
    assert "排名在同一测评表内先按测评等次" in page  # 排名 explained (rules_text(result))
    # raw counts with their share of valid votes: 市局领导班子 9 优秀 of 33
    row = page.split(f">{TEAM}</a>", 1)[1].split("</tr>", 1)[0]
    assert "优秀 9（" in row and 'title="3/11"' in row  # 9/33
    team = th.subject(sample_round, TEAM)
    page = _page(client, f"/rounds/{sample_round.id}/results/{team.id}")
    assert f"等次规则：{rule_set.title}（来源：{rule_set.source}）" in page
    assert "领导班子：" in page and "班子正职：" not in page  # only this subject's form
    assert "不排名" in page and "本测评表只有一个测评对象" in page
    assert "（共1）" not in page and "第 1 名" not in page


def test_weighted_round_shows_raw_counts_and_shares_beside_weighted_rates(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote_with_small_stratum(sample_round, weights=("1/5", "2/5", "2/5"))
    auth.login("viewer")
    page = _page(client, f"/rounds/{sample_round.id}/results")
    assert "加权说明：各类别权重为" in page  # 加权说明
    assert "提示：" in page  # the pooled/heavy-ballot warnings (weight_warnings)
    assert "加权优秀率" in page and "加权满意率" in page
    assert "各等次票数（占有效票，未加权）" in page
    # 张三: the raw share printed beside each count, the unweighted rate under the weighted one
    row = page.split(f">{PRINCIPAL}</a>", 1)[1].split("</tr>", 1)[0]
    principal = next(s for s in sealed_result(sample_round).subjects if s.name == PRINCIPAL)
    raw = principal.raw_figures
    assert f"优秀 {raw.counts['excellent']}（" in row
    assert (
        f'title="{raw.shares["excellent"].numerator}/{raw.shares["excellent"].denominator}"' in row
    )
    assert "未加权" in row
    s = th.subject(sample_round, PRINCIPAL)
    page = _page(client, f"/rounds/{sample_round.id}/results/{s.id}")
    assert "加权比例" in page and "占有效票（未加权）" in page
    assert "加权优秀率" in page and "未加权" in page and "加权说明" in page
    assert "等次规则：" in page and "来源：" in page


def test_pages_follow_the_satisfaction_rule_set(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    choose_rule_set(sample_round, "satisfaction", actor="test")
    db.session.commit()
    vote(sample_round)
    auth.login("viewer")
    page = _page(client, f"/rounds/{sample_round.id}/results")
    assert "等次规则：按测评满意率确定等次（来源：000 四" in page
    assert "90%" in page and "60%" in page


def test_download_names(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    auth.login("organiser")
    rid = sample_round.id
    # the title "2026年度党风廉政建设责任制民主测评" starts with the year: not repeated
    stem = "兰州市局-2026年度党风廉政建设责任制民主测评"
    cases = [
        (f"/rounds/{rid}/report.xlsx", f"{stem}-测评结果.xlsx", f"2026-round-{rid}-results.xlsx"),
        (f"/rounds/{rid}/feedback.pdf", f"{stem}-反馈单.pdf", f"2026-round-{rid}-feedback.pdf"),
    ]
    for name in (TEAM, INTEGRITY):
        s = th.subject(sample_round, name)
        cases.append(
            (
                f"/rounds/{rid}/results/{s.id}/feedback.pdf",
                f"{stem}-反馈单-{name}.pdf",
                f"2026-round-{rid}-feedback-{s.id}.pdf",
            )
        )
    for url, name, fallback in cases:
        res = client.get(url)
        assert res.status_code == 200, url
        header = res.headers["Content-Disposition"]
        assert header == (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
        )
        assert "2026-2026" not in header and "--" not in header


def test_download_names_repeat_no_year_and_are_safe(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    sample_round.title = "年度/民主测评"
    db.session.commit()
    vote(sample_round)
    auth.login("organiser")
    res = client.get(f"/rounds/{sample_round.id}/report.xlsx")
    header = res.headers["Content-Disposition"]
    name = "2026-兰州市局-年度_民主测评-测评结果.xlsx"
    assert f"filename*=UTF-8''{quote(name, safe='')}" in header
    assert f'filename="2026-round-{sample_round.id}-results.xlsx"' in header
