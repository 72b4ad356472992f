"""A hostile upload while the hall votes (SQLite): no vote is lost and none is held up.

An organiser keeps uploading a 100 KB workbook that unpacks to 40 MB and a round file nested
thousands deep, while 50 voters submit their ballots. Uploads are read before any write lock
is taken and refused by the limits, so each vote waits only for the other votes. The voters
are started a few milliseconds apart (a loaded two-core machine then still answers each one
well within a second); every vote's latency is measured.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest
from flask import Flask

from evaluation.extensions import db
from evaluation.models import CodeState, Round
from evaluation.rounds.round_file import import_round, parse_round_text
from tests.helpers.databases import BACKENDS
from tests.helpers.uploads import zip_bomb_xlsx
from tests.helpers.voters import Voter, ballots_cast, code_state, full_answers, open_with_codes
from tests.helpers.web import PASSWORD, SAMPLE_ROUND, csrf_token

VOTERS = 50
STAGGER_SECONDS = 0.04
MAX_VOTE_SECONDS = 1.0


# The write lock that uploads once held is SQLite's (PostgreSQL has none to hold).
@pytest.mark.parametrize("db_url", [BACKENDS[0]], indirect=True)
def test_hostile_uploads_while_fifty_vote_lose_and_delay_no_vote(
    app: Flask, users: Any, sample_round: Round
) -> None:
    issued = open_with_codes(sample_round, VOTERS // len(sample_round.strata) + 1)
    jobs = [c for batch in issued.values() for c in batch][:VOTERS]
    answers = full_answers(sample_round, pick=1)
    draft = import_round(parse_round_text(SAMPLE_ROUND.replace("2026", "2027")), actor="test")
    draft_id, round_id = draft.id, sample_round.id
    db.session.commit()

    bomb = zip_bomb_xlsx(40)
    assert len(bomb) < 1024 * 1024
    deep = ('title = "t"\nx = ' + "[" * 5000 + "]" * 5000 + "\n").encode()

    organiser = app.test_client()
    token = csrf_token(organiser, "/login")
    organiser.post(
        "/login", data={"username": "organiser", "password": PASSWORD, "csrf_token": token}
    )
    subjects_url = f"/rounds/{draft_id}/subjects/import"
    subjects_token = csrf_token(organiser, subjects_url)
    round_token = csrf_token(organiser, "/rounds/import")

    voters = [Voter(app.test_client()) for _ in jobs]
    for voter, code in zip(voters, jobs, strict=True):
        assert voter.scan(code).status_code == 200

    voting = threading.Event()
    finished = threading.Event()
    uploads: list[tuple[int, float]] = []
    latencies: list[float] = [0.0] * len(jobs)
    statuses: list[int] = [0] * len(jobs)
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            voting.wait(timeout=60)
            turn = 0
            while not finished.is_set() or turn < 2:
                if turn % 2 == 0:
                    url, body, name = subjects_url, bomb, "名单.xlsx"
                    data = {"csrf_token": subjects_token}
                else:
                    url, body, name = "/rounds/import", deep, "round.toml"
                    data = {"csrf_token": round_token}
                started = time.perf_counter()
                response = organiser.post(
                    url,
                    data={**data, "file": (io.BytesIO(body), name)},
                    content_type="multipart/form-data",
                )
                uploads.append((response.status_code, time.perf_counter() - started))
                turn += 1
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)

    def vote(index: int) -> None:
        try:
            voting.wait(timeout=60)
            time.sleep(index * STAGGER_SECONDS)
            started = time.perf_counter()
            statuses[index] = voters[index].submit(answers).status_code
            latencies[index] = time.perf_counter() - started
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread
            errors.append(exc)

    uploader = threading.Thread(target=upload)
    threads = [threading.Thread(target=vote, args=(i,)) for i in range(len(jobs))]
    uploader.start()
    for t in threads:
        t.start()
    voting.set()
    for t in threads:
        t.join(timeout=120)
    finished.set()
    uploader.join(timeout=120)

    assert not errors, errors
    assert statuses == [200] * len(jobs)
    slowest = max(latencies)
    assert slowest < MAX_VOTE_SECONDS, sorted(latencies)[-5:]
    assert len(uploads) >= 2 and all(status == 400 for status, _ in uploads), uploads
    assert max(seconds for _, seconds in uploads) < 10

    db.session.commit()
    assert ballots_cast(round_id) == len(jobs)
    assert all(code_state(code) == CodeState.USED for code in jobs)
