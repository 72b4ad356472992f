"""The sealed ballot box (SPEC §5.9–10): nothing readable before close, a clean close after.

Each test here would fail if the box leaked: a grade in clear in a vote's transaction (the
write-ahead log keeps it whole), a code row dated by its vote, a pre-close byte left in the
database's pages, a round closed without its 监票人's key, or a close that counts differently.
"""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from evaluation.codes import codes
from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Round, RoundState
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from evaluation.voting import box
from evaluation.voting.anonymity import scrub_dead_rows
from evaluation.voting.ballot import ballot_layout
from evaluation.voting.views import cast_ballot
from tests.helpers.databases import BACKENDS
from tests.helpers.voters import Voter, ballots_cast, full_answers, issue, voted
from tests.helpers.web import csrf_token

SQLITE, POSTGRESQL = BACKENDS


def close(rnd: Round, key: bytes | None = None) -> None:
    with write_transaction():
        lifecycle.close_round(rnd, actor="test", key=key)
    db.session.commit()
    scrub_dead_rows()


def open_scrutineer(rnd: Round) -> bytes:
    with write_transaction():
        key = lifecycle.prepare_scrutineer_key(rnd, actor="test")
        lifecycle.open_round(rnd, actor="test", key=key)
    return key


def _vote_all(
    rnd: Round, per_stratum: int, *, key_holder: bool = False
) -> tuple[list, bytes | None]:
    """Issue codes, open, and cast one ballot per code in a shuffled order; (cast, key)."""
    issued = [(s.id, c) for s in rnd.strata for c in issue(rnd, s.name, per_stratum)]
    key = open_scrutineer(rnd) if key_holder else None
    if not key_holder:
        lifecycle.open_round(rnd, actor="test")
    db.session.commit()
    random.Random(3).shuffle(issued)
    layout = ballot_layout(rnd)
    cast = []
    for index, (stratum_id, code) in enumerate(issued):
        grades = [q.choices[index % len(q.choices)].value for s in layout for q in s.questions]
        answers = [
            (s.subject_id, q.item, None if g == "abstain" else g)
            for (s, q), g in zip(((s, q) for s in layout for q in s.questions), grades, strict=True)
        ]
        cast_ballot(codes.code_digest(code), rnd, stratum_id, layout, answers)
        cast.append((stratum_id, code, answers))
    return cast, key


def _sealed_ballots(rnd: Round) -> list[bytes]:
    """The sealed ballots in the round's box (not its key row)."""
    table = box.box_table(rnd.id)
    query = db.select(table.c.sealed).where(table.c.digest != box.KEY_ROW)
    return [bytes(r) for r in db.session.execute(query).scalars()]


def _tally_of(cast: list) -> dict[tuple[int, str, int, str | None], int]:
    counts: dict[tuple[int, str, int, str | None], int] = {}
    for stratum_id, _code, answers in cast:
        for subject_id, item, grade in answers:
            key = (subject_id, item, stratum_id, grade)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _stored_tally() -> dict[tuple[int, str, int, str | None], int]:
    rows = db.session.execute(
        db.select(
            Answer.subject_id, Answer.item, Answer.stratum_id, Answer.grade, db.func.count()
        ).group_by(Answer.subject_id, Answer.item, Answer.stratum_id, Answer.grade)
    )
    return {(r[0], r[1], r[2], r[3]): int(r[4]) for r in rows}


# --- sealed while open ------------------------------------------------------------------------


def test_an_open_round_holds_only_sealed_ballots_of_one_length(app: Flask, sample_round) -> None:
    cast, _ = _vote_all(sample_round, 4)
    table = box.box_table(sample_round.id)
    rows = db.session.execute(db.select(table).where(table.c.digest != box.KEY_ROW)).all()
    assert len(rows) == len(cast) == ballots_cast(sample_round.id)
    # Abstentions and long grade keys alike: every sealed ballot has the same length.
    assert len({len(r.sealed) for r in rows}) == 1
    assert db.session.execute(db.select(db.func.count()).select_from(Ballot)).scalar() == 0
    assert db.session.execute(db.select(db.func.count()).select_from(Answer)).scalar() == 0
    # The key in the database is wrapped: it is not the private key, and it does not open a box.
    wrapped = box.wrapped_key(sample_round.id) or b""
    assert len(wrapped) > 32
    with pytest.raises(Exception):  # noqa: B017 - any failure to open is the point
        box.SealedBox(box.PrivateKey(wrapped[-32:])).decrypt(bytes(rows[0].sealed))


def test_close_opens_the_box_counts_every_ballot_and_destroys_box_and_key(
    app: Flask, sample_round
) -> None:
    cast, _ = _vote_all(sample_round, 4)
    close(sample_round)
    assert _stored_tally() == _tally_of(cast)
    assert not box.box_exists(sample_round.id)
    rnd = db.session.get_one(Round, sample_round.id)
    assert rnd.box_public_key  # the private key went with the box table
    assert rnd.sealed_result["ballots"] == len(cast)


def test_a_changed_server_key_refuses_the_close_and_changes_nothing(
    app: Flask, sample_round
) -> None:
    _vote_all(sample_round, 2)
    app.config["CODE_HASH_KEY"] = "another key"
    with pytest.raises(StateError, match="SECRET_KEY"):
        close(sample_round)
    db.session.rollback()
    del app.config["CODE_HASH_KEY"]
    rnd = db.session.get_one(Round, sample_round.id)
    assert rnd.state == RoundState.OPEN and box.box_exists(rnd.id)
    close(rnd)
    assert db.session.get_one(Round, rnd.id).state == RoundState.CLOSED


# --- 监票人 custody -----------------------------------------------------------------------------


def test_scrutineer_custody_needs_the_key_to_close(app: Flask, sample_round) -> None:
    cast, key = _vote_all(sample_round, 3, key_holder=True)
    assert key is not None
    rnd = db.session.get_one(Round, sample_round.id)
    assert box.wrapped_key(rnd.id) is None  # the server keeps nothing
    with pytest.raises(InputError, match="监票人"):
        close(rnd)
    db.session.rollback()
    other = bytes(box.PrivateKey.generate())
    with pytest.raises(InputError, match="不符"):
        close(db.session.get_one(Round, rnd.id), key=other)
    db.session.rollback()
    rnd = db.session.get_one(Round, rnd.id)
    assert rnd.state == RoundState.OPEN and ballots_cast(rnd.id) == len(cast)
    key_file = box.key_file_text(rnd, key)
    close(rnd, key=box.parse_key(key_file))
    assert _stored_tally() == _tally_of(cast)


def test_scrutineer_round_stops_voting_at_its_closing_time_but_waits_for_the_key(
    app: Flask, client, sample_round
) -> None:
    code = issue(sample_round, "班子成员", 2)
    open_scrutineer(sample_round)
    db.session.commit()
    assert voted(Voter(client).vote(code[0], full_answers(sample_round)))
    sample_round.closes_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    refused = Voter(app.test_client()).scan(code[1])
    assert refused.status_code == 403
    assert lifecycle.apply_due_schedules() == (0, [])  # no key: the schedule cannot close it
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN


def test_pages_hand_the_key_over_once_and_take_it_back_at_close(
    app: Flask, client, auth, users, sample_round
) -> None:
    codes_issued = issue(sample_round, "中层干部", 3)
    auth.login()
    detail = f"/rounds/{sample_round.id}"
    page = client.get(detail).get_data(as_text=True)
    assert "监票人保管" in page
    token = csrf_token(client, detail)
    opened = client.post(f"{detail}/open", data={"csrf_token": token, "custody": "scrutineer"})
    html = opened.get_data(as_text=True)
    assert opened.status_code == 200 and opened.headers["Cache-Control"] == "no-store"
    assert "此页面只显示一次" in html and "<svg" in html and 'download="' in html
    key_text = html.split('id="box-key" class="box-key-text">')[1].split("<")[0]
    # Not open yet: the round opens only once the key comes back (a lost page loses nothing).
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.DRAFT
    assert "公钥指纹" in client.get(detail).get_data(as_text=True)
    other_key = box.key_text(bytes(box.PrivateKey.generate()))
    for data in ({}, {"key_text": other_key}):
        token = csrf_token(client, detail)
        refused = client.post(
            f"{detail}/open", data={"csrf_token": token, "custody": "scrutineer", **data}
        )
        if not data:  # no key given: a new key pair (the old page's key is now worthless)
            assert refused.status_code == 200 and "此页面只显示一次" in refused.get_data(
                as_text=True
            )
            key_text = (
                refused.get_data(as_text=True).split('class="box-key-text">')[1].split("<")[0]
            )
        else:
            assert refused.status_code == 303
            assert "不符" in client.get(detail).get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get_one(Round, sample_round.id).state == RoundState.DRAFT
    token = csrf_token(client, detail)
    opened = client.post(
        f"{detail}/open", data={"csrf_token": token, "custody": "scrutineer", "key_text": key_text}
    )
    assert opened.status_code == 303
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN
    voter = Voter(app.test_client())
    assert voted(voter.vote(codes_issued[0], full_answers(sample_round)))
    # Without the key, and with a wrong one: refused, the page again, the round still open.
    for data in ({}, {"key_text": "A" * 43 + "="}):
        token = csrf_token(client, f"{detail}/close")
        refused = client.post(f"{detail}/close", data={"csrf_token": token, **data})
        assert refused.status_code == 400
        assert "密钥" in refused.get_data(as_text=True)
        assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN
    # The key file, uploaded: closed and counted.
    rnd = db.session.get_one(Round, sample_round.id)
    key_file = box.key_file_text(rnd, box.parse_key(key_text)).encode()
    token = csrf_token(client, f"{detail}/close")
    done = client.post(
        f"{detail}/close",
        data={"csrf_token": token, "key_file": (io.BytesIO(key_file), "key.txt")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.CLOSED
    assert db.session.execute(db.select(db.func.count()).select_from(Ballot)).scalar() == 1


def test_cli_writes_the_key_file_and_closes_only_with_it(
    app: Flask, runner, sample_round, tmp_path: Path
) -> None:
    issue(sample_round, "中层干部", 2)
    key_path = tmp_path / "key.txt"
    refused = runner.invoke(args=["round", "open", str(sample_round.id), "--custody", "监票人"])
    assert refused.exit_code != 0 and "--key-out" in refused.output
    opened = runner.invoke(
        args=[
            "round",
            "open",
            str(sample_round.id),
            "--custody",
            "监票人",
            "--key-out",
            str(key_path),
        ]
    )
    assert opened.exit_code == 0, opened.output
    assert key_path.read_text(encoding="utf-8").count(box.KEY_BEGIN) == 1
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    no_key = runner.invoke(args=["round", "close", str(sample_round.id)])
    assert no_key.exit_code != 0 and "监票人" in no_key.output and "Traceback" not in no_key.output
    closed = runner.invoke(args=["round", "close", str(sample_round.id), "--key", str(key_path)])
    assert closed.exit_code == 0, closed.output
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.CLOSED


# --- a clean close, checked in the database's own files ------------------------------------------


@pytest.mark.parametrize("db_url", [SQLITE], indirect=True)  # PostgreSQL's pages: below
def test_sqlite_file_keeps_no_sealed_byte_after_close(app: Flask, sample_round) -> None:
    _vote_all(sample_round, 6)
    sealed = _sealed_ballots(sample_round)
    db.session.commit()
    close(sample_round)
    path = Path(db.engine.url.database or "")
    data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert not [s for s in sealed if s[8:40] in data]


def _raw_pages(table: str) -> bytes:
    pages = db.session.execute(
        text("SELECT pg_relation_size(:t) / current_setting('block_size')::int"), {"t": table}
    ).scalar_one()
    chunks = [
        db.session.execute(text("SELECT get_raw_page(:t, :n)"), {"t": table, "n": n}).scalar_one()
        for n in range(int(pages))
    ]
    return b"".join(bytes(c) for c in chunks)


def _wal_bytes(start: str, end: str) -> bytes:
    """The write-ahead log between two positions, as written in the server's WAL files."""
    size = int(
        db.session.execute(
            text("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
        ).scalar_one()
    )
    first, offset = db.session.execute(
        text("SELECT * FROM pg_walfile_name_offset(:l)"), {"l": start}
    ).one()
    last, stop = db.session.execute(
        text("SELECT * FROM pg_walfile_name_offset(:l)"), {"l": end}
    ).one()
    files = (
        db.session.execute(
            text(
                "SELECT DISTINCT pg_walfile_name(start_lsn) f "
                "FROM pg_get_wal_records_info(:a, :b) ORDER BY f"
            ),
            {"a": start, "b": end},
        )
        .scalars()
        .all()
    )
    chunks = []
    for name in sorted({first, last, *files}):
        begin = offset if name == first else 0
        length = (stop if name == last else size) - begin
        chunks.append(
            db.session.execute(
                text("SELECT pg_read_binary_file('pg_wal/' || :f, :o, :n)"),
                {"f": name, "o": begin, "n": length},
            ).scalar_one()
        )
    return b"".join(bytes(c) for c in chunks)


@pytest.mark.parametrize("db_url", [POSTGRESQL], indirect=True)
def test_postgresql_wal_and_pages_never_link_a_code_to_grades(app: Flask, sample_round) -> None:
    """pg_walinspect and pageinspect, as an insider with the database (not the key) would."""
    db.session.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
    db.session.execute(text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
    db.session.commit()
    issued = [(s.id, c) for s in sample_round.strata for c in issue(sample_round, s.name, 8)]
    lifecycle.open_round(sample_round, actor="test")
    db.session.commit()
    start = db.session.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    db.session.commit()
    random.Random(5).shuffle(issued)
    layout = ballot_layout(sample_round)
    # Grades chosen so that each vote's grades are a distinctive string nobody else writes.
    grade_keys = {c.value for s in layout for q in s.questions for c in q.choices} - {"abstain"}
    for stratum_id, code in issued:
        answers = [(s.subject_id, q.item, q.choices[0].value) for s in layout for q in s.questions]
        cast_ballot(codes.code_digest(code), sample_round, stratum_id, layout, answers)
    db.session.commit()
    votes_end = db.session.execute(text("SELECT pg_current_wal_flush_lsn()")).scalar_one()
    db.session.commit()
    table = box.box_table(sample_round.id)
    sealed = _sealed_ballots(sample_round)
    box_xids = set(db.session.execute(text(f"SELECT xmin::text FROM {table.name}")).scalars())
    wrapped = box.wrapped_key(sample_round.id)
    assert wrapped
    db.session.commit()
    close(sample_round)
    end = db.session.execute(text("SELECT pg_current_wal_flush_lsn()")).scalar_one()
    db.session.commit()

    # 1. The votes' WAL: no grade in clear anywhere in it (records read back whole).
    wal = _wal_bytes(start, votes_end)
    assert sealed and sealed[0][8:40] in wal  # the reading works: the sealed ballots are there
    for grade in grade_keys:
        # As an answer row would hold it (a short varlena), or as a ballot's JSON would.
        assert bytes([(len(grade) + 1) * 2 + 1]) + grade.encode() not in wal
        assert f'"","{grade}"]'.encode() not in wal
    # 2. Which transactions touched which table, from the WAL's block references.
    files = dict(
        db.session.execute(
            text(
                "SELECT relfilenode::text, relname FROM pg_class "
                "WHERE relname IN ('code', 'ballot', 'answer', 'receipt')"
            )
        ).all()
    )
    touched: dict[str, set[str]] = {}
    for xid, refs in db.session.execute(
        text("SELECT xid::text, block_ref FROM pg_get_wal_records_info(:a, :b)"),
        {"a": start, "b": end},
    ):
        for node, name in files.items():
            if refs and f"/{node} " in refs + " ":
                touched.setdefault(name, set()).add(xid)
    grades_in_clear = touched.get("answer", set())
    assert len(grades_in_clear) == 1  # the close alone wrote grades in clear …
    assert touched.get("code", set()) & box_xids == set()  # … and no vote wrote a code row
    assert not grades_in_clear & box_xids
    # 3. The pages of every table (dead tuples included): no sealed ballot, no box table.
    tables = (
        db.session.execute(
            text(
                "SELECT relname FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            )
        )
        .scalars()
        .all()
    )
    assert table.name not in tables
    pages = b"".join(_raw_pages(t) for t in tables)
    assert not [s for s in sealed if s[8:40] in pages]
    assert wrapped[8:40] not in pages  # the wrapped key went with the box
    # 4. Every code row version, live or dead, carries the issue's or the close's xid.
    code_xids = {
        str(x)
        for blk in range(
            int(
                db.session.execute(
                    text("SELECT pg_relation_size('code') / current_setting('block_size')::int")
                ).scalar_one()
            )
        )
        for row in db.session.execute(
            text("SELECT t_xmin, t_xmax FROM heap_page_items(get_raw_page('code', :n))"), {"n": blk}
        )
        for x in row
        if x
    }
    assert not code_xids & box_xids


# --- a close racing everything else -------------------------------------------------------------


def test_reads_of_a_box_a_close_just_dropped_fall_back_to_what_the_close_wrote(
    app: Flask, sample_round
) -> None:
    """A scan, the turnout page or a receipt lookup that reached the box as the close dropped
    it answers from the close's rows instead of failing (it used to be a 500)."""
    cast, _ = _vote_all(sample_round, 2)
    digest = codes.code_digest(cast[0][1])
    receipt = db.session.execute(
        db.select(box.box_table(sample_round.id).c.receipt).where(
            box.box_table(sample_round.id).c.digest == digest
        )
    ).scalar_one()
    assert box.has_voted(sample_round.id, digest)
    close(sample_round)
    assert not box.box_exists(sample_round.id)
    db.session.execute(text("SELECT 1"))  # inside a transaction, as a page's reads are
    assert box.has_voted(sample_round.id, digest)  # from the code's final state
    assert sum(box.used_per_stratum(sample_round.id).values()) == len(cast)
    from evaluation.voting.views import receipt_round

    assert receipt_round(receipt) == sample_round.id  # the close moved it to the receipts


def test_two_closes_at_once_close_once_and_refuse_the_other_plainly(
    app: Flask, sample_round, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from evaluation.voting import anonymity

    _vote_all(sample_round, 2)
    round_id = sample_round.id
    db.session.commit()
    inside, release = threading.Event(), threading.Event()
    real_store = anonymity.store_in_random_order
    outcomes: dict[str, str] = {}

    def slow_store(*args, **kwargs):  # type: ignore[no-untyped-def]
        inside.set()
        release.wait(timeout=60)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "store_in_random_order", slow_store)

    def closer(name: str) -> None:
        with app.app_context():
            try:
                with write_transaction():
                    lifecycle.close_round(db.session.get_one(Round, round_id), actor=name)
                outcomes[name] = "closed"
            except StateError as exc:
                outcomes[name] = exc.message
            finally:
                db.session.remove()

    first = threading.Thread(target=closer, args=("first",))
    first.start()
    assert inside.wait(timeout=60)
    monkeypatch.setattr(lifecycle, "store_in_random_order", real_store)
    second = threading.Thread(target=closer, args=("second",))
    second.start()
    release.set()
    first.join(timeout=120)
    second.join(timeout=120)
    assert outcomes["first"] == "closed"
    assert "结束" in outcomes["second"] and outcomes["second"] != "closed"
    db.session.expire_all()
    assert db.session.get_one(Round, round_id).state == RoundState.CLOSED


def test_tick_closes_each_round_on_its_own_and_reports_the_one_it_cannot(
    app: Flask, runner, sample_round
) -> None:
    from evaluation.rounds.round_file import import_round, parse_round_text
    from tests.helpers.web import SAMPLE_ROUND

    other = import_round({**parse_round_text(SAMPLE_ROUND), "title": "另一个测评"}, actor="test")
    db.session.commit()
    for rnd in (sample_round, other):
        issue(rnd, "中层干部", 2)
        lifecycle.open_round(rnd, actor="test")
        rnd.closes_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    table = box.box_table(sample_round.id)
    with write_transaction():  # its wrapped key no longer opens
        db.session.execute(
            table.update().where(table.c.digest == box.KEY_ROW).values(sealed=bytes(72))
        )
    result = runner.invoke(args=["round", "tick"])
    assert result.exit_code == 1
    assert "按计划变更了 1 个测评活动" in result.output
    assert f"测评活动 {sample_round.id}" in result.output and "Traceback" not in result.output
    db.session.expire_all()
    assert db.session.get_one(Round, other.id).state == RoundState.CLOSED
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN


def test_voiding_a_batch_while_open_marks_voted_and_unvoted_codes_alike(
    app: Flask, client, sample_round
) -> None:
    """No row version tells which codes of a voided batch had voted by then (SPEC §5.10)."""
    from evaluation.models import Code, CodeBatch, CodeState

    lost = issue(sample_round, "一般干部", 6)
    lifecycle.open_round(sample_round, actor="test")
    db.session.commit()
    assert voted(Voter(client).vote(lost[0], full_answers(sample_round)))
    batch = db.session.execute(db.select(CodeBatch)).scalar_one()
    codes.void_batch(sample_round, batch.id, actor="t", reason="遗失")
    db.session.commit()
    states = db.session.execute(db.select(Code.state).where(Code.batch_id == batch.id)).scalars()
    assert set(states) == {CodeState.VOID}  # the one that voted too
    assert client.get(f"/v/{lost[0]}").status_code == 409  # its holder still learns it counted
    assert client.get(f"/v/{lost[1]}").status_code == 404
    close(sample_round)
    final = {
        c.digest: c.state
        for c in db.session.execute(
            db.select(Code).where(Code.round_id == sample_round.id)
        ).scalars()
    }
    assert final.pop(codes.code_digest(lost[0])) == CodeState.USED
    assert set(final.values()) == {CodeState.VOID}
    assert db.session.get_one(Round, sample_round.id).sealed_result["ballots"] == 1
