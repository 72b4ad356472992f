"""Voting pages (SPEC §6): scan, ballot, cast, refusals, receipts, headers; organiser pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Answer, Ballot, Code, CodeState, Receipt, RoundState
from evaluation.rounds import lifecycle, state
from evaluation.transactions import write_transaction
from evaluation.voting.ballot import ABSTAIN, ballot_layout, field_name
from tests.helpers.voters import (
    Voter,
    ballots_cast,
    code_state,
    full_answers,
    issue,
    open_with_codes,
    receipt_of,
    receipts_kept,
    token_of,
    voted,
)
from tests.helpers.web import csrf_token


def count(model) -> int:  # type: ignore[no-untyped-def]
    return int(db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one())


def close(rnd) -> None:  # type: ignore[no-untyped-def]
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()


# --- GET /v/<code> -----------------------------------------------------------------------------


def test_scan_keeps_code_in_session_and_never_uses_it(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    for _ in range(3):  # link previewers and chat apps open the URL on their own
        response = client.get(f"/v/{code}")
        assert response.status_code == 302
        assert response.headers["Location"] == "/ballot"
    assert client.get("/ballot").status_code == 200
    assert code_state(code) == CodeState.UNUSED
    assert ballots_cast(sample_round.id) == 0


def test_typed_code_is_case_dash_and_space_insensitive(client, sample_round) -> None:
    code = open_with_codes(sample_round)["中层干部"][1]
    token = csrf_token(client, "/v")
    typed = " " + code.replace("-", " ").lower() + " "
    response = client.post("/v", data={"code": typed, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/ballot"
    page = client.get("/ballot").get_data(as_text=True)
    assert "中层干部" in page


def test_a_mistyped_code_stays_in_the_box_to_be_corrected(client, sample_round) -> None:
    code = open_with_codes(sample_round)["中层干部"][0]
    wrong = code[:-1] + ("2" if code[-1] != "2" else "3")
    token = csrf_token(client, "/v")
    response = client.post("/v", data={"code": wrong, "csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "测评码不存在或已作废" in page
    assert f'value="{wrong}"' in page and "autofocus" in page
    assert response.headers["Cache-Control"].startswith("no-store")
    # ... and corrected, it goes on to the ballot
    fixed = client.post("/v", data={"code": code, "csrf_token": token})
    assert fixed.status_code == 302 and fixed.headers["Location"] == "/ballot"
    # A blank page offers an empty box; "/v/" (a link cut short) leads to it.
    assert 'value=""' in client.get("/v").get_data(as_text=True)
    slash = client.get("/v/")
    assert slash.status_code == 302 and slash.headers["Location"] == "/v"


def test_voting_over_https_needs_the_token_but_no_referrer(app, sample_round) -> None:
    # Behind nginx with HTTPS, and a phone that sends no Referer (the voting pages ask for
    # none, SPEC §5.6): typing a code, the ballot and a receipt check all go through.
    code, typed = open_with_codes(sample_round)["中层干部"][:2]
    app.config["PREFERRED_URL_SCHEME"] = "https"  # the test client's requests are https://…
    phone = app.test_client()
    assert phone.get("/v").request.is_secure and phone.get("/v").request.referrer is None
    voter = Voter(phone)
    response = voter.vote(code, full_answers(sample_round))
    assert voted(response)
    receipt = receipt_of(response)
    entered = phone.post("/v", data={"code": typed, "csrf_token": csrf_token(phone, "/v")})
    assert entered.status_code == 302
    checked = phone.post("/receipt", data={"receipt": receipt, "csrf_token": voter.token})
    assert checked.status_code == 200
    # The token is still required: without it, or with a wrong one, nothing is stored.
    other = app.test_client()
    Voter(other).scan(typed)
    for token in ("", "not-a-token"):
        refused = other.post("/ballot", data={**full_answers(sample_round), "csrf_token": token})
        assert refused.status_code == 400 and "页面已过期" in refused.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 1


@pytest.mark.parametrize(
    ("case", "status", "text"),
    [
        ("unknown", 404, "测评码不存在"),
        ("malformed", 404, "测评码不正确"),
        ("used", 409, "已经投过票"),
        ("draft", 403, "尚未开始"),
        ("closed", 403, "已经结束"),
        ("void", 404, "已作废"),
    ],
)
def test_refusals_are_chinese_pages_with_the_right_status(
    client, sample_round, case, status, text
) -> None:
    if case == "draft":
        code = issue(sample_round, "班子成员", 1)[0]
    else:
        code = open_with_codes(sample_round)["班子成员"][0]
    if case == "unknown":
        code = codes.new_code()
    elif case == "malformed":
        code = "hello"
    elif case == "used":
        assert voted(Voter(client).vote(code, full_answers(sample_round)))
    elif case == "closed":
        close(sample_round)
    elif case == "void":
        batch_id = db.session.execute(db.select(Code.batch_id)).scalars().first()
        codes.void_batch(sample_round, batch_id, actor="t", reason="遗失")
        db.session.commit()
    response = client.get(f"/v/{code}")
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert text in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Traceback" not in page


def test_scheduled_open_takes_effect_when_a_voter_arrives(client, sample_round) -> None:
    code = issue(sample_round, "一般干部", 1)[0]
    sample_round.opens_at = datetime.now(UTC) - timedelta(minutes=1)
    db.session.commit()
    assert client.get(f"/v/{code}").status_code == 302
    db.session.refresh(sample_round)
    assert sample_round.state == RoundState.OPEN


def test_scheduled_close_takes_effect_when_a_voter_arrives(client, sample_round) -> None:
    code = open_with_codes(sample_round)["一般干部"][0]
    sample_round.closes_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    assert client.get(f"/v/{code}").status_code == 403
    db.session.refresh(sample_round)
    assert sample_round.state == RoundState.CLOSED


# --- the ballot page ---------------------------------------------------------------------------


def test_ballot_markup_is_semantic(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    page = Voter(client).scan(code).get_data(as_text=True)
    fieldsets = re.findall(
        r'<fieldset class="subject[^"]*"[^>]*>(.*?)</fieldset>\s*'
        r'(?=<fieldset class="subject|<div class="ballot-submit)',
        page,
        re.S,
    )
    assert len(fieldsets) == len(sample_round.subjects) == 5
    for subject, html in zip(sample_round.subjects, fieldsets, strict=True):
        legend = re.search(r"<legend>(.*?)</legend>", html, re.S)
        assert legend and subject.name in legend.group(1)
        form = state.subject_form(sample_round, subject)
        for grade in form.grades:
            radio = re.search(
                rf'<label class="choice" for="([^"]+)">\s*<input type="radio" id="\1" '
                rf'name="{field_name(subject.id)}" value="{grade.key}"[^>]*>\s*'
                rf"<span>{grade.label}</span>",
                html,
            )
            assert radio, (subject.name, grade.label)
        assert re.search(rf'value="{ABSTAIN}"[^>]*>\s*<span>弃权</span>', html)
    # The items are shown as the content being judged.
    assert "认真贯彻落实党中央" in page and "<details" in page
    assert "严格执行中央八项规定精神" in page
    # Nothing from another host, no script.
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_each_phone_gets_its_own_token_and_stratum_on_the_shared_ballot_page(
    app, sample_round
) -> None:
    """The blank ballot is rendered once per stratum; the CSRF token is each phone's own."""
    issued = open_with_codes(sample_round, 2)
    pages = {}
    voters = []
    for stratum in ("班子成员", "一般干部"):
        for code in issued[stratum]:
            voter = Voter(app.test_client())
            page = voter.scan(code).get_data(as_text=True)
            assert f"测评人员类别：<strong>{stratum}</strong>" in page
            assert "@@" not in page
            pages[code] = page
            voters.append(voter)
    tokens = [v.token for v in voters]
    assert len(set(tokens)) == len(tokens)
    first, second = issued["班子成员"]
    assert pages[first].replace(voters[0].token, "") == pages[second].replace(voters[1].token, "")
    # Each token works only in its own phone's session.
    voters[0].token, voters[1].token = voters[1].token, voters[0].token
    assert voters[0].submit(full_answers(sample_round)).status_code == 400
    voters[0].token, voters[1].token = voters[1].token, voters[0].token
    assert all(voted(v.submit(full_answers(sample_round))) for v in voters)
    assert ballots_cast(sample_round.id) == 4


def test_voting_pages_send_strict_headers(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    responses = [
        client.get("/v"),
        client.get(f"/v/{code}"),
        client.get("/ballot"),
        client.get("/receipt"),
        client.get(f"/v/{codes.new_code()}"),
    ]
    for response in responses:
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response.headers["Cache-Control"]
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "script-src" not in csp


def test_per_item_form_asks_each_item_and_the_overall_grade(client, sample_round) -> None:
    forms = dict(sample_round.forms)
    forms["gansu-member"] = {**forms["gansu-member"], "per_item": True}
    sample_round.forms = forms
    db.session.commit()
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    page = voter.scan(code).get_data(as_text=True)
    member = next(s for s in sample_round.subjects if s.form_id == "gansu-member")
    items = state.subject_form(sample_round, member).items
    for item in items:
        assert re.search(
            r'<fieldset class="item[^"]*"[^>]*>\s*<legend>\d+\. ' + re.escape(item.text), page
        )
    data = full_answers(sample_round)
    missing_item = field_name(member.id, items[0].code)
    response = voter.submit({k: v for k, v in data.items() if k != missing_item})
    assert response.status_code == 400
    assert ballots_cast(sample_round.id) == 0
    assert voted(voter.submit(data))
    close(sample_round)
    stored = (
        db.session.execute(db.select(Answer.item).where(Answer.subject_id == member.id))
        .scalars()
        .all()
    )
    assert sorted(stored) == sorted(["", *[it.code for it in items]])


# --- POST /ballot ------------------------------------------------------------------------------


def test_cast_stores_one_ballot_and_uses_the_code(client, sample_round) -> None:
    code = open_with_codes(sample_round)["中层干部"][0]
    data = full_answers(sample_round, pick=1)
    first = next(iter(data))
    data[first] = ABSTAIN
    response = Voter(client).vote(code, data)
    assert voted(response)  # the POST itself answers with the thanks page
    assert f"您的选票已记入“{sample_round.title}”" in response.get_data(as_text=True)
    receipt = receipt_of(response)
    assert code_state(code) == CodeState.USED
    # Until close the ballot is sealed in the round's box: nothing of it is stored in clear.
    assert ballots_cast(sample_round.id) == 1 and receipts_kept(sample_round.id) == 1
    assert count(Ballot) == 0 and count(Answer) == 0 and count(Receipt) == 0
    # The phone reloads the thanks page (the POST again): the same receipt, nothing stored.
    again = client.post("/ballot", data={**data, "csrf_token": csrf_token(client, "/v")})
    assert voted(again) and receipt_of(again) == receipt
    assert receipt_of(client.get("/thanks")) == receipt
    assert ballots_cast(sample_round.id) == 1 and receipts_kept(sample_round.id) == 1
    # A phone holding neither a code nor a receipt is sent to scan again; nothing is stored.
    stranger = client.application.test_client()
    refused = stranger.post("/ballot", data={**data, "csrf_token": csrf_token(stranger, "/v")})
    assert refused.status_code == 400 and "重新扫码" in refused.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 1
    # The close opens the box: the ballot, as cast, in clear.
    close(sample_round)
    ballot = db.session.execute(db.select(Ballot)).scalar_one()
    assert ballot.stratum_id == codes.stratum_named(sample_round, "中层干部").id
    answers = db.session.execute(db.select(Answer)).scalars().all()
    assert len(answers) == 5
    assert sum(a.grade is None for a in answers) == 1
    assert count(Receipt) == 1 and code_state(code) == CodeState.USED


def test_a_session_from_before_the_round_snapshot_still_votes(client, sample_round) -> None:
    # A phone that scanned before an upgrade holds a session without the round's creation
    # time and title: the POST reads the round instead, and the vote counts the same.
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    voter.scan(code)
    with client.session_transaction() as session:
        held = session["voting_code"]
        del held["round_created"], held["round_title"]
        session["voting_code"] = held
    response = voter.submit(full_answers(sample_round))
    assert voted(response) and sample_round.title in response.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 1 and code_state(code) == CodeState.USED


def test_missing_answers_come_back_with_choices_kept(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    voter.scan(code)
    data = full_answers(sample_round, pick=1)
    names = list(data)
    partial = {k: data[k] for k in names[:3]}
    response = voter.submit(partial)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for name in names[:3]:
        assert re.search(rf'name="{name}" value="{data[name]}"\s+checked', page), name
    assert page.count('class="subject has-error"') == 2
    assert "还有 2 个测评对象没有填写完整" in page
    assert ballots_cast(sample_round.id) == 0 and count(Answer) == 0
    assert code_state(code) == CodeState.UNUSED
    voter.token = token_of(page)
    assert voted(voter.submit(data))


def test_grade_not_in_the_form_is_400_with_the_form(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    voter.scan(code)
    data = full_answers(sample_round)
    team = next(s for s in sample_round.subjects if s.form_id == "gansu-team")
    data[field_name(team.id)] = "competent"  # a grade of another form
    response = voter.submit(data)
    assert response.status_code == 400
    assert "所选等次不在测评表中" in response.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 0 and code_state(code) == CodeState.UNUSED


def test_abstain_refused_where_the_form_does_not_allow_it(client, sample_round) -> None:
    forms = dict(sample_round.forms)
    forms["gansu-team"] = {**forms["gansu-team"], "abstain": False}
    sample_round.forms = forms
    db.session.commit()
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    page = voter.scan(code).get_data(as_text=True)
    team = next(s for s in sample_round.subjects if s.form_id == "gansu-team")
    assert f'name="{field_name(team.id)}" value="{ABSTAIN}"' not in page
    data = full_answers(sample_round)
    data[field_name(team.id)] = ABSTAIN
    assert voter.submit(data).status_code == 400
    assert ballots_cast(sample_round.id) == 0


def test_post_after_close_is_403_and_stores_nothing(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    voter.scan(code)
    close(sample_round)
    response = voter.submit(full_answers(sample_round))
    assert response.status_code == 403
    assert "已经结束" in response.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 0 and code_state(code) == CodeState.UNUSED


def test_closing_time_passed_since_the_scan_refuses_the_ballot(client, sample_round) -> None:
    # Nobody has applied the scheduled close yet: the round is still marked open.
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    voter.scan(code)
    sample_round.closes_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    incomplete = voter.submit({})
    assert incomplete.status_code == 403  # closed comes before "answer every question"
    response = voter.submit(full_answers(sample_round))
    assert response.status_code == 403
    assert "您的选票没有被记录" in response.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 0 and receipts_kept(sample_round.id) == 0
    assert code_state(code) == CodeState.UNUSED
    db.session.refresh(sample_round)
    assert sample_round.state == RoundState.CLOSED


def test_the_write_itself_refuses_a_round_past_its_closing_time(app, sample_round) -> None:
    from evaluation.errors import RoundClosed
    from evaluation.voting.views import cast_ballot

    issued = open_with_codes(sample_round)["班子成员"]
    stratum = codes.stratum_named(sample_round, "班子成员")
    answers = [(s.id, "", None) for s in sample_round.subjects]
    layout = ballot_layout(sample_round)
    # A closing time still ahead (a minute, and a day) does not stop the cast …
    for ahead, code in ((timedelta(minutes=1), issued[0]), (timedelta(days=1), issued[1])):
        sample_round.closes_at = datetime.now(UTC) + ahead
        db.session.commit()
        cast_ballot(codes.code_digest(code), sample_round, stratum.id, layout, answers)
    # … one just passed does, though nobody has closed the round yet.
    sample_round.closes_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(RoundClosed):
        cast_ballot(codes.code_digest(issued[2]), sample_round, stratum.id, layout, answers)
    assert ballots_cast(sample_round.id) == 2 and code_state(issued[2]) == CodeState.UNUSED


def test_cast_ballot_refuses_a_used_code_and_a_closed_round(app, sample_round) -> None:
    from evaluation.errors import CodeAlreadyUsed, RoundClosed
    from evaluation.voting.views import cast_ballot

    issued = open_with_codes(sample_round)["班子成员"]
    stratum = codes.stratum_named(sample_round, "班子成员")
    answers = [(s.id, "", None) for s in sample_round.subjects]
    layout = ballot_layout(sample_round)
    cast_ballot(codes.code_digest(issued[0]), sample_round, stratum.id, layout, answers)
    with pytest.raises(CodeAlreadyUsed):
        cast_ballot(codes.code_digest(issued[0]), sample_round, stratum.id, layout, answers)
    close(sample_round)
    with pytest.raises(RoundClosed):
        cast_ballot(codes.code_digest(issued[1]), sample_round, stratum.id, layout, answers)
    assert ballots_cast(sample_round.id) == 1 and code_state(issued[1]) == CodeState.UNUSED


# --- rate limiting -----------------------------------------------------------------------------


def test_failed_entries_are_limited_valid_codes_never(app, client, sample_round) -> None:
    app.config["CODE_ENTRY_RATE_LIMIT"] = "5 per 10 minutes"
    valid = issue(sample_round, "一般干部", 50)
    lifecycle.open_round(sample_round, actor="t")
    db.session.commit()
    statuses = [client.get(f"/v/{codes.new_code()}").status_code for _ in range(7)]
    assert statuses == [404] * 5 + [429] * 2
    assert "尝试次数过多" in client.get(f"/v/{codes.new_code()}").get_data(as_text=True)
    # A whole hall behind one address: every valid code still gets through.
    assert all(client.get(f"/v/{code}").status_code == 302 for code in valid)
    # Another address is not affected.
    other = client.get(f"/v/{codes.new_code()}", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 404


def test_typed_entries_count_failures_too(app, client, sample_round) -> None:
    app.config["CODE_ENTRY_RATE_LIMIT"] = "3 per 10 minutes"
    open_with_codes(sample_round, 1)
    token = csrf_token(client, "/v")
    statuses = [
        client.post("/v", data={"code": "WRONG-CODE", "csrf_token": token}).status_code
        for _ in range(4)
    ]
    assert statuses == [404, 404, 404, 429]


# --- thanks and receipts -----------------------------------------------------------------------


def test_receipt_proves_inclusion_after_close_and_nothing_else(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    response = Voter(client).vote(code, full_answers(sample_round))
    assert voted(response)
    thanks = response.get_data(as_text=True)
    receipt = receipt_of(response)
    assert codes.normalise(receipt) != codes.normalise(code)
    assert codes.normalise(code) not in thanks
    # Only its keyed hash is stored (beside the sealed ballot until close).
    from evaluation.voting import box

    table = box.box_table(sample_round.id)
    stored = db.session.execute(
        db.select(table.c.receipt).where(table.c.digest != box.KEY_ROW)
    ).scalar_one()
    assert stored == codes.receipt_digest(receipt)
    token = csrf_token(client, "/receipt")
    before = client.post("/receipt", data={"receipt": receipt, "csrf_token": token})
    assert before.status_code == 200 and "尚未结束" in before.get_data(as_text=True)
    close(sample_round)
    after = client.post("/receipt", data={"receipt": receipt.lower(), "csrf_token": token})
    page = after.get_data(as_text=True)
    assert after.status_code == 200 and "已计入" in page
    assert db.session.execute(db.select(Receipt.digest)).scalar_one() == stored
    for label in ("优秀", "合格", "称职", "弃权"):
        assert label not in page.split("<main")[1]
    unknown = client.post("/receipt", data={"receipt": codes.new_receipt(), "csrf_token": token})
    assert unknown.status_code == 404 and "未找到" in unknown.get_data(as_text=True)


def test_thanks_without_a_vote_goes_to_code_entry(client, app) -> None:
    response = client.get("/thanks")
    assert response.status_code == 302 and response.headers["Location"] == "/v"
    assert client.get("/ballot").headers["Location"] == "/v"


# --- organiser pages ---------------------------------------------------------------------------


def test_preview_shows_the_ballot_read_only(client, auth, users, sample_round) -> None:
    assert client.get(f"/rounds/{sample_round.id}/preview").status_code == 302  # login first
    auth.login()
    response = client.get(f"/rounds/{sample_round.id}/preview")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "选票预览" in page
    for subject in sample_round.subjects:
        assert subject.name in page
    assert "disabled" in page and "提交选票" not in page
    auth.logout()
    auth.login("other")
    assert client.get(f"/rounds/{sample_round.id}/preview").status_code == 404


def test_codes_page_issues_a_file_once_and_lists_counts_only(
    client, auth, users, sample_round
) -> None:
    auth.login()
    page = client.get(f"/rounds/{sample_round.id}/codes")
    assert page.status_code == 200
    token = token_of(page.get_data(as_text=True))
    # The same session, presented to a forged Host (the test client keys cookies by host).
    session_cookie = client.get_cookie("session")
    assert session_cookie is not None
    client.set_cookie("session", session_cookie.value, domain="evil.example")
    response = client.post(
        f"/rounds/{sample_round.id}/codes/issue",
        data={
            "stratum": str(codes.stratum_named(sample_round, "中层干部").id),
            "count": "4",
            "format": "csv",
            "csrf_token": token,
        },
        environ_overrides={"HTTP_HOST": "evil.example"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "code,url"
    plain = [line.split(",")[0] for line in lines[1:]]
    assert len(plain) == 4
    # Links come from PUBLIC_BASE_URL, never from the request's Host header.
    assert all(",https://ceping.example.gov.cn/v/" in line for line in lines[1:])
    assert "evil.example" not in response.get_data(as_text=True)
    listing = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    assert "第 1 批" in listing
    assert not any(p in listing or codes.normalise(p) in listing for p in plain)
    pdf = client.post(
        f"/rounds/{sample_round.id}/codes/issue",
        data={
            "stratum": str(codes.stratum_named(sample_round, "班子成员").id),
            "count": "3",
            "format": "pdf",
            "csrf_token": token,
        },
    )
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert count(Code) == 7


def test_codes_page_refusals(client, auth, users, sample_round) -> None:
    auth.login()
    token = csrf_token(client, f"/rounds/{sample_round.id}/codes")
    bad = client.post(
        f"/rounds/{sample_round.id}/codes/issue",
        data={
            "stratum": str(codes.stratum_named(sample_round, "中层干部").id),
            "count": "0",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 400 and "之间" in bad.get_data(as_text=True)
    issue(sample_round, "中层干部", 2)
    void_without_reason = client.post(
        f"/rounds/{sample_round.id}/codes/1/void", data={"reason": "", "csrf_token": token}
    )
    assert void_without_reason.status_code == 400
    voided = client.post(
        f"/rounds/{sample_round.id}/codes/1/void", data={"reason": "遗失", "csrf_token": token}
    )
    assert voided.status_code == 302
    assert count(Code) == 2
    assert {s for s in db.session.execute(db.select(Code.state)).scalars()} == {CodeState.VOID}
    auth.logout()
    auth.login("other")
    assert client.get(f"/rounds/{sample_round.id}/codes").status_code == 404


def test_turnout_shows_counts_per_stratum_and_nothing_about_votes(
    client, auth, users, sample_round
) -> None:
    issued = open_with_codes(sample_round, 4)
    for code in issued["班子成员"][:3]:
        assert voted(Voter(client).vote(code, full_answers(sample_round)))
    auth.login()
    page = client.get(f"/rounds/{sample_round.id}/turnout").get_data(as_text=True)
    assert "<progress" in page and "codes.js" in page
    data = client.get(f"/rounds/{sample_round.id}/turnout.json").get_json()
    assert (data["used"], data["issued"]) == (3, 12)
    by_name = {s["name"]: (s["used"], s["issued"], s["percent"]) for s in data["strata"]}
    assert by_name == {"班子成员": (3, 4, 75.0), "中层干部": (0, 4, 0.0), "一般干部": (0, 4, 0.0)}
    # Shown as the 测评活动 list shows a turnout: one formatter, rounded half up.
    assert [s["percent_text"] for s in data["strata"]] == ["75 %", "0 %", "0 %"]
    assert data["percent_text"] == "25 %" and "25 %" in page and "75 %" in page
    issue(sample_round, "班子成员", 44)  # 3 of 48 = 6.25 %: half up, not to the even tenth
    data = client.get(f"/rounds/{sample_round.id}/turnout.json").get_json()
    assert (data["strata"][0]["percent"], data["strata"][0]["percent_text"]) == (6.3, "6.3 %")
    page = client.get(f"/rounds/{sample_round.id}/turnout").get_data(as_text=True)
    assert '<span class="s-percent">6.3 %</span>' in page
    listing = client.get("/").get_data(as_text=True)
    assert "3/56" in listing and "5.4 %" in listing  # the same figure on the list
    for label in ("优秀", "合格", "称职", "弃权"):
        assert label not in page and label not in str(data)


def test_layout_follows_the_round(app, sample_round) -> None:
    layout = ballot_layout(sample_round)
    assert [s.name for s in layout] == [s.name for s in sample_round.subjects]
    integrity = next(s for s in layout if s.form.id == "gansu-integrity")
    assert [c.label for c in integrity.overall.choices] == ["好", "中", "差", "弃权"]


# --- demo and first run ------------------------------------------------------------------------


def test_flask_demo_creates_an_open_round_ready_to_vote(app: Flask, client, runner) -> None:
    from evaluation.models import Round

    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    rnd = db.session.execute(db.select(Round)).scalar_one()
    assert rnd.state == RoundState.OPEN
    assert sorted(rnd.forms) == sorted(
        ["gansu-team", "gansu-discipline", "gansu-principal", "gansu-member", "gansu-integrity"]
    )
    assert len(rnd.strata) == 3
    assert count(Code) == sum(s.planned for s in rnd.strata)
    urls = re.findall(r"https://ceping\.example\.gov\.cn/v/\S+", result.output)
    assert len(urls) == 3
    code = urls[0].rsplit("/", 1)[1]
    assert voted(Voter(client).vote(code, full_answers(rnd)))


def test_setup_loads_the_demo_only_into_an_empty_database(app: Flask, runner) -> None:
    from evaluation.models import Round, User

    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert "用户名：admin" in first.output and "/v/" in first.output
    assert count(Round) == 1 and count(User) == 1
    second = runner.invoke(args=["setup"])
    assert second.exit_code == 0 and "/v/" not in second.output
    assert count(Round) == 1
    # The login link is the public address the voting links use; on this machine only, it
    # says how to let phones in.
    base = app.config["PUBLIC_BASE_URL"]
    assert f"登录：{base}/login" in second.output
    local = "127.0.0.1" in base or "localhost" in base
    assert ("要用手机投票，请以 HOST=0.0.0.0" in second.output) == local
    app.config["PUBLIC_BASE_URL"] = "http://192.168.1.20:5000"
    lan = runner.invoke(args=["setup"])
    assert "登录：http://192.168.1.20:5000/login" in lan.output and "要用手机" not in lan.output


def test_healthz_is_a_bare_route(client, app) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_data(as_text=True) == "ok"


def test_code_voided_after_the_scan_stores_nothing(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    voter = Voter(client)
    voter.scan(code)
    batch_id = db.session.execute(
        db.select(Code.batch_id).where(Code.digest == codes.code_digest(code))
    ).scalar_one()
    codes.void_batch(sample_round, batch_id, actor="t", reason="遗失")
    db.session.commit()
    response = voter.submit(full_answers(sample_round))
    assert response.status_code == 404 and "已作废" in response.get_data(as_text=True)
    assert ballots_cast(sample_round.id) == 0 and receipts_kept(sample_round.id) == 0


def test_failed_receipt_checks_are_limited_too(app, client, sample_round) -> None:
    app.config["CODE_ENTRY_RATE_LIMIT"] = "2 per 10 minutes"
    token = csrf_token(client, "/receipt")
    statuses = [
        client.post(
            "/receipt", data={"receipt": codes.new_receipt(), "csrf_token": token}
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [404, 404, 429]


def test_batches_never_show_their_use(client, auth, users, sample_round) -> None:
    """A batch of one code would tell whether its holder voted: use is shown per stratum only."""
    single = issue(sample_round, "班子成员", 1)[0]
    issue(sample_round, "班子成员", 3)
    lifecycle.open_round(sample_round, actor="t")
    db.session.commit()
    assert voted(Voter(client).vote(single, full_answers(sample_round)))
    auth.login()
    page = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    batch_table = page.split("已发放批次")[1].split("</table>")[0]
    assert "已使用" not in batch_table
    assert [b for b in codes.batch_summaries(sample_round) if hasattr(b, "used")] == []
    token = token_of(page)
    client.post(
        f"/rounds/{sample_round.id}/codes/1/void", data={"reason": "遗失", "csrf_token": token}
    )
    flashed = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    assert "第 1 批测评码已作废" in flashed and "0 个" not in flashed
    from evaluation.models import AuditEntry

    entry = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "codes.void")
    ).scalar_one()
    assert set(entry.details) == {"round_id", "batch", "reason"}
