"""A round whose 服务对象 rates only the leadership team (issue 16: strata limited to subjects).

干部 (weight 0.6, 10 codes) rates 市局领导班子 and 市局纪检组; 服务对象 (weight 0.4, 10 codes)
rates 市局领导班子 only. Voters go through the real pages (``tests.helpers.voters.Voter``).
"""

from __future__ import annotations

from flask import Flask

from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.voting.ballot import ballot_layout, field_name
from tests.helpers.voters import Voter, voted

TEAM = "市局领导班子"
ORGAN = "市局纪检组"
CADRES = "干部"
SERVED = "服务对象"

LIMITED_ROUND = f"""
title = "2026年度服务对象参与的民主测评"
unit = "甘肃省局/兰州市局"
year = 2026
mode = "集中"
min_turnout = "1/2"

[[strata]]
name = "{CADRES}"
codes = 10
weight = "0.6"

[[strata]]
name = "{SERVED}"
codes = 10
weight = "0.4"
subjects = ["{TEAM}"]

[[subjects]]
name = "{TEAM}"
form = "gansu-team"

[[subjects]]
name = "{ORGAN}"
form = "gansu-discipline"
"""


def limited_round() -> Round:
    """The draft round above, imported and committed."""
    rnd = import_round(parse_round_text(LIMITED_ROUND), actor="test")
    db.session.commit()
    return rnd


def answers_for(rnd: Round, stratum_name: str, grades: dict[str, str]) -> dict[str, str]:
    """Form data for a stratum's ballot: subject name → grade label (every subject it rates)."""
    stratum = next(s for s in rnd.strata if s.name == stratum_name)
    data = {}
    for subject in ballot_layout(rnd, stratum.id):
        label = grades[subject.name]
        key = next(c.value for c in subject.overall.choices if c.label == label)
        data[field_name(subject.subject_id)] = key
    return data


def vote_as(app: Flask, rnd: Round, code: str, stratum_name: str, grades: dict[str, str]) -> None:
    """One voter on a phone of their own: scan ``code`` and submit ``grades``."""
    response = Voter(app.test_client()).vote(code, answers_for(rnd, stratum_name, grades))
    assert voted(response), response.get_data(as_text=True)
