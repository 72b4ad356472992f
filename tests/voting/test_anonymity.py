"""Anonymity (SPEC §5): each point with a test that would catch its breach."""

from __future__ import annotations

import logging
import random
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect, text

from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Code, Receipt, Unit
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from evaluation.voting.anonymity import scrub_dead_rows
from evaluation.voting.ballot import ballot_layout
from evaluation.voting.views import cast_ballot
from tests.helpers.voters import Voter, full_answers, open_with_codes, receipt_of, voted

ROOT = Path(__file__).resolve().parents[2]


def spearman(order: list[int]) -> float:
    """Rank correlation between positions 0..n-1 and ``order`` (distinct values)."""
    n = len(order)
    ranks = {v: r for r, v in enumerate(sorted(order))}
    d2 = sum((i - ranks[v]) ** 2 for i, v in enumerate(order))
    return 1 - 6 * d2 / (n * (n * n - 1))


def test_spearman_measures_what_it_should() -> None:
    assert spearman(list(range(50))) == 1
    assert spearman(list(range(50))[::-1]) == -1


def close(rnd) -> None:  # type: ignore[no-untyped-def]
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()
    scrub_dead_rows()


# --- §5.1: a ballot carries nothing that links it; a code only its state ------------------------

EXPECTED_COLUMNS = {
    "ballot": {"id", "round_id", "stratum_id"},
    "answer": {"ballot_id", "subject_id", "item", "stratum_id", "grade"},
    "receipt": {"digest", "round_id"},
    "code": {"id", "round_id", "stratum_id", "batch_id", "digest", "state", "serial_tag"},
}


def test_anonymous_tables_have_exactly_the_expected_columns(app: Flask) -> None:
    inspector = inspect(db.engine)
    for table, expected in EXPECTED_COLUMNS.items():
        actual = {c["name"] for c in inspector.get_columns(table)}
        assert actual == expected, f"{table}: {sorted(actual ^ expected)}"
        model_columns = {c.name for c in db.metadata.tables[table].columns}
        assert model_columns == expected
    # No foreign key from a ballot, answer or receipt to a code.
    for table in ("ballot", "answer", "receipt"):
        targets = {fk["referred_table"] for fk in inspector.get_foreign_keys(table)}
        assert "code" not in targets and "code_batch" not in targets


def test_ballot_ids_are_random_not_sequential(app: Flask, sample_round) -> None:
    issued = open_with_codes(sample_round, 5)["一般干部"]
    stratum = codes.stratum_named(sample_round, "一般干部")
    answers = [(s.id, "", None) for s in sample_round.subjects]
    layout = ballot_layout(sample_round)
    for code in issued:
        cast_ballot(codes.code_digest(code), sample_round, stratum.id, layout, answers)
    close(sample_round)
    ids = db.session.execute(db.select(Ballot.id)).scalars().all()
    assert len({i.version for i in ids}) == 1 and ids[0].version == 4


# --- §5.2: the plaintext of a code is nowhere in the database -----------------------------------


def _database_text(app: Flask) -> bytes:
    """Everything the database holds, as bytes: the file (and WAL) or every table's rows."""
    if db.engine.dialect.name == "sqlite":
        path = Path(db.engine.url.database or "")
        blobs = [p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()]
        return b"".join(blobs)
    chunks = []
    with db.engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        for table in list(tables):
            rows = conn.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t')).scalars()
            chunks.extend(r.encode() for r in rows)
    return b"\n".join(chunks)


def test_database_never_holds_a_plaintext_code_or_receipt(app: Flask, client, sample_round) -> None:
    issued = open_with_codes(sample_round, 10)
    plain = [c for batch in issued.values() for c in batch]
    receipts = []
    for code in plain[:12]:
        thanks = Voter(client).vote(code, full_answers(sample_round))
        assert voted(thanks)
        receipts.append(receipt_of(thanks))
    db.session.commit()
    data = _database_text(app)
    for secret in plain + receipts:
        assert secret.encode() not in data
        assert codes.normalise(secret).encode() not in data
    # The scan does see what is stored: a control value written the same way is found.
    marker = codes.new_code()
    db.session.add(Unit(name=marker, path=marker))
    db.session.commit()
    assert marker.encode() in _database_text(app)


# --- §5.3: neither row order nor row metadata follows submission order after close --------------


def _encode(rnd, index: int) -> list[tuple[int, str, str | None]]:  # type: ignore[no-untyped-def]
    """Answers that spell ``index`` in mixed radix over the subjects' choices."""
    answers = []
    for subject in ballot_layout(rnd):
        choices = subject.overall.choices
        index, digit = divmod(index, len(choices))
        value = choices[digit].value
        answers.append((subject.subject_id, "", None if value == "abstain" else value))
    return answers


def _decode(rnd, grades: dict[int, str | None]) -> int:  # type: ignore[no-untyped-def]
    index = 0
    for subject in reversed(ballot_layout(rnd)):
        values = [c.value for c in subject.overall.choices]
        grade = grades[subject.subject_id]
        index = index * len(values) + values.index("abstain" if grade is None else grade)
    return index


def _ballot_orders(rnd) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Submission index of each ballot, in the order the database returns the rows."""
    grades: dict[object, dict[int, str | None]] = {}
    for ballot_id, subject_id, grade in db.session.execute(
        db.select(Answer.ballot_id, Answer.subject_id, Answer.grade).where(Answer.item == "")
    ):
        grades.setdefault(ballot_id, {})[subject_id] = grade
    meta = "rowid" if db.engine.dialect.name == "sqlite" else "ctid"
    plain = db.session.execute(text("SELECT id FROM ballot")).scalars().all()
    by_meta = db.session.execute(text(f"SELECT id FROM ballot ORDER BY {meta}")).scalars().all()

    def index_of(raw: object) -> int:
        import uuid

        key = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        return _decode(rnd, grades[key])

    return {"plain": [index_of(i) for i in plain], meta: [index_of(i) for i in by_meta]}


def _code_order(meta: str, position: dict[str, int]) -> list[int]:
    """Voting position of each used code, in the order the database returns the rows."""
    rows = db.session.execute(
        text(f"SELECT digest FROM code WHERE state = 'used' ORDER BY {meta}")
    ).scalars()
    return [position[d] for d in rows]


def test_row_order_and_row_ids_do_not_follow_submission_after_close(
    app: Flask, sample_round
) -> None:
    n = 300
    per_stratum = n // 3
    issued = open_with_codes(sample_round, per_stratum)
    strata = {s.name: s.id for s in sample_round.strata}
    # Voters come in any order, not the order of the codes' CSV.
    order = [(name, code) for name, batch in issued.items() for code in batch]
    random.Random(7).shuffle(order)
    layout = ballot_layout(sample_round)
    receipts = []
    for index, (name, code) in enumerate(order):
        receipt = cast_ballot(
            codes.code_digest(code),
            sample_round,
            strata[name],
            layout,
            _encode(sample_round, index),
        )
        receipts.append(codes.receipt_digest(receipt))
    meta = "rowid" if db.engine.dialect.name == "sqlite" else "ctid"
    # While open, ballots are sealed in the round's box, stored in submission order (the
    # measurement can see it there); nothing is in the ballot tables yet.
    position = {codes.code_digest(code): i for i, (_, code) in enumerate(order)}
    box_rows = db.session.execute(
        text(f"SELECT digest FROM ballot_box_{sample_round.id} WHERE digest <> '' ORDER BY {meta}")
    ).scalars()
    assert spearman([position[d] for d in box_rows]) > 0.9
    assert db.session.execute(db.select(db.func.count()).select_from(Ballot)).scalar() == 0
    close(sample_round)
    after = _ballot_orders(sample_round)
    assert sorted(after["plain"]) == list(range(n))  # every ballot is there, opened
    for name, sequence in after.items():
        assert abs(spearman(sequence)) < 0.25, name
    # Receipts and codes were written at close too: their stored order (and the codes' ids)
    # say nothing about who voted when.
    receipt_position = {d: i for i, d in enumerate(receipts)}
    stored = db.session.execute(text(f"SELECT digest FROM receipt ORDER BY {meta}")).scalars()
    assert abs(spearman([receipt_position[d] for d in stored])) < 0.25
    for column in (meta, "id"):
        assert abs(spearman(_code_order(column, position))) < 0.25, column
    # Nor do the ids follow the CSV: the codes were rewritten in random order with new ids.
    csv_position = {
        codes.code_digest(code): i for i, code in enumerate(c for b in issued.values() for c in b)
    }
    assert abs(spearman(_code_order("id", csv_position))) < 0.25


def test_postgresql_xmin_no_longer_links_ballots_to_codes(app: Flask, sample_round) -> None:
    if db.engine.dialect.name != "postgresql":
        assert db.engine.dialect.name == "sqlite"  # SQLite has no xmin; rowid is tested above
        return
    issued = open_with_codes(sample_round, 5)["中层干部"]
    stratum = codes.stratum_named(sample_round, "中层干部").id
    layout = ballot_layout(sample_round)
    for index, code in enumerate(issued):
        cast_ballot(
            codes.code_digest(code), sample_round, stratum, layout, _encode(sample_round, index)
        )

    def xmins(table: str) -> set[str]:
        return set(db.session.execute(text(f"SELECT xmin::text FROM {table}")).scalars())

    # Voting never writes a code row: the codes keep the xmin of their issue.
    issued_xmins = xmins("code")  # one per batch issued
    box_xmins = set(
        db.session.execute(
            text(f"SELECT xmin::text FROM ballot_box_{sample_round.id} WHERE digest <> ''")
        ).scalars()
    )
    assert len(box_xmins) == 5 and not box_xmins & issued_xmins
    close(sample_round)
    ballot_xmins = xmins("ballot")
    assert len(ballot_xmins) == 1
    # One transaction, the close's, wrote the ballots, answers, receipts and codes.
    assert ballot_xmins == xmins("answer") == xmins("receipt") == xmins("code")
    assert not ballot_xmins & box_xmins


# --- §5.4: no log line holds a code or a ballot's content --------------------------------------


def test_no_log_line_holds_a_code_or_a_choice(app: Flask, client, sample_round, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    # SQL logging on, with statements: the likeliest way for a choice to reach a log.
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    app.config["CODE_ENTRY_RATE_LIMIT"] = "2 per minute"
    issued = open_with_codes(sample_round, 3)["班子成员"]
    data = full_answers(sample_round, pick=2)
    voter = Voter(client)
    voter.scan(issued[0])
    voter.submit({k: v for k, v in list(data.items())[:2]})  # incomplete: 400
    receipt = receipt_of(voter.submit(data))
    client.get(f"/v/{issued[0]}")  # used: 409
    for _ in range(3):
        client.get(f"/v/{codes.new_code()}")  # unknown, then rate limited
    close(sample_round)
    messages = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert caplog.records, "nothing was logged at all: the capture is not working"
    for secret in [*issued, receipt]:
        assert secret not in messages and codes.normalise(secret) not in messages
    chosen = set(data.values())
    labels = {
        c.label for s in ballot_layout(sample_round) for c in s.overall.choices if c.value in chosen
    }
    for word in chosen | labels:
        assert word not in messages, word


def test_development_server_log_redacts_codes(app: Flask, sample_round, caplog, monkeypatch):
    """The werkzeug server's request log (``flask run``) never shows /v/<code>."""
    from werkzeug.serving import make_server

    code = open_with_codes(sample_round, 1)["班子成员"][0]
    caplog.set_level(logging.INFO, logger="werkzeug")
    # Alembic's fileConfig (run by the migration fixture) disables existing loggers.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v/{code}"
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(url, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 302
        # The handler thread logs after it has answered: wait for its line.
        deadline = time.monotonic() + 10
        while not any(r.name == "werkzeug" for r in caplog.records):
            assert time.monotonic() < deadline, "the server logged no request"
            time.sleep(0.05)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/v/[已隐藏]" in line for line in lines), lines
    assert not any(code in line or codes.normalise(code) in line for line in lines)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


@pytest.mark.slow
def test_gunicorn_access_log_of_make_run_keeps_codes_out(tmp_path: Path) -> None:
    """gunicorn with ``gunicorn.conf.py`` (what `make run` and `make serve` start) logs requests
    without their codes: the request line and the referrer alike."""
    from benchmarks import harness

    url = harness.fresh_database("sqlite", tmp_path)
    _round_id, plain = harness.open_hall_round(url, tmp_path, 2)
    with harness.Server(url, tmp_path, workers=1) as server:
        base = f"http://{harness.LOOPBACK}:{server.port}"
        for target in (f"/v/{plain[0]}", f"/v/{plain[1].lower()}?x=1", "/v/NOT-A-REAL-CODE"):
            request = urllib.request.Request(
                base + target, headers={"Referer": f"{base}/v/{plain[1]}"}
            )
            try:
                urllib.request.build_opener(_NoRedirect).open(request, timeout=10)
            except urllib.error.HTTPError:
                pass
    output = server.log_text()
    assert output.count("/v/[已隐藏]") >= 3, output
    for secret in plain:
        assert secret not in output and secret.lower() not in output
        assert codes.normalise(secret) not in output


# --- §5.6 and §5.7: headers, and links never from the Host header -------------------------------


def test_voting_links_ignore_a_forged_host(app: Flask, client, sample_round) -> None:
    code = open_with_codes(sample_round, 1)["班子成员"][0]
    forged = {"HTTP_HOST": "evil.example", "HTTP_X_FORWARDED_HOST": "evil.example"}
    response = client.get(f"/v/{code}", environ_overrides=forged)
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]
    page = client.get("/v", environ_overrides=forged).get_data(as_text=True)
    assert "evil.example" not in page
    assert codes.code_url(code).startswith("https://ceping.example.gov.cn/v/")


# --- §5.8: organisers see counts only -----------------------------------------------------------


def test_nothing_records_which_code_cast_which_ballot(app: Flask, client, sample_round) -> None:
    issued = open_with_codes(sample_round, 2)["一般干部"]
    assert voted(Voter(client).vote(issued[0], full_answers(sample_round)))
    close(sample_round)
    ballot = db.session.execute(db.select(Ballot)).scalar_one()
    used = db.session.execute(db.select(Code).where(Code.state == "used")).scalar_one()
    row = {c: getattr(ballot, c) for c in EXPECTED_COLUMNS["ballot"]}
    # The ballot holds its random key, round and stratum: nothing of the code (whose id may
    # equal a round or stratum id by chance, so the digest is what is compared).
    assert set(row) == {"id", "round_id", "stratum_id"}
    assert used.digest not in map(str, row.values()) and row["id"] != used.id
    assert db.session.execute(db.select(db.func.count()).select_from(Receipt)).scalar() == 1


def _stratum_figures(rnd, name: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from evaluation.codes.turnout import round_turnout

    row = next(s for s in round_turnout(rnd).strata if s.name == name)
    return row.issued, row.used


@pytest.mark.parametrize("holder_voted", [True, False])
def test_voiding_a_small_batch_does_not_tell_whether_its_holders_voted(
    app: Flask, client, sample_round, holder_voted: bool
) -> None:
    """A batch of one code, voided: the figures are the same whether its holder voted or not."""
    from evaluation.models import CodeBatch
    from tests.helpers.voters import issue

    crowd = open_with_codes(sample_round, 6)["一般干部"]
    single = issue(sample_round, "一般干部", 1)[0]
    for code in crowd[:3]:
        assert voted(Voter(client).vote(code, full_answers(sample_round)))
    if holder_voted:
        assert voted(Voter(client).vote(single, full_answers(sample_round)))
    before = _stratum_figures(sample_round, "一般干部")
    batch = db.session.execute(db.select(CodeBatch).where(CodeBatch.count == 1)).scalar_one()
    codes.void_batch(sample_round, batch.id, actor="t", reason="遗失")
    db.session.commit()
    after = _stratum_figures(sample_round, "一般干部")
    assert after == before  # issued and used unchanged: the void says nothing about the holder
    assert after[0] == 7
    assert client.get(f"/v/{single}").status_code == (409 if holder_voted else 404)


def test_voiding_a_large_batch_takes_its_unused_codes_out_of_turnout(
    app: Flask, client, sample_round
) -> None:
    from evaluation.codes.turnout import SMALL_BATCH
    from evaluation.models import CodeBatch

    lost = open_with_codes(sample_round, SMALL_BATCH)["一般干部"]
    assert voted(Voter(client).vote(lost[0], full_answers(sample_round)))
    assert _stratum_figures(sample_round, "一般干部") == (SMALL_BATCH, 1)
    stratum = codes.stratum_named(sample_round, "一般干部")
    batch = db.session.execute(
        db.select(CodeBatch).where(CodeBatch.stratum_id == stratum.id)
    ).scalar_one()
    codes.void_batch(sample_round, batch.id, actor="t", reason="遗失")
    db.session.commit()
    assert _stratum_figures(sample_round, "一般干部") == (1, 1)
