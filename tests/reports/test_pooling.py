"""Small groups are pooled, not hidden, in every output (SPEC §4, §5.5).

``vote_with_small_stratum``: 班子成员 casts 4 ballots (below MIN_GROUP_SIZE 5) and is pooled,
for every subject, with 中层干部 (7) into "其他类别（含：班子成员、中层干部）" (11 ballots). For
each output — results pages, workbook 分类别 and 分项, feedback sheet, chart data (the archive:
``tests/archive/test_archive_pooling.py``) — 班子成员 appears nowhere on its own, no
breakdown holds its 4 ballots, and the pool is named.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook

from evaluation.models import Round
from evaluation.reports import charts
from evaluation.tally.aggregate import sealed_result
from tests.helpers import tally as th
from tests.helpers.tally import POOL, SMALL, TEAM, vote_with_small_stratum
from tests.helpers.web import AuthActions


@pytest.fixture
def pooled(sample_round: Round) -> Round:
    """A closed round whose 班子成员 cast 4 ballots."""
    vote_with_small_stratum(sample_round)
    return sample_round


@pytest.fixture
def weighted(sample_round: Round) -> Round:
    """The same votes, with weights 1/5, 2/5, 2/5."""
    vote_with_small_stratum(sample_round, weights=("1/5", "2/5", "2/5"))
    return sample_round


def _table(ws: Any) -> list[dict[str, Any]]:
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    header = [str(h) for h in rows[0]]
    out = []
    for r in rows[1:]:
        if all(v is None for v in r):
            break
        out.append(dict(zip(header, r, strict=False)))
    return out


def _text(ws: Any) -> str:
    return "\n".join(str(v) for r in ws.iter_rows(values_only=True) for v in r if v is not None)


def test_the_tally_pools_the_small_stratum_for_every_subject(pooled: Round) -> None:
    result = sealed_result(pooled)
    for s in result.subjects:
        assert s.pool is not None and s.pool.name == POOL and s.pool.ballots == 11, s.name
        assert all(c.name != SMALL and c.ballots != 4 for c in s.strata), s.name
    team = result.subject(th.subject(pooled, TEAM).id)
    assert [i.code for i in team.items] == ["1"]
    assert [(c.name, c.ballots) for c in team.items[0].strata] == [("一般干部", 20), (POOL, 11)]


def test_results_pages_name_the_pool(
    client: FlaskClient, auth: AuthActions, users: dict, weighted: Round
) -> None:
    auth.login("viewer")
    page = client.get(f"/rounds/{weighted.id}/results").get_data(as_text=True)
    assert "其他类别" in page and "班子成员、中层干部 合并为“其他类别”" in page
    assert "加权说明" in page and "未加权" in page
    team = th.subject(weighted, TEAM)
    page = client.get(f"/rounds/{weighted.id}/results/{team.id}").get_data(as_text=True)
    assert f"<td>{POOL}</td>" in page
    assert f"<td>{SMALL}</td>" not in page
    row = page.split(f"<td>{POOL}</td>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">11</td>' in row  # the pool's ballots, never 班子成员's 4
    assert "—" not in page.split("<h2>分类别</h2>", 1)[1].split("</table>", 1)[0]
    assert "不足" not in page and "不显示" not in page
    assert "占有效票（未加权）" in page and "加权说明" in page
    assert "3/5" in row  # the pool's weight: 1/5 + 2/5


def test_workbook_strata_and_items_name_the_pool(
    client: FlaskClient, auth: AuthActions, users: dict, pooled: Round
) -> None:
    auth.login("viewer")
    book = load_workbook(io.BytesIO(client.get(f"/rounds/{pooled.id}/report.xlsx").data))
    strata = _table(book["分类别"])
    names = {r["测评人员类别"] for r in strata}
    assert names == {"一般干部", POOL}
    assert all(r["参评票"] != 4 for r in strata)
    team_item = [r for r in strata if r["测评对象"] == TEAM and r["测评内容"] == "第1项"]
    assert [(r["测评人员类别"], r["参评票"], r["不合格"]) for r in team_item] == [
        ("一般干部", 20, 0),
        (POOL, 11, 6),
    ]
    notes = _text(book["分类别"])
    assert "其他类别" in notes and "—" not in notes and "不显示" not in notes
    assert f"测评对象“{TEAM}”：班子成员、中层干部 合并为“其他类别”（共 11 张选票）。" in notes
    items = _text(book["分项"])
    assert "班子成员、中层干部 合并为“其他类别”" in items
    raw = _table(book["原始选票"])
    assert {r["测评人员类别"] for r in raw} == {"一般干部", POOL}


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext (poppler-utils) is needed to read the feedback sheet")
    path = tmp_path / "feedback.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return re.sub(r"\s+", "", out.stdout.decode("utf-8"))


def test_feedback_sheet_names_the_pool(
    client: FlaskClient, auth: AuthActions, users: dict, weighted: Round, tmp_path: Path
) -> None:
    auth.login("viewer")
    team = th.subject(weighted, TEAM)
    pdf = client.get(f"/rounds/{weighted.id}/results/{team.id}/feedback.pdf").data
    text = _pdftotext(pdf, tmp_path)
    assert "其他类别（含：班子成员、中层干部）" in text
    assert "班子成员、中层干部合并为“其他类别”（共11张选票）" in text
    assert "班子成员4" not in text  # no row of 班子成员 with its 4 ballots
    assert "不足" not in text and "不显示" not in text
    assert "加权说明" in text and "占有效票（未加权）" in text


def test_chart_data_names_the_pool(pooled: Round) -> None:
    result = sealed_result(pooled)
    for s in result.subjects:
        bars = charts.strata_bars(s)
        assert [label for label, _, _ in bars] == ["一般干部", "其他类别"], s.name
        assert all("（4 票）" not in text for _, _, text in bars)
        caption = charts.pool_caption(result, s)
        assert caption is not None and "班子成员、中层干部" in caption and "共 11 张" in caption
        assert charts.subject_png(result, s).startswith(b"\x89PNG")
