"""纸质选票 (issue 16.1): the A4 paper ballot of a stratum, read back as people see it.

The PDF is read with ``pdftotext`` (names, grade labels, 弃权, the stratum, 不记名, serials),
``pdfinfo`` (pages, A4) and ``pdftoppm`` (page 1 rendered to PNG is not blank). Printing from
the codes page issues the ballots: ``POST …/codes/paper-ballots`` records a print (serials
numbered on per stratum, ``No. A-P0001``), audited; a reprint gives the same serials and issues
nothing; login, role, unit scope, round state and bad counts are refused in Chinese.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from evaluation.accounts.operations import create_user
from evaluation.codes import paper
from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.models import AuditEntry, PaperIssue, Round, RoundState, Stratum
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.voting.ballot import BallotSubject, Question, ballot_layout, field_name
from tests.helpers.office import page_size_points, pdf_pages
from tests.helpers.web import PASSWORD, SAMPLE_ROUND, AuthActions, csrf_token

POPPLER = ("pdftotext", "pdfinfo", "pdftoppm")


@pytest.fixture(autouse=True)
def _poppler() -> None:
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    assert not missing, f"poppler-utils is needed to read the ballots back: {missing}"


def _save(pdf: bytes, tmp_path: Path, name: str = "ballots.pdf") -> Path:
    assert pdf.startswith(b"%PDF")
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def _text(path: Path, page: int | None = None) -> str:
    args = ["pdftotext"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run(
        [*args, str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def _dark_pixels(path: Path, tmp_path: Path) -> int:
    """Dark pixels of page 1 rendered to PNG at 40 dpi, as a person would look at it."""
    prefix = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-png", "-gray", "-r", "40", "-f", "1", "-l", "1", str(path), str(prefix)],
        check=True,
        timeout=60,
    )
    (image,) = tmp_path.glob("page*.png")
    with Image.open(image) as picture:
        grey = picture.convert("L")
        return sum(grey.histogram()[:100])  # pixels darker than 100 of 255


def _round_with_members(extra_members: int, *, title: str = "") -> Round:
    """The sample round plus ``extra_members`` subjects on the 班子成员 form."""
    extra = "".join(
        f'\n[[subjects]]\nname = "成员{i:02d}"\nform = "gansu-member"\npost = "副局长"\n'
        f'staff_no = "B{i:03d}"\n'
        for i in range(1, extra_members + 1)
    )
    text = SAMPLE_ROUND.replace("[forms.gansu-integrity]", extra + "\n[forms.gansu-integrity]")
    if title:
        text = text.replace("2026年度党风廉政建设责任制民主测评", title)
    rnd = import_round(parse_round_text(text), actor="test")
    db.session.commit()
    return rnd


def _grade_labels(rnd: Round) -> dict[str, list[str]]:
    return {s.form.title: [g.label for g in s.form.grades] for s in ballot_layout(rnd)}


def _check_reads_back(rnd: Round, path: Path, stratum_name: str) -> str:
    text = _text(path)
    for subject in ballot_layout(rnd):
        assert subject.name in text, subject.name
        if subject.post:
            assert f"{subject.name}（{subject.post}）" in text
    for title, labels in _grade_labels(rnd).items():
        assert title in text, title
        for label in labels:
            assert label in text, (title, label)
    assert "弃权" in text
    assert f"测评人员类别：{stratum_name}" in text
    assert paper.NOTICE in text
    assert "不记名" in text
    assert "每个测评对象只能选一项" in text
    return text


# --- the PDF -----------------------------------------------------------------------------------


def test_sample_round_ballots_read_back_with_serials(
    app: Flask, sample_round: Round, tmp_path: Path
) -> None:
    stratum = sample_round.strata[1]
    path = _save(paper.paper_ballots_pdf(sample_round, stratum, 3, 1), tmp_path)
    text = _check_reads_back(sample_round, path, stratum.name)
    # Title with its year, every form's items once as the content judged (not per_item).
    assert "2026年度党风廉政建设责任制民主测评" in text
    assert "严格执行中央八项规定精神" in text
    # Three ballots of one page each, numbered 0001–0003 and nothing else.
    assert pdf_pages(path) == 3
    width, height = page_size_points(path)
    assert (round(width), round(height)) == (595, 842)  # A4 portrait
    serials = re.findall(r"No\. (\d{4})", text)
    assert serials == ["0001", "0002", "0003"]
    for page, serial in enumerate(["0001", "0002", "0003"], 1):
        assert f"No. {serial}" in _text(path, page)
    # Every ballot carries every subject, one 序号 each (1–5 on each page).
    for page in (1, 2, 3):
        page_text = _text(path, page)
        assert all(s.name in page_text for s in ballot_layout(sample_round))
    assert _dark_pixels(path, tmp_path) > 2000


def test_serials_start_where_asked(app: Flask, sample_round: Round, tmp_path: Path) -> None:
    path = _save(paper.paper_ballots_pdf(sample_round, sample_round.strata[0], 2, 41), tmp_path)
    assert re.findall(r"No\. (\d{4})", _text(path)) == ["0041", "0042"]


def test_ten_subjects_fit_one_a4_page_per_ballot(app: Flask, tmp_path: Path) -> None:
    rnd = _round_with_members(5)
    assert len(ballot_layout(rnd)) == 10
    path = _save(paper.paper_ballots_pdf(rnd, rnd.strata[0], 3, 1), tmp_path)
    _check_reads_back(rnd, path, rnd.strata[0].name)
    assert pdf_pages(path) == 3
    assert tuple(round(v) for v in page_size_points(path)) == (595, 842)
    page_one = _text(path, 1)
    assert all(s.name in page_one for s in ballot_layout(rnd))
    assert "第 1 页" not in page_one  # a one-page ballot has no page numbers
    assert _dark_pixels(path, tmp_path) > 2000


def test_twelve_subjects_take_two_pages_with_serial_and_page_numbers(
    app: Flask, tmp_path: Path
) -> None:
    rnd = _round_with_members(7)
    assert len(ballot_layout(rnd)) == 12
    path = _save(paper.paper_ballots_pdf(rnd, rnd.strata[2], 3, 1), tmp_path)
    _check_reads_back(rnd, path, rnd.strata[2].name)
    assert pdf_pages(path) == 6
    for ballot in range(3):
        serial = f"No. {ballot + 1:04d}"
        for page_no in (1, 2):
            page_text = _text(path, 2 * ballot + page_no)
            assert serial in page_text
            assert f"第 {page_no} 页 共 2 页" in page_text
            assert "不记名" in page_text
    # Each subject once per ballot, numbered 1–12 in printed order.
    first_ballot = _text(path, 1) + _text(path, 2)
    for subject in ballot_layout(rnd):
        assert first_ballot.count(subject.name) == (
            2 if subject.name == "张三" else 1  # "张三" is also in "张三（廉洁自律）"
        ), subject.name


def test_items_of_per_item_forms_get_a_row_each(app: Flask, tmp_path: Path) -> None:
    rnd = _round_with_members(0)
    member = next(s for s in ballot_layout(rnd) if s.form.id == "gansu-member")
    form = dataclasses.replace(member.form, per_item=True)
    choices = member.overall.choices
    items = tuple(
        Question(field_name(member.subject_id, it.code), it.code, it.text, choices)
        for it in form.items
    )
    subject = BallotSubject(
        member.subject_id,
        member.name,
        member.post,
        form,
        dataclasses.replace(member.overall, legend="总体评价"),
        items,
    )
    pdf = paper.render_paper_ballots(
        round_title="测试", stratum_name="一般干部", layout=[subject], count=1
    )
    path = _save(pdf, tmp_path)
    text = _text(path).replace("\n", "")
    assert "总体评价" in text
    for number, item in enumerate(form.items, 1):
        assert f"{number}. {item.text[:8]}" in text
    assert "测评内容：" not in text  # items are rows here, not a paragraph


def test_year_is_added_to_a_title_without_it(app: Flask, tmp_path: Path) -> None:
    rnd = _round_with_members(0, title="党风廉政建设责任制民主测评")
    path = _save(paper.paper_ballots_pdf(rnd, rnd.strata[0], 1, 1), tmp_path)
    assert "2026年 党风廉政建设责任制民主测评" in _text(path)


def test_counts_outside_the_range_are_refused_in_chinese(app: Flask, sample_round: Round) -> None:
    stratum = sample_round.strata[0]
    for bad in (0, paper.MAX_COPIES + 1, -3):
        with pytest.raises(InputError, match="1 到 2000"):
            paper.paper_ballots_pdf(sample_round, stratum, bad, 1)
    with pytest.raises(InputError, match="不是整数"):
        paper.parse_copies("十")
    with pytest.raises(InputError, match="^请填写份数$"):
        paper.parse_copies("  ")
    with pytest.raises(InputError, match="起始编号"):
        paper.parse_first_serial("0")
    assert paper.parse_first_serial("") == 1


def test_a_stratum_limited_to_some_subjects_gets_only_those(app: Flask, tmp_path: Path) -> None:
    text = SAMPLE_ROUND.replace(
        'name = "一般干部"\ncodes = 40\n',
        'name = "一般干部"\ncodes = 40\n\n[[strata]]\nname = "服务对象"\ncodes = 9\n'
        'subjects = ["市局领导班子"]\n',
    )
    rnd = import_round(parse_round_text(text), actor="test")
    db.session.commit()
    served = next(s for s in rnd.strata if s.name == "服务对象")
    path = _save(paper.paper_ballots_pdf(rnd, served, 1, 1), tmp_path)
    printed = _text(path)
    assert "市局领导班子" in printed and "测评人员类别：服务对象" in printed
    for name in ("市局纪检组", "李四", "张三"):
        assert name not in printed
    assert "称职" not in printed  # no 班子成员 form on this ballot


# --- the route: printing is issuing ------------------------------------------------------------


def _print(client: FlaskClient, rnd: Round, stratum_id: object, count: object = 3) -> Any:
    token = csrf_token(client, f"/rounds/{rnd.id}/codes")
    return client.post(
        f"/rounds/{rnd.id}/codes/paper-ballots",
        data={"csrf_token": token, "stratum": str(stratum_id), "count": str(count)},
    )


def _reprint_url(rnd: Round, issue_id: int) -> str:
    return f"/rounds/{rnd.id}/codes/paper-ballots/{issue_id}.pdf"


def _audited() -> list[AuditEntry]:
    db.session.expire_all()
    query = db.select(AuditEntry).where(AuditEntry.action == "codes.paper_ballots")
    return list(db.session.execute(query.order_by(AuditEntry.id)).scalars())


def _issues() -> list[PaperIssue]:
    db.session.expire_all()
    return list(db.session.execute(db.select(PaperIssue).order_by(PaperIssue.id)).scalars())


def _serials(path: Path) -> list[str]:
    return re.findall(r"No\. ([A-Z]+-P\d{4})", _text(path))


def test_printing_issues_numbered_ballots_and_a_reprint_issues_none(
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    first_stratum, second_stratum = sample_round.strata[0], sample_round.strata[1]
    auth.login("organiser")
    page = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    assert "打印纸质选票" in page
    assert f'action="/rounds/{sample_round.id}/codes/paper-ballots"' in page
    assert f'name="stratum" value="{first_stratum.id}"' in page

    response = _print(client, sample_round, first_stratum.id, 3)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert quote("纸质选票-1-班子成员-A-P0001至A-P0003.pdf") in disposition
    path = _save(response.data, tmp_path, "first.pdf")
    _check_reads_back(sample_round, path, first_stratum.name)
    assert pdf_pages(path) == 3  # five subjects: one A4 page a ballot
    assert tuple(round(v) for v in page_size_points(path)) == (595, 842)
    assert _serials(path) == ["A-P0001", "A-P0002", "A-P0003"]
    for page_no, serial in enumerate(("A-P0001", "A-P0002", "A-P0003"), 1):
        assert f"No. {serial}" in _text(path, page_no)
    assert _dark_pixels(path, tmp_path) > 2000

    # The next print of the stratum numbers on after the first; another stratum has its own.
    again = _save(_print(client, sample_round, first_stratum.id, 2).data, tmp_path, "again.pdf")
    assert _serials(again) == ["A-P0004", "A-P0005"]
    other = _save(_print(client, sample_round, second_stratum.id, 1).data, tmp_path, "b.pdf")
    assert _serials(other) == ["B-P0001"]
    assert f"测评人员类别：{second_stratum.name}" in _text(other)

    issues = _issues()
    assert response.headers["X-Paper-Issue"] == str(issues[0].id)
    assert [(i.stratum_id, i.first_serial, i.count, i.issued_by) for i in issues] == [
        (first_stratum.id, 1, 3, "organiser"),
        (first_stratum.id, 4, 2, "organiser"),
        (second_stratum.id, 1, 1, "organiser"),
    ]
    assert [e.details for e in _audited()] == [
        {"round_id": sample_round.id, "stratum": first_stratum.name, "count": 3, "first_serial": 1},
        {"round_id": sample_round.id, "stratum": first_stratum.name, "count": 2, "first_serial": 4},
        {
            "round_id": sample_round.id,
            "stratum": second_stratum.name,
            "count": 1,
            "first_serial": 1,
        },
    ]
    assert all(e.actor == "organiser" for e in _audited())
    db.session.expire_all()
    assert db.session.get_one(Stratum, first_stratum.id).paper["printed"] == 5

    # A reprint (printer jam): the same serials, nothing more issued or audited.
    reprint = client.get(_reprint_url(sample_round, issues[0].id))
    assert reprint.status_code == 200 and reprint.mimetype == "application/pdf"
    assert reprint.headers["Content-Disposition"].startswith("attachment;")
    reprinted = _save(reprint.data, tmp_path, "reprint.pdf")
    assert _serials(reprinted) == ["A-P0001", "A-P0002", "A-P0003"]
    _check_reads_back(sample_round, reprinted, first_stratum.name)
    assert len(_issues()) == 3 and len(_audited()) == 3
    assert db.session.get_one(Stratum, first_stratum.id).paper["printed"] == 5

    # The codes page lists the prints, with their serials and the reprint link, and counts
    # them as issued.
    page = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    for serials in ("A-P0001 至 A-P0003", "A-P0004 至 A-P0005", "B-P0001"):
        assert f"<td>{serials}</td>" in page
    assert _reprint_url(sample_round, issues[1].id) in page
    assert "发出" in page
    preview = client.get(f"/rounds/{sample_round.id}/preview").get_data(as_text=True)
    assert f"/rounds/{sample_round.id}/codes#paper" in preview


def test_route_refuses_bad_counts_and_unknown_prints_in_chinese(
    client: FlaskClient, auth: AuthActions, users: dict[str, object], sample_round: Round
) -> None:
    stratum = sample_round.strata[0]
    auth.login("admin")
    for bad in (0, 2001, "abc", ""):
        response = _print(client, sample_round, stratum.id, bad)
        assert response.status_code == 400, bad
        assert "份数" in response.get_data(as_text=True)
    response = _print(client, sample_round, 999999)
    assert response.status_code == 400
    assert "测评人员类别" in response.get_data(as_text=True)
    assert _audited() == [] and _issues() == []
    unknown = client.get(_reprint_url(sample_round, 999))
    assert unknown.status_code == 404
    assert "没有这次纸质选票印制记录" in unknown.get_data(as_text=True)
    # A print of another round is not reprinted through this one.
    second = import_round(
        parse_round_text(SAMPLE_ROUND.replace("2026年度", "2026年第二次")), actor="test"
    )
    db.session.commit()
    issue = paper.issue_paper(second, second.strata[0], 2, actor="test")
    db.session.commit()
    assert client.get(_reprint_url(sample_round, issue.id)).status_code == 404
    assert client.get(_reprint_url(second, issue.id)).status_code == 200


def test_route_requires_login_role_and_scope(
    client: FlaskClient, auth: AuthActions, users: dict[str, object], sample_round: Round
) -> None:
    create_user(
        actor="test",
        username="clerk",
        password=PASSWORD,
        role="counter",
        unit_path="甘肃省局/兰州市局",
    )
    issue = paper.issue_paper(sample_round, sample_round.strata[0], 1, actor="test")
    db.session.commit()
    stratum_id = sample_round.strata[0].id
    url = f"/rounds/{sample_round.id}/codes/paper-ballots"
    data = {"stratum": str(stratum_id), "count": "2"}
    anonymous = client.post(url, data={**data, "csrf_token": csrf_token(client, "/login")})
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    reprint = client.get(_reprint_url(sample_round, issue.id))
    assert reprint.status_code == 302 and "/login" in reprint.headers["Location"]
    for who, status in (("viewer", 403), ("clerk", 403), ("other", 404)):
        auth.login(who)
        token = csrf_token(client, "/")
        refused = client.post(url, data={**data, "csrf_token": token})
        assert refused.status_code == status, who
        assert refused.mimetype != "application/pdf"
        again = client.get(_reprint_url(sample_round, issue.id))
        assert again.status_code == status and again.mimetype != "application/pdf", who
        auth.logout()
    assert len(_issues()) == 1 and len(_audited()) == 1


def test_route_refuses_a_closed_round(
    client: FlaskClient, auth: AuthActions, users: dict[str, object], sample_round: Round
) -> None:
    sample_round.state = RoundState.CLOSED
    db.session.commit()
    auth.login("organiser")
    response = _print(client, sample_round, sample_round.strata[0].id)
    assert response.status_code == 409
    assert "不能打印纸质选票" in response.get_data(as_text=True)
    page = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    assert "不能再打印纸质选票" in page
    assert 'class="paper-form' not in page
    assert _issues() == [] and _audited() == []
