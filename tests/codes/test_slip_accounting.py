"""Slip accounting (issue 16.3): serials on every slip, one slip voided by its serial and
replaced, the 核对 table per stratum, confirmation before issuing beyond 应参加, batches
numbered per round and shown at once after an issue.

Everything goes through the organiser's pages; slips are read back from their PDF with
``pdftotext`` (each slip cut out of its page, so a serial is paired with the code beside it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import html

from evaluation.codes import codes, reconcile
from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Code, CodeBatch, CodeState, PaperIssue, Round, RoundState
from evaluation.paper.entry import Entry, create_batch, entry_questions, save_entry
from evaluation.rounds import lifecycle
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.transactions import write_transaction
from tests.helpers.slips import ReconcileRow, read_slips, reconcile_rows
from tests.helpers.voters import Voter, full_answers, voted
from tests.helpers.web import SAMPLE_ROUND, AuthActions, csrf_token

A, B, C = "班子成员", "中层干部", "一般干部"  # serial letters A, B, C; 应参加 7, 20, 40


# --- driving the codes page --------------------------------------------------------------------


def _page(client: FlaskClient, rnd: Round, query: str = "") -> str:
    response = client.get(f"/rounds/{rnd.id}/codes{query}")
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def _token(client: FlaskClient, rnd: Round) -> str:
    return csrf_token(client, f"/rounds/{rnd.id}/codes")


def _issue(client: FlaskClient, rnd: Round, stratum: str, count: int, **extra: str) -> Any:
    data = {"csrf_token": _token(client, rnd), "stratum": str(_stratum(rnd, stratum).id)}
    data["count"] = str(count)
    data.setdefault("format", "pdf")
    return client.post(f"/rounds/{rnd.id}/codes/issue", data={**data, **extra})


def _slips(
    client: FlaskClient, rnd: Round, stratum: str, count: int, tmp_path: Path, **extra: str
) -> dict[str, str]:
    """Issue through the page; the slips read back from the PDF, serial → code."""
    response = _issue(client, rnd, stratum, count, **extra)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "application/pdf"
    assert "X-Confirm-Needed" not in response.headers
    # The response names its batch, for the page shown next to mark it (codes.js).
    newest = db.session.execute(db.select(db.func.max(CodeBatch.id))).scalar()
    assert response.headers["X-Batch-Id"] == str(newest)
    pairs = read_slips(response.data, tmp_path, f"slips-{len(list(tmp_path.iterdir()))}.pdf")
    assert len(pairs) == count
    return dict(pairs)


def _void(client: FlaskClient, rnd: Round, serial: str, **extra: str) -> Any:
    data = {"csrf_token": _token(client, rnd), "serial": serial, "reason": "遗失"}
    return client.post(f"/rounds/{rnd.id}/codes/void-slip", data={**data, **extra})


def _rows(client: FlaskClient, rnd: Round) -> dict[str, ReconcileRow]:
    return reconcile_rows(_page(client, rnd))


def _figures(row: ReconcileRow) -> tuple[int, ...]:
    f = row.figures
    keys = ("issued", "reissued", "voided", "phone", "paper_valid", "paper_invalid", "unreturned")
    return tuple(f[k] for k in keys)


def _open(rnd: Round) -> None:
    lifecycle.open_round(rnd, actor="test")
    db.session.commit()


def _close(rnd: Round) -> None:
    with write_transaction():
        lifecycle.close_round(db.session.get_one(Round, rnd.id), actor="test")


def _vote(app: Flask, rnd: Round, code: str, pick: int = 0) -> Any:
    """A voter's own phone (its own client): scan the code, submit a full ballot."""
    voter = Voter(app.test_client())
    page = voter.scan(code)
    if page.status_code != 200:
        return page
    return voter.submit(full_answers(rnd, pick))


def _stratum(rnd: Round, name: str) -> Any:
    return next(s for s in rnd.strata if s.name == name)


def _enter_paper(rnd: Round, stratum_name: str, marks: list[str]) -> None:
    """A stack entered alike by two clerks: "" = a valid ballot (first grade everywhere), "w" =
    方框外有标记 (废票)."""
    stratum = _stratum(rnd, stratum_name)
    questions = entry_questions(rnd, stratum.id)
    batch = create_batch(rnd, stratum, len(marks), actor="clerk1")
    for clerk in ("clerk1", "clerk2"):
        for position, mark in enumerate(marks, 1):
            strokes = tuple("" if mark else "1" for _ in questions)
            save_entry(rnd, batch, clerk, position, Entry(mark, strokes), actor=clerk)
    db.session.commit()


def _audit(action: str) -> list[AuditEntry]:
    db.session.expire_all()
    query = db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    return list(db.session.execute(query).scalars())


def _error(response: Any) -> str:
    return " ".join(response.get_data(as_text=True).split())


# --- serials -----------------------------------------------------------------------------------


def test_normalise_serial_reads_what_people_type() -> None:
    for typed in ("a17", "A17", "A-0017", " a-17 ", "a0017", "Ａ－００１７", "ａ１７", "A 0017"):
        assert codes.normalise_serial(typed) == "A-0017", typed
    assert codes.normalise_serial("ab3") == "AB-0003"
    for bad in ("", "17", "A", "A-17-3", "17A", "第17张", "A-1７x"):
        assert codes.normalise_serial(bad) == "", bad


def test_slips_carry_serials_continuing_per_stratum(
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    first = _slips(client, sample_round, A, 3, tmp_path)
    middle = _slips(client, sample_round, B, 2, tmp_path)
    second = _slips(client, sample_round, A, 2, tmp_path)
    assert list(first) == ["A-0001", "A-0002", "A-0003"]
    assert list(middle) == ["B-0001", "B-0002"]
    assert list(second) == ["A-0004", "A-0005"]  # on from the stratum's last slip
    # The serial printed beside a code is the one the server voids it by.
    for serial, code in {**first, **middle, **second}.items():
        row = db.session.execute(
            db.select(Code).where(Code.digest == codes.code_digest(code))
        ).scalar_one()
        assert row.serial_tag == codes.serial_tag(sample_round.id, serial)
    # Nor the serial nor the code is stored in clear (only the keyed tag).
    for row in db.session.execute(db.select(Code)).scalars():
        assert not re.fullmatch(r"[A-Z]+-\d{4}", row.serial_tag or "")
    page = _page(client, sample_round)
    for number, serials in enumerate(
        ("A-0001 至 A-0003", "B-0001 至 B-0002", "A-0004 至 A-0005"), 1
    ):
        assert f"第 {number} 批" in page and serials in page
    issued = [e.details["serials"] for e in _audit("codes.issue")]
    assert issued == ["A-0001 至 A-0003", "B-0001 至 B-0002", "A-0004 至 A-0005"]


# --- voiding one slip --------------------------------------------------------------------------


def test_void_one_slip_by_its_serial_stops_only_that_code(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    slips = _slips(client, sample_round, A, 20, tmp_path, confirm="yes")  # 应参加 is 7
    assert list(slips)[16] == "A-0017"
    _open(sample_round)
    response = _void(client, sample_round, "a17")
    assert response.status_code == 302 and response.headers["Location"].endswith("#reconcile")
    assert "编号 A-0017 的测评码已作废，不能再投票" in _page(client, sample_round)
    refused = _vote(app, sample_round, slips["A-0017"])
    assert refused.status_code == 404
    assert "测评码不存在或已作废" in refused.get_data(as_text=True)
    for serial in ("A-0016", "A-0018", "A-0001", "A-0020"):
        assert voted(_vote(app, sample_round, slips[serial])), serial
    (entry,) = _audit("codes.void_slip")
    assert entry.actor == "organiser"
    assert entry.details == {"round_id": sample_round.id, "serial": "A-0017", "reason": "遗失"}
    assert slips["A-0017"] not in str(entry.details)

    # Voiding it again, however typed; an unknown or malformed serial; no reason.
    for typed in ("A-0017", "Ａ－００１７", "a017"):
        again = _void(client, sample_round, typed)
        assert again.status_code == 400
        assert "编号 A-0017 的测评码已经作废" in _error(again)
    for typed, status, message in (
        ("A-0999", 404, "本测评活动没有编号为 A-0999 的测评码条"),
        ("D-0001", 404, "本测评活动没有编号为 D-0001 的测评码条"),
        ("B-0001", 404, "本测评活动没有编号为 B-0001 的测评码条"),
        ("第17张", 400, "“第17张”不是测评码条上的编号（形如 A-0017）"),
    ):
        refused = _void(client, sample_round, typed)
        assert refused.status_code == status, typed
        assert message in _error(refused)
    no_reason = _void(client, sample_round, "A-0002", reason="  ")
    assert no_reason.status_code == 400 and "作废测评码必须填写原因" in _error(no_reason)
    assert len(_audit("codes.void_slip")) == 1
    assert voted(_vote(app, sample_round, slips["A-0002"]))

    # Only organisers and admins of the round's unit void slips.
    auth.logout()
    for who, status in (("viewer", 403), ("other", 404)):
        auth.login(who)
        token = csrf_token(client, "/")
        attempt = client.post(
            f"/rounds/{sample_round.id}/codes/void-slip",
            data={"csrf_token": token, "serial": "A-0003", "reason": "遗失"},
        )
        assert attempt.status_code == status, who
        auth.logout()
    assert voted(_vote(app, sample_round, slips["A-0003"]))

    # After the close no slip can be voided any more.
    _close(sample_round)
    auth.login("organiser")
    token = csrf_token(client, "/")
    late = client.post(
        f"/rounds/{sample_round.id}/codes/void-slip",
        data={"csrf_token": token, "serial": "A-0004", "reason": "遗失"},
    )
    assert late.status_code == 409 and "不能作废测评码" in _error(late)


def test_void_with_reissue_answers_with_the_replacement_slip(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    slips = _slips(client, sample_round, C, 20, tmp_path)
    _open(sample_round)
    response = _void(client, sample_round, "c17", reissue="yes")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert "%E6%9B%BF%E6%8D%A2C-0017" in response.headers["Content-Disposition"]  # 替换C-0017
    ((serial, code),) = read_slips(response.data, tmp_path, "replacement.pdf")
    assert serial == "C-0021"  # on from the stratum's last slip
    assert code not in slips.values()
    assert _vote(app, sample_round, slips["C-0017"]).status_code == 404
    assert voted(_vote(app, sample_round, code))
    batch = db.session.execute(db.select(CodeBatch).order_by(CodeBatch.id.desc())).scalars().first()
    assert batch is not None and (batch.count, batch.replaces, batch.void) == (1, "C-0017", False)
    assert response.headers["X-Batch-Id"] == str(batch.id)
    page = _page(client, sample_round)
    row = html.fromstring(page).xpath("//tr[@id='batch-2']")[0].text_content()
    assert "第 2 批" in row and "C-0021" in row and "补发，替换 C-0017" in row
    rows = reconcile_rows(page)
    assert rows[C].figures["reissued"] == 1 and rows[C].figures["voided"] == 1
    assert rows[C].figures["issued"] == 21 and rows[C].balances
    reissue = _audit("codes.issue")[-1]
    assert reissue.details["replaces"] == "C-0017" and reissue.details["serials"] == "C-0021"

    # CSV when the round is distributed: one row, the code and its link.
    csv_response = _void(client, sample_round, "C-0018", reissue="yes", format="csv")
    assert csv_response.mimetype == "text/csv"
    lines = csv_response.get_data(as_text=True).splitlines()
    assert lines[0] == "code,url" and len(lines) == 2
    assert voted(_vote(app, sample_round, lines[1].split(",")[0]))
    assert _vote(app, sample_round, slips["C-0018"]).status_code == 404


# --- the 核对 table ----------------------------------------------------------------------------


def test_reconciliation_balances_in_draft_open_and_closed(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    a = _slips(client, sample_round, A, 5, tmp_path)
    b = _slips(client, sample_round, B, 6, tmp_path)
    c = _slips(client, sample_round, C, 3, tmp_path)
    printed = client.post(
        f"/rounds/{sample_round.id}/codes/paper-ballots",
        data={"csrf_token": _token(client, sample_round), "stratum": _stratum(sample_round, B).id}
        | {"count": "4"},
    )
    assert printed.mimetype == "application/pdf"

    def expect(rows: dict[str, ReconcileRow], figures: dict[str, tuple[int, ...]]) -> None:
        assert {name: _figures(rows[name]) for name in figures} == figures
        for row in rows.values():
            assert row.balances, row
            assert row.status == "平衡" and "balanced" in row.classes

    #      发出 补发 作废 手机 纸有效 纸废 未交回
    expect(
        _rows(client, sample_round),
        {A: (5, 0, 0, 0, 0, 0, 5), B: (10, 0, 0, 0, 0, 0, 10), C: (3, 0, 0, 0, 0, 0, 3)},
    )
    _open(sample_round)
    for serial in ("A-0001", "A-0002", "A-0003"):
        assert voted(_vote(app, sample_round, a[serial]))
    assert _void(client, sample_round, "A-0002").status_code == 302  # it had voted
    replacement = _void(client, sample_round, "A-0005", reissue="yes")
    ((_, code),) = read_slips(replacement.data, tmp_path, "a6.pdf")
    assert voted(_vote(app, sample_round, code))
    for pick, serial in enumerate(("B-0001", "B-0002")):
        assert voted(_vote(app, sample_round, b[serial], pick))
    _enter_paper(sample_round, B, ["", "", "w"])
    assert _void(client, sample_round, "C-0003").status_code == 302
    assert c  # C-0001 and C-0002 stay unreturned
    # Open: the voided slip that voted counts under 作废 and 手机投票 alike (see below).
    expect(
        _rows(client, sample_round),
        {A: (6, 1, 2, 4, 0, 0, 0), B: (10, 0, 0, 2, 2, 1, 5), C: (3, 0, 1, 0, 0, 0, 2)},
    )
    assert reconcile.reconcile(db.session.get_one(Round, sample_round.id)).may_close
    _close(sample_round)
    # Closed: exact. A-0002 voted, so it is used, not void; A-0004 is unreturned.
    rows = _rows(client, sample_round)
    expect(
        rows,
        {A: (6, 1, 1, 4, 0, 0, 1), B: (10, 0, 0, 2, 2, 1, 5), C: (3, 0, 1, 0, 0, 0, 2)},
    )
    page = _page(client, sample_round)
    assert "核对不平" not in page and "不能再发放或作废测评码" in page


def test_voiding_a_slip_that_voted_and_one_that_did_not_change_the_figures_alike(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    """While open no figure on any page may tell whether a voided slip had voted (SPEC §5.8)."""
    auth.login("organiser")
    slips = _slips(client, sample_round, B, 8, tmp_path)
    _open(sample_round)
    for serial in ("B-0001", "B-0003", "B-0004"):
        assert voted(_vote(app, sample_round, slips[serial]))

    def snapshot() -> tuple[int, ...]:
        row = _rows(client, sample_round)[B]
        turnout = client.get(f"/rounds/{sample_round.id}/turnout.json").get_json()
        (stratum,) = [s for s in turnout["strata"] if s["name"] == B]
        batches = client.get(f"/rounds/{sample_round.id}/codes/batches.json").get_json()
        tree = html.fromstring(_page(client, sample_round))
        (codes_row,) = [
            tr
            for tr in tree.xpath("//table[contains(@class,'codes-table')]//tbody/tr")
            if tr.xpath("./td")[0].text_content().strip() == B
        ]
        shown = [int(td.text_content()) for td in codes_row.xpath("./td[@class='num']")]
        counts = reconcile.reconcile(db.session.get_one(Round, sample_round.id)).strata[1]
        return (
            *_figures(row),
            int(row.balances),
            stratum["issued"],
            stratum["used"],
            turnout["issued"],
            turnout["used"],
            batches["batches"],
            *shown,
            counts.issued,
            counts.accounted,
            counts.voided,
            counts.phone,
            counts.unreturned,
        )

    before = snapshot()
    assert _void(client, sample_round, "B-0001").status_code == 302  # had voted
    after_voted = snapshot()
    assert _void(client, sample_round, "B-0002").status_code == 302  # had not
    after_unvoted = snapshot()
    change_voted = [y - x for x, y in zip(before, after_voted, strict=True)]
    change_unvoted = [y - x for x, y in zip(after_voted, after_unvoted, strict=True)]
    assert change_voted == change_unvoted
    assert any(change_voted)  # the void shows: one more voided, one fewer unreturned
    # The rows of both are alike too.
    states = {
        serial: db.session.execute(
            db.select(Code.state).where(Code.digest == codes.code_digest(slips[serial]))
        ).scalar_one()
        for serial in ("B-0001", "B-0002")
    }
    assert states == {"B-0001": CodeState.VOID, "B-0002": CodeState.VOID}
    assert [e.details["serial"] for e in _audit("codes.void_slip")] == ["B-0001", "B-0002"]
    # After the close the figures are exact: B-0001's ballot stands and counts as used.
    _close(sample_round)
    row = _rows(client, sample_round)[B]
    assert _figures(row) == (8, 0, 1, 3, 0, 0, 4) and row.balances


def test_paper_entered_beyond_printed_stops_the_close_until_a_reason_is_recorded(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    _slips(client, sample_round, B, 3, tmp_path)
    _open(sample_round)
    # Two ballots of a stratum none were printed for (copied in the hall, say).
    _enter_paper(sample_round, B, ["", "w"])
    rows = _rows(client, sample_round)
    assert _figures(rows[B]) == (3, 0, 0, 0, 1, 1, 3)
    row = rows[B]
    assert "unbalanced" in row.classes
    assert row.status == "不平：录入的纸质票（2 张）比印制的（0 张）多 2 张"
    assert "warn-text" in row.status_classes  # shown in red
    css = (Path(app.root_path).parent / "evaluation" / "static" / "app.css").read_text()
    assert re.search(r"\.warn-text\s*\{\s*color:\s*var\(--bad\)", css)
    assert "--bad: #b3261e" in css
    assert rows[A].status == "平衡"
    page = _page(client, sample_round)
    assert "核对不平，结束测评前须查明原因并填写核对说明" in page

    def close() -> Any:
        token = csrf_token(client, f"/rounds/{sample_round.id}/close")
        return client.post(f"/rounds/{sample_round.id}/close", data={"csrf_token": token})

    refused = close()
    assert refused.status_code == 400
    assert "测评码和纸质票的核对不平（中层干部：录入的纸质票（2 张）比印制的（0 张）多 2 张）" in (
        _error(refused)
    )
    db.session.expire_all()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN

    token = _token(client, sample_round)
    url = f"/rounds/{sample_round.id}/codes/reconciliation-note"
    empty = client.post(url, data={"csrf_token": token, "note": " "})
    assert empty.status_code == 400 and "请填写核对说明" in _error(empty)
    too_long = client.post(url, data={"csrf_token": token, "note": "长" * 1001})
    assert too_long.status_code == 400 and "核对说明最多 1000 字" in _error(too_long)
    note = "会场复印了两张中层干部选票，经监票人确认有效"
    recorded = client.post(url, data={"csrf_token": token, "note": note})
    assert recorded.status_code == 302 and recorded.headers["Location"].endswith("#reconcile")
    (entry,) = _audit("round.reconciliation_note")
    assert entry.actor == "organiser"
    assert entry.details == {"round_id": sample_round.id, "note": note}
    page = _page(client, sample_round)
    assert f"已记录核对说明：{note}" in page
    assert _rows(client, sample_round)[B].status.startswith("不平")  # still shown as it is

    done = close()
    assert done.status_code == 303, _error(done)[:2000]
    db.session.expire_all()
    closed = db.session.get_one(Round, sample_round.id)
    assert closed.state == RoundState.CLOSED and closed.reconciliation_note == note
    page = _page(client, sample_round)
    assert f"已记录核对说明：{note}" in page
    assert 'action="' + url not in page  # nothing more to record once closed


def test_a_stack_still_being_entered_stops_the_close(
    app: Flask, sample_round: Round, users: dict[str, object]
) -> None:
    _open(sample_round)
    create_batch(sample_round, _stratum(sample_round, C), 2, actor="clerk1")
    db.session.commit()
    with pytest.raises(StateError, match="还有 1 批纸质票没有核对入箱"):
        _close(sample_round)
    db.session.rollback()
    assert db.session.get_one(Round, sample_round.id).state == RoundState.OPEN


# --- issuing beyond 应参加 ---------------------------------------------------------------------


def _confirmation(response: Any) -> tuple[str, dict[str, str]]:
    """The confirmation page: its message and the fields its form posts again."""
    assert response.status_code == 200
    assert response.headers.get("X-Confirm-Needed") == "1"
    assert response.mimetype == "text/html"
    tree = html.fromstring(response.get_data(as_text=True))
    message = " ".join(
        tree.xpath("//div[contains(@class,'flash-warning')]")[0].text_content().split()
    )
    (form,) = tree.xpath("//form[@class='issue-form']")
    fields = {i.get("name"): i.get("value") for i in form.xpath(".//input[@type='hidden']")}
    return message, {**fields, "action": form.get("action")}


def test_issuing_beyond_planned_asks_first_with_the_effect_on_turnout(
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    assert list(_slips(client, sample_round, A, 7, tmp_path)) == [f"A-{i:04d}" for i in range(1, 8)]

    def count_codes() -> int:
        return int(db.session.execute(db.select(db.func.count()).select_from(Code)).scalar_one())

    message, fields = _confirmation(_issue(client, sample_round, A, 3))
    assert message == (
        "“班子成员”应参加 7 人，已发出 7 份，再发出 3 份后共 10 份，比应参加人数多 3 份。"
        "参测率按发出的份数计算：即使应参加的 7 人全部投票，参测率最高也只有 70.00%（7/10）。"
        "多出的测评码或选票请在不用时作废。"
    )
    assert "无效" not in message  # 70 % still reaches 2/3
    assert count_codes() == 7 and len(_audit("codes.issue")) == 1
    assert fields["action"] == f"/rounds/{sample_round.id}/codes/issue"
    assert (fields["stratum"], fields["count"], fields["format"], fields["confirm"]) == (
        str(_stratum(sample_round, A).id),
        "3",
        "pdf",
        "yes",
    )
    # The confirmation's form, posted as it stands, issues.
    posted = {k: v for k, v in fields.items() if k != "action"}
    response = client.post(fields["action"], data=posted)
    assert response.mimetype == "application/pdf"
    assert [s for s, _ in read_slips(response.data, tmp_path, "more.pdf")] == [
        "A-0008",
        "A-0009",
        "A-0010",
    ]
    assert count_codes() == 10

    message, _ = _confirmation(_issue(client, sample_round, A, 1))
    assert "已发出 10 份，再发出 1 份后共 11 份，比应参加人数多 4 份" in message
    assert "参测率最高也只有 63.64%（7/11），低于最低参测率 66.67%，测评将无效" in message
    assert count_codes() == 10

    # Paper ballots count as issued too, and ask the same way.
    middle = _stratum(sample_round, B)
    _slips(client, sample_round, B, 15, tmp_path)
    url = f"/rounds/{sample_round.id}/codes/paper-ballots"
    data = {"csrf_token": _token(client, sample_round), "stratum": str(middle.id), "count": "6"}
    message, fields = _confirmation(client.post(url, data=data))
    assert "“中层干部”应参加 20 人，已发出 15 份，再发出 6 份后共 21 份" in message
    assert "95.24%（20/21）" in message and "无效" not in message
    assert fields["action"] == url and fields["stratum"] == str(middle.id)
    assert db.session.execute(db.select(db.func.count()).select_from(PaperIssue)).scalar() == 0
    printed = client.post(url, data={**data, "confirm": "yes"})
    assert printed.mimetype == "application/pdf"
    db.session.expire_all()
    assert _stratum(db.session.get_one(Round, sample_round.id), B).paper["printed"] == 6
    # Within 应参加 nothing is asked.
    within = client.post(url, data={**data, "stratum": str(_stratum(sample_round, C).id)})
    assert within.mimetype == "application/pdf" and "X-Confirm-Needed" not in within.headers


# --- batches -----------------------------------------------------------------------------------


def test_batches_are_numbered_per_round_and_the_new_one_is_shown_at_once(
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    auth.login("organiser")
    _slips(client, sample_round, A, 2, tmp_path)
    _slips(client, sample_round, B, 2, tmp_path)
    second = import_round(
        parse_round_text(SAMPLE_ROUND.replace("2026年度", "2026年第二次")), actor="test"
    )
    db.session.commit()
    url = f"/rounds/{second.id}/codes/batches.json"
    empty = client.get(url)
    assert empty.get_json() == {"batches": 0, "last": None, "prints": 0}
    assert empty.headers["Cache-Control"] == "no-store"
    assert "还没有发放测评码" in _page(client, second)
    first_of_second = _issue(client, second, A, 3)
    assert "%E7%AC%AC1%E6%89%B9" in first_of_second.headers["Content-Disposition"]  # 第1批
    pairs = read_slips(first_of_second.data, tmp_path, "second.pdf")
    assert [serial for serial, _ in pairs] == ["A-0001", "A-0002", "A-0003"]
    batch_id = db.session.execute(
        db.select(CodeBatch.id).where(CodeBatch.round_id == second.id)
    ).scalar_one()
    assert batch_id == 3
    assert client.get(url).get_json() == {"batches": 1, "last": batch_id, "prints": 0}
    page = _page(client, second)
    assert "第 1 批" in page and "第 3 批" not in page and "刚发放" not in page
    marked = html.fromstring(_page(client, second, f"?new={batch_id}"))
    (row,) = marked.xpath("//tr[contains(@class,'just-issued')]")
    assert row.get("id") == "batch-1"
    assert "第 1 批" in row.text_content() and "刚发放" in row.text_content()
    # A batch of another round is not marked here.
    assert "刚发放" not in _page(client, second, "?new=1")
    # The count field does not invite a second issue of the same size.
    form = html.fromstring(_page(client, second)).xpath(
        f"//input[@id='count-{second.strata[0].id}']"
    )[0]
    assert form.get("value") == "4"  # 应参加 7, 3 issued
    _slips(client, second, A, 4, tmp_path)
    form = html.fromstring(_page(client, second)).xpath(
        f"//input[@id='count-{second.strata[0].id}']"
    )[0]
    assert form.get("value") == ""  # all 7 issued: nothing is suggested
    printed = client.post(
        f"/rounds/{second.id}/codes/paper-ballots",
        data={"csrf_token": _token(client, second), "stratum": str(second.strata[2].id)}
        | {"count": "2"},
    )
    assert printed.mimetype == "application/pdf"
    assert client.get(url).get_json() == {"batches": 2, "last": batch_id + 1, "prints": 1}
    auth.logout()
    for who, status in (("viewer", 403), ("other", 404)):
        auth.login(who)
        assert client.get(url).status_code == status
        auth.logout()


# --- the page in every state -------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "open", "closed", "void"])
def test_codes_page_renders_in_every_state(
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
    state: str,
) -> None:
    auth.login("organiser")
    _slips(client, sample_round, A, 2, tmp_path)
    printed = client.post(
        f"/rounds/{sample_round.id}/codes/paper-ballots",
        data={"csrf_token": _token(client, sample_round), "stratum": str(sample_round.strata[1].id)}
        | {"count": "2"},
    )
    assert printed.mimetype == "application/pdf", _error(printed)[-3000:]
    if state != "draft":
        _open(sample_round)
        assert _void(client, sample_round, "A-0002", reissue="yes").status_code == 200
    if state == "closed":
        _close(sample_round)
    if state == "void":
        with write_transaction():
            lifecycle.void_round(
                db.session.get_one(Round, sample_round.id), actor="test", reason="测试"
            )
    page = _page(client, sample_round, "?new=1")
    tree = html.fromstring(page)
    rows = reconcile_rows(page)
    assert set(rows) == {A, B, C} and all(r.balances and r.status == "平衡" for r in rows.values())
    assert tree.xpath("//tr[contains(@class,'just-issued')]")
    editable = state in ("draft", "open")
    assert bool(tree.xpath("//form[contains(@class,'void-slip-form')]")) == editable
    assert bool(tree.xpath("//form[contains(@class,'paper-form')]")) == editable
    assert bool(tree.xpath("//form[contains(@class,'void-form')]")) == editable
    assert "重新下载（同样的编号）" in page and "B-P0001 至 B-P0002" in page
    if state != "draft":
        assert "补发，替换 A-0002" in page
    if not editable:
        assert "不能再发放或作废测评码" in page and "不能再打印纸质选票" in page


def test_the_command_line_prints_serials_too(
    app: Flask, runner: Any, sample_round: Round, tmp_path: Path
) -> None:
    codes.issue_batch(sample_round, _stratum(sample_round, C), 2, actor="test")
    db.session.commit()
    out_pdf = tmp_path / "cli.pdf"
    result = runner.invoke(
        args=["codes", "issue", str(sample_round.id), "--stratum", C, "--count", "3"]
        + ["--csv", str(tmp_path / "cli.csv"), "--pdf", str(out_pdf)]
    )
    assert result.exit_code == 0, result.output
    assert "第 2 批，编号 C-0003 至 C-0005" in result.output
    pairs = read_slips(out_pdf.read_bytes(), tmp_path, "cli-read.pdf")
    assert [serial for serial, _ in pairs] == ["C-0003", "C-0004", "C-0005"]
    for serial, code in pairs:
        row = db.session.execute(
            db.select(Code).where(Code.digest == codes.code_digest(code))
        ).scalar_one()
        assert row.serial_tag == codes.serial_tag(sample_round.id, serial)
