"""Results pages: only after close, scoped to the user's units, figures as on the workbook."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from openpyxl import load_workbook

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.tally.aggregate import compute_legacy_seal, tally_round
from evaluation.tally.core import to_json
from tests.helpers import tally as th
from tests.helpers.tally import PRINCIPAL, TEAM, vote
from tests.helpers.web import AuthActions


def test_nothing_about_votes_while_open(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    th.open_round(sample_round)
    th.cast(sample_round, "中层干部", {TEAM: "优秀"}, times=6)
    db.session.commit()
    auth.login("viewer")
    team = th.subject(sample_round, TEAM)
    for url in (
        f"/rounds/{sample_round.id}/results",
        f"/rounds/{sample_round.id}/results/{team.id}",
        f"/rounds/{sample_round.id}/results/charts/grades.png",
        f"/rounds/{sample_round.id}/results/{team.id}/chart.png",
        f"/rounds/{sample_round.id}/report.xlsx",
        f"/rounds/{sample_round.id}/feedback.pdf",
        f"/rounds/{sample_round.id}/results/{team.id}/feedback.pdf",
    ):
        res = client.get(url)
        assert res.status_code == 409, url
        page = res.get_data(as_text=True)
        assert "测评结果只在测评结束后提供" in page, url
        assert "优秀率" not in page and "满意率" not in page


def test_round_and_subject_pages_after_close(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    auth.login("viewer")
    page = client.get(f"/rounds/{sample_round.id}/results").get_data(as_text=True)
    assert "测评结果" in page and TEAM in page and PRINCIPAL in page
    assert "87.88%" in page  # 市局领导班子 满意率 29/33
    assert 'title="29/33"' in page  # the exact fraction beside the rounded figure
    assert "67.44%" in page  # 张三 满意率 29/43
    assert sample_round.seal is not None and sample_round.seal in page
    assert "取自测评结束时<strong>封存</strong>的计票结果" in page and "测评有效" in page
    for name in ("grades", "satisfaction", "turnout"):
        res = client.get(f"/rounds/{sample_round.id}/results/charts/{name}.png")
        assert res.status_code == 200 and res.mimetype == "image/png"
    assert client.get(f"/rounds/{sample_round.id}/results/charts/nope.png").status_code == 404

    team = th.subject(sample_round, TEAM)
    page = client.get(f"/rounds/{sample_round.id}/results/{team.id}").get_data(as_text=True)
    assert "合格" in page and "不排名" in page and "（共1）" not in page
    # 班子成员 cast 3 ballots: pooled with 中层干部 (10), named; 9 优秀 of 13 → 69.23%
    assert "<td>班子成员</td>" not in page
    row = page.split("<td>其他类别（含：班子成员、中层干部）</td>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">13</td>' in row and "69.23%" in row and "—" not in row
    res = client.get(f"/rounds/{sample_round.id}/results/{team.id}/chart.png")
    assert res.status_code == 200 and res.mimetype == "image/png"
    assert client.get(f"/rounds/{sample_round.id}/results/{team.id}/items.png").status_code == 404
    assert client.get(f"/rounds/{sample_round.id}/results/999999").status_code == 404


def test_downloads(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    auth.login("organiser")
    res = client.get(f"/rounds/{sample_round.id}/report.xlsx")
    assert res.status_code == 200 and "attachment" in res.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(res.data))
    assert wb.sheetnames[4:10] == [
        "汇总表-廉洁自律",
        "汇总",
        "分类别",
        "参测情况",
        "原始选票",
        "核验",
    ]
    res = client.get(f"/rounds/{sample_round.id}/feedback.pdf")
    assert res.status_code == 200 and res.data.startswith(b"%PDF")
    team = th.subject(sample_round, TEAM)
    res = client.get(f"/rounds/{sample_round.id}/results/{team.id}/feedback.pdf")
    assert res.status_code == 200 and res.data.startswith(b"%PDF")


def test_scoped_to_the_users_units(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    assert client.get(f"/rounds/{sample_round.id}/results").status_code in (302, 401)
    auth.login("other")  # 天水市局 cannot see 兰州市局's round
    for url in (f"/rounds/{sample_round.id}/results", f"/rounds/{sample_round.id}/report.xlsx"):
        res = client.get(url)
        assert res.status_code == 404
        assert "不在您的管辖范围内" in res.get_data(as_text=True)


def test_results_page_fits_a_phone(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    vote(sample_round)
    auth.login("viewer")
    page = client.get(f"/rounds/{sample_round.id}/results").get_data(as_text=True)
    assert 'name="viewport"' in page
    # wide tables scroll inside their own box instead of widening the page
    assert page.count('class="table-wrap"') >= 2


def test_missing_font_is_a_clear_refusal_with_the_fix(
    client: FlaskClient,
    auth: AuthActions,
    users: dict,
    sample_round: Round,
    runner: FlaskCliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evaluation.fonts import FIX, FontMissing
    from evaluation.reports import charts

    def missing() -> str:
        raise FontMissing(FIX)

    monkeypatch.setattr(charts, "matplotlib_font_family", missing)
    vote(sample_round)
    auth.login("viewer")
    res = client.get(f"/rounds/{sample_round.id}/results/charts/grades.png")
    assert res.status_code == 503
    assert "apt-get install fonts-wqy-microhei" in res.get_data(as_text=True)
    res = runner.invoke(args=["report", str(sample_round.id)])
    assert res.exit_code != 0 and "fonts-wqy-microhei" in res.output
    assert "Traceback" not in res.output


def test_a_round_sealed_before_pooling_is_shown_as_sealed(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    """Archived rounds sealed with version-2 results keep their "—" cells (read, not redone)."""
    vote(sample_round)
    sample_round.sealed_result = to_json(tally_round(sample_round, pooling=False))
    sample_round.seal = compute_legacy_seal(sample_round)
    db.session.commit()
    auth.login("viewer")
    team = th.subject(sample_round, TEAM)
    page = client.get(f"/rounds/{sample_round.id}/results/{team.id}").get_data(as_text=True)
    row = page.split("<td>班子成员</td>", 1)[1].split("</tr>", 1)[0]
    assert "—" in row and "%" not in row and "其他类别（含" not in page
    res = client.get(f"/rounds/{sample_round.id}/report.xlsx")
    assert res.status_code == 200
    book = load_workbook(io.BytesIO(res.data))
    checks = {r[0]: r[1] for r in book["核验"].iter_rows(min_row=2, values_only=True)}
    assert checks["封存格式"] == "v1（旧格式）"
    raw = [r for r in book["原始选票"].iter_rows(min_row=2, values_only=True) if r[0] == TEAM]
    assert raw and all(r[2] != "班子成员" for r in raw)
