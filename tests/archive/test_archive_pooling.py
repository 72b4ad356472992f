"""The archive names the strata a subject pooled into 其他类别 (SPEC §4), and in a weighted
round keeps the unweighted shares beside the weighted rates."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from evaluation.archive import export as archive_export
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Round
from evaluation.rounds import lifecycle
from tests.helpers.tally import POOL, vote_with_small_stratum
from tests.helpers.web import AuthActions


@pytest.fixture
def weighted(sample_round: Round) -> Round:
    """A closed weighted round whose 班子成员 cast 4 ballots (pooled with 中层干部)."""
    vote_with_small_stratum(sample_round, weights=("1/5", "2/5", "2/5"))
    return sample_round


def test_archive_entry_and_export_name_the_pool(
    client: FlaskClient, auth: AuthActions, users: dict, weighted: Round
) -> None:
    lifecycle.archive_round(weighted, actor="test")
    db.session.commit()
    entries = db.session.execute(
        db.select(ArchiveEntry).where(ArchiveEntry.round_id == weighted.id)
    ).scalars()
    entries = list(entries)
    assert entries
    for entry in entries:
        assert entry.figures["pooled_strata"] == ["班子成员", "中层干部"]
        assert entry.figures["pool_label"] == POOL
        assert entry.figures["raw_satisfaction_rate"] is not None
        assert entry.figures["weighted"] is True
    rows = archive_export.entry_rows(entries)
    assert all("班子成员、中层干部 选票较少，合并为“其他类别”计算" in r[-1].value for r in rows)
    assert all("加权计算" in r[-1].value for r in rows)
    person = next(e.person for e in entries if e.person is not None)
    auth.login("viewer")
    page = client.get(f"/archive/person/{person.id}").get_data(as_text=True)
    assert f"{POOL}合并计算" in page and "未加权" in page
