"""The voter's pages in words (issue 17, item 7): the ballot's 已填 n/N, the missing-answer links,
error pages that keep the voting header and show no status number, the thanks page's wording."""

from __future__ import annotations

import re

import pytest

from evaluation.codes import codes
from evaluation.extensions import db
from evaluation.models import Code
from evaluation.rounds import lifecycle
from evaluation.transactions import write_transaction
from evaluation.voting.ballot import ballot_layout, question_count
from evaluation.web import VOTING_CSP
from tests.helpers.voters import Voter, full_answers, issue, open_with_codes, voted
from tests.helpers.web import csrf_token

HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1>", re.S)
TAG = re.compile(r"<[^>]+>")


def _page(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def _main(page: str) -> str:
    """The text of the page's <main>, tags removed."""
    match = re.search(r"<main\b[^>]*>(.*)</main>", page, re.S)
    assert match, "no <main> on the page"
    return TAG.sub(" ", match.group(1))


def _headings(page: str) -> list[str]:
    return [TAG.sub("", text).strip() for _level, text in HEADING.findall(page)]


def _assert_voter_error_page(response, status: int) -> str:  # type: ignore[no-untyped-def]
    """A voter's refusal: its status, the voting header and headers, words and no number."""
    page = _page(response)
    assert response.status_code == status
    assert 'class="voting-header"' in page and 'class="site-header"' not in page
    assert response.headers["Content-Security-Policy"] == VOTING_CSP
    assert response.headers["Referrer-Policy"] == "no-referrer"
    headings = _headings(page)
    assert headings and all(h and not re.fullmatch(r"[\d\s]+", h) for h in headings)
    assert not re.search(rf"(?<!\d){status}(?!\d)", _main(page)), "a bare status number"
    assert "error-status" not in page and "Traceback" not in page and "flask " not in page
    # What to do next: type a code again, or check a receipt.
    assert 'href="/v"' in page and 'href="/receipt"' in page
    return _main(page)


def _close(rnd) -> None:  # type: ignore[no-untyped-def]
    with write_transaction():
        lifecycle.close_round(rnd, actor="test")
    db.session.commit()


# --- the ballot --------------------------------------------------------------------------------


def test_ballot_shows_the_progress_line_after_every_radio(client, sample_round) -> None:
    code = open_with_codes(sample_round)["中层干部"][0]
    page = _page(Voter(client).scan(code))
    total = question_count(ballot_layout(sample_round))
    assert total == len(sample_round.subjects) == 5
    match = re.search(r'<p class="ballot-progress" id="ballot-progress" data-total="(\d+)">', page)
    assert match and int(match.group(1)) == total
    # After the last radio (CSS counters count what comes before) and inside the form.
    assert page.rindex('type="radio"') < match.start() < page.index("</form>")
    # No script: the count is CSS's, under the strict policy.
    assert "<script" not in page


def test_the_progress_line_is_not_on_the_preview(client, auth, users, sample_round) -> None:
    auth.login()
    page = _page(client.get(f"/rounds/{sample_round.id}/preview"))
    assert "ballot-progress" not in page and 'id="subject-' in page


def test_missing_answers_link_to_their_subjects(client, sample_round) -> None:
    code = open_with_codes(sample_round)["一般干部"][0]
    voter = Voter(client)
    voter.scan(code)
    answers = full_answers(sample_round)
    left_out = sample_round.subjects[1:3]
    for subject in left_out:
        answers.pop(f"s{subject.id}")
    response = voter.submit(answers)
    assert response.status_code == 400
    page = _page(response)
    errors = re.search(r'<div class="ballot-errors".*?</div>', page, re.S)
    assert errors
    links = re.findall(r'<a href="#subject-(\d+)">([^<]+)</a>', errors.group(0))
    assert links == [(str(s.id), s.name) for s in left_out]
    for subject_id, _name in links:  # each link has its fieldset
        assert f'<fieldset class="subject has-error" id="subject-{subject_id}">' in page
    # The answers given come back checked, so the progress line counts them again.
    assert len(re.findall(r'type="radio"[^>]*\bchecked\b', page)) == 3
    assert 'data-total="5"' in page


def test_thanks_page_says_the_code_is_used(client, sample_round) -> None:
    code = open_with_codes(sample_round)["班子成员"][0]
    response = Voter(client).vote(code, full_answers(sample_round))
    assert voted(response)
    text = _main(_page(response))
    assert "已使用" in text and "作废" not in text
    again = client.get("/thanks")
    assert "已使用" in _main(_page(again)) and "作废" not in _main(_page(again))


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("unknown", 404, "测评码不存在或已作废"),
        ("void", 404, "测评码不存在或已作废"),
        ("used", 409, "此测评码已经投过票"),
        ("draft", 403, "尚未开始投票"),
        ("closed", 403, "已经结束"),
    ],
)
def test_code_refusals_keep_the_voting_header_and_say_what_to_do(
    client, sample_round, case, status, words
) -> None:
    if case == "draft":
        code = issue(sample_round, "班子成员", 1)[0]
    else:
        code = open_with_codes(sample_round)["班子成员"][0]
    if case == "unknown":
        code = codes.new_code()
    elif case == "used":
        assert voted(Voter(client).vote(code, full_answers(sample_round)))
    elif case == "closed":
        _close(sample_round)
    elif case == "void":
        batch_id = db.session.execute(db.select(Code.batch_id)).scalars().first()
        codes.void_batch(sample_round, batch_id, actor="t", reason="遗失")
        db.session.commit()
    text = _assert_voter_error_page(client.get(f"/v/{code}"), status)
    assert words in text
    # Beside what happened, what to do (every refusal names a next step).
    assert re.search("请|可凭|可以", text)


def test_a_typed_unknown_code_stays_on_the_entry_page(client, sample_round) -> None:
    open_with_codes(sample_round)
    token = csrf_token(client, "/v")
    response = client.post("/v", data={"code": codes.new_code(), "csrf_token": token})
    page = _page(response)
    assert response.status_code == 404
    assert 'class="voting-header"' in page and "测评码不存在" in page
    assert all(not re.fullmatch(r"[\d\s]+", h) for h in _headings(page))


@pytest.mark.parametrize(
    "path", ["/v/abc/def", "/ballot/1", "/thanks/x", "/receipt/2", "/v/K7QM-4XPA/x"]
)
def test_unknown_voting_addresses_are_explained(client, path) -> None:
    text = _assert_voter_error_page(client.get(path), 404)
    assert "没有这个页面" in text and "扫描" in text


def test_a_wrong_method_on_a_voting_page_is_explained(client) -> None:
    text = _assert_voter_error_page(client.delete("/ballot"), 405)
    assert "投票" in text


def test_a_stale_ballot_says_so_in_words(client, sample_round) -> None:
    code = open_with_codes(sample_round)["一般干部"][0]
    Voter(client).scan(code)
    response = client.post("/ballot", data={**full_answers(sample_round), "csrf_token": "x"})
    text = _assert_voter_error_page(response, 400)
    assert "页面已过期" in text and "CSRF" not in text


def test_a_post_without_a_code_says_what_to_do(client, sample_round) -> None:
    open_with_codes(sample_round)
    token = csrf_token(client, "/v")
    response = client.post("/ballot", data={**full_answers(sample_round), "csrf_token": token})
    text = _assert_voter_error_page(response, 400)
    assert "重新扫码或输入测评码" in text


def test_every_voter_page_is_free_of_command_words(client, sample_round) -> None:
    code = open_with_codes(sample_round)["中层干部"][0]
    pages = [client.get("/v"), client.get("/receipt")]
    voter = Voter(client)
    pages.append(voter.scan(code))
    pages.append(voter.submit(full_answers(sample_round)))
    pages.append(client.get("/thanks"))
    pages.append(client.get(f"/v/{code}"))  # used now: 409
    for response in pages:
        page = _page(response)
        assert "flask " not in page.lower()
        assert 'class="voting-header"' in page
        assert all(not re.fullmatch(r"[\d\s]+", h) for h in _headings(page))


# --- the organiser's error pages ---------------------------------------------------------------


def test_organiser_error_pages_keep_their_header_and_no_number_heading(
    client, auth, users, sample_round
) -> None:
    auth.login()
    response = client.get("/rounds/999999")
    assert response.status_code == 404
    page = _page(response)
    assert 'class="site-header"' in page and 'class="voting-header"' not in page
    assert all(not re.fullmatch(r"[\d\s]+", h) for h in _headings(page))
    assert "error-status" not in page
    assert "错误代码：404" in page  # in small print, for whoever helps
    # The organiser's ballot preview is not a voter's page: its refusals are the organiser's.
    other = client.get("/rounds/999999/preview")
    assert other.status_code == 404 and 'class="site-header"' in _page(other)
