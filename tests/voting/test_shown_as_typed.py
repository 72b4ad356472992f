"""Numbers and times as people write them (issue 17, item 8): weights and minimum turnout as
typed, turnout as a percent, dates as 2026年11月30日 10:05 in Beijing time, forms in 004's order."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from evaluation.ballot_forms import FORM_ORDER, form_order, in_form_order, load_forms
from evaluation.extensions import db
from evaluation.formatting import as_typed, beijing_date, beijing_time, percent
from evaluation.rounds import operations
from tests.helpers.databases import ROOT

# --- the filters (no database) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("3/10", "0.3"),  # what 0.3 is stored as
        ("0.3", "0.3"),
        ("1/3", "1/3"),
        ("2/3", "2/3"),
        ("4/5", "0.8"),
        ("1/8", "0.125"),
        ("1", "1"),
        ("7/20", "0.35"),
        ("1/1024", "1/1024"),  # a decimal this long is shown as the fraction
        (Fraction(3, 10), "0.3"),
        (0.3, "0.3"),
        (None, ""),
        ("", ""),
        ("约三成", "约三成"),  # not a number: as it is
    ],
)
def test_as_typed(stored: object, shown: str) -> None:
    assert as_typed(stored) == shown


@pytest.mark.parametrize(
    ("share", "shown"),
    [
        (Fraction(4, 5), "80 %"),
        ("4/5", "80 %"),
        (0.8, "80 %"),
        (Fraction(2, 3), "66.7 %"),
        (Fraction(1, 3), "33.3 %"),
        (Fraction(1, 200), "0.5 %"),
        (Fraction(1, 2000), "0.1 %"),  # half up
        (1, "100 %"),
        (0, "0 %"),
        (None, "—"),
    ],
)
def test_percent(share: object, shown: str) -> None:
    assert percent(share) == shown


def test_times_are_beijing_time_in_words() -> None:
    naive_utc = datetime(2026, 11, 30, 2, 5)  # as SQLite gives it back
    assert beijing_time(naive_utc) == "2026年11月30日 10:05"
    assert beijing_time(naive_utc.replace(tzinfo=UTC)) == "2026年11月30日 10:05"
    late = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)  # already the next day in Beijing
    assert beijing_time(late) == "2027年1月1日 00:30" and beijing_date(late) == "2027年1月1日"
    assert beijing_time(None) == "" and beijing_date(None) == ""


def test_forms_load_in_the_order_of_004() -> None:
    forms = load_forms(ROOT / "ballots")
    assert (
        list(forms)
        == list(FORM_ORDER)
        == [
            "gansu-team",
            "gansu-principal",
            "gansu-member",
            "gansu-discipline",
            "gansu-integrity",
        ]
    )
    # A unit's own form comes after 004's, by id.
    shuffled = {"zz-own": 1, "gansu-integrity": 2, "aa-own": 3, "gansu-team": 4}
    assert [k for k, _ in in_form_order(shuffled)] == [
        "gansu-team",
        "gansu-integrity",
        "aa-own",
        "zz-own",
    ]
    assert sorted(["aa-own", "gansu-member"], key=form_order) == ["gansu-member", "aa-own"]


# --- the organiser's pages (both engines) ------------------------------------------------------


def test_round_page_shows_values_as_typed(client, auth, users, sample_round) -> None:
    operations.add_stratum(sample_round, actor="test", name="服务对象", planned=10, weight="0.3")
    operations.add_stratum(sample_round, actor="test", name="上级抽测", planned=5, weight="1/3")
    sample_round.min_turnout = "4/5"  # what "0.8" is stored as
    sample_round.opens_at = datetime(2026, 11, 30, 2, 5, tzinfo=UTC)
    db.session.commit()
    auth.login()
    page = client.get(f"/rounds/{sample_round.id}").get_data(as_text=True)
    weights = re.findall(r'<td data-label="权重" class="num">([^<]*)</td>', page)
    assert weights == ["0（未设）", "0（未设）", "0（未设）", "0.3", "1/3"]
    # Some strata weighted, some not: the page says those count 0, on the round and at open.
    warning = "只有部分类别设了权重：班子成员、中层干部、一般干部 没有设权重，加权时按 0 计"
    assert warning in page
    assert warning in client.get(f"/rounds/{sample_round.id}/open").get_data(as_text=True)
    assert "3/10" not in page
    assert "<dd>0.8</dd>" in page
    assert "2026年11月30日 10:05" in page


def test_form_choices_follow_004(client, auth, users, sample_round) -> None:
    auth.login()
    page = client.get(f"/rounds/{sample_round.id}").get_data(as_text=True)
    offered = re.findall(r'<option value="(gansu-[a-z]+)"', page)
    assert offered == list(FORM_ORDER)
