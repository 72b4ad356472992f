"""测评活动 dashboard (evaluation/rounds/dashboard.py): turnout, dates, next step, filters,
search, pagination — and a page's SQL statements do not grow with the rounds it shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from evaluation.codes.turnout import round_turnout
from evaluation.extensions import db
from evaluation.models import Round
from evaluation.rounds import dashboard, lifecycle
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.transactions import write_transaction
from tests.helpers.voters import Voter, full_answers, open_with_codes
from tests.helpers.web import SAMPLE_ROUND, AuthActions


def _copy(title: str, year: int, unit: str = "甘肃省局/兰州市局") -> Round:
    text = SAMPLE_ROUND
    text = re.sub(r'(?m)^title = ".*"$', f'title = "{title}"', text, count=1)
    text = re.sub(r"(?m)^year = \d+$", f"year = {year}", text, count=1)
    text = re.sub(r'(?m)^unit = ".*"$', f'unit = "{unit}"', text, count=1)
    rnd = import_round(parse_round_text(text), actor="test")
    db.session.commit()
    return rnd


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _rows(page: str) -> int:
    return len(re.findall(r'<td data-label="年度">', page))


def test_turnout_on_the_dashboard_is_the_round_s_turnout(
    app: Flask, client: FlaskClient, users, sample_round: Round
) -> None:  # type: ignore[no-untyped-def]
    codes = open_with_codes(sample_round, per_stratum=4)
    first = next(iter(codes.values()))
    for code in first[:3]:
        Voter(client).vote(code, full_answers(sample_round))
    AuthActions(client).login("organiser")
    page = client.get("/").get_data(as_text=True)
    live = round_turnout(db.session.get_one(Round, sample_round.id))
    assert live.used == 3 and live.issued == 12
    assert f"{live.used}/{live.issued}" in page
    assert "查看参测情况；投票结束后结束测评" in page
    with write_transaction():
        lifecycle.close_round(db.session.get_one(Round, sample_round.id), actor="test")
    page = client.get("/").get_data(as_text=True)
    closed = round_turnout(db.session.get_one(Round, sample_round.id))
    assert (closed.used, closed.issued) == (3, 12)
    assert "3/12" in page and "结束 " in page


def test_filters_search_and_scope(app: Flask, client: FlaskClient, users) -> None:  # type: ignore[no-untyped-def]
    _copy("2025年度兰州市局民主测评", 2025)
    _copy("2026年度兰州市局民主测评", 2026)
    _copy("2026年度榆中县局民主测评", 2026, "甘肃省局/兰州市局/榆中县局")
    _copy("2026年度天水市局民主测评", 2026, "甘肃省局/天水市局")
    AuthActions(client).login("organiser")  # 兰州市局 and beneath
    everything = client.get("/").get_data(as_text=True)
    assert _rows(everything) == 3 and "天水" not in everything
    assert "共 3 个测评活动" in everything
    by_year = client.get("/?year=2026").get_data(as_text=True)
    assert _rows(by_year) == 2 and "2025年度" not in by_year
    searched = client.get("/?q=榆中").get_data(as_text=True)
    assert _rows(searched) == 1 and "榆中县局民主测评" in searched
    drafts = client.get("/?state=draft").get_data(as_text=True)
    assert _rows(drafts) == 3
    assert _rows(client.get("/?state=open").get_data(as_text=True)) == 0
    assert "没有符合筛选条件" in client.get("/?q=不存在的名称").get_data(as_text=True)
    # Nonsense in the query string is no filter, never an error.
    assert client.get("/?year=abc&state=nope&page=-3&unit=x").status_code == 200


def test_paginated_with_counts_and_statements_do_not_grow_with_rows(
    app: Flask, client: FlaskClient, users
) -> None:  # type: ignore[no-untyped-def]
    for i in range(dashboard.PAGE_SIZE + 5):
        _copy(f"测评活动{i:03d}", 2000 + i % 7)
    AuthActions(client).login("organiser")
    first = client.get("/").get_data(as_text=True)
    assert _rows(first) == dashboard.PAGE_SIZE
    assert f"共 {dashboard.PAGE_SIZE + 5} 个测评活动，第 1/2 页" in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert _rows(second) == 5
    # The pager names pages, and carries only the filters it understood.
    assert '<strong aria-current="page">2</strong>' in second and 'href="/">1</a>' in second
    odd = client.get("/?page=2&year=abcd&state=draft&junk=1").get_data(as_text=True)
    assert 'href="/?state=draft">1</a>' in odd and "abcd" not in odd and "junk" not in odd
    with _statements() as many:
        client.get("/")
    with _statements() as few:
        client.get("/?page=2")
    assert len(many) == len(few), (len(many), len(few))
    assert len(many) < 25


def test_the_pager_names_the_first_last_and_near_pages() -> None:
    assert dashboard.page_links(1, 1) == [1]
    assert dashboard.page_links(1, 3) == [1, 2, 3]
    assert dashboard.page_links(7, 40) == [1, None, 5, 6, 7, 8, 9, None, 40]
    assert dashboard.page_links(40, 40) == [1, None, 38, 39, 40]
    assert dashboard.page_links(3, 40) == [1, 2, 3, 4, 5, None, 40]
