"""纸质选票 (issue 16.1): the A4 paper ballot of a stratum, read back as people see it.

The PDF is read with ``pdftotext`` (names, grade labels, 弃权, the stratum, 不记名, serials),
``pdfinfo`` (pages, A4) and ``pdftoppm`` (page 1 is not blank); the codes page's route is
checked for login, role, unit scope, round state, bad counts (refused in Chinese) and its audit
entry.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from evaluation.codes import paper
from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Round, RoundState
from evaluation.rounds.round_file import import_round, parse_round_text
from evaluation.voting.ballot import BallotSubject, Question, ballot_layout, field_name
from tests.helpers.office import page_size_points, pdf_pages
from tests.helpers.web import SAMPLE_ROUND, AuthActions

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
    """Dark pixels of page 1 rendered at 40 dpi (greyscale PGM)."""
    prefix = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-gray", "-r", "40", "-f", "1", "-l", "1", str(path), str(prefix)],
        check=True,
        timeout=60,
    )
    (image,) = tmp_path.glob("page*.pgm")
    data = image.read_bytes()
    # P5 header: magic, width, height, maxval, each followed by whitespace.
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert match, "not a PGM image"
    pixels = data[match.end() :]
    return sum(1 for value in pixels if value < 100)


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


# --- the route ---------------------------------------------------------------------------------


def _url(rnd: Round, stratum_id: int, count: object = 3, first: object = 1) -> str:
    return (
        f"/rounds/{rnd.id}/codes/paper-ballots.pdf?stratum={stratum_id}&count={count}&first={first}"
    )


def _downloads(rnd: Round) -> list[AuditEntry]:
    db.session.expire_all()
    return list(
        db.session.execute(
            db.select(AuditEntry).where(AuditEntry.action == "codes.paper_ballots")
        ).scalars()
    )


def test_route_downloads_audited_pdf(
    client: FlaskClient,
    auth: AuthActions,
    users: dict[str, object],
    sample_round: Round,
    tmp_path: Path,
) -> None:
    stratum = sample_round.strata[0]
    auth.login("organiser")
    page = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    assert "打印纸质选票" in page
    assert f"/rounds/{sample_round.id}/codes/paper-ballots.pdf" in page
    assert f'value="{stratum.planned}"' in page  # default count: 应参加人数
    response = client.get(_url(sample_round, stratum.id, 3, 5))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    path = _save(response.data, tmp_path)
    assert pdf_pages(path) == 3
    assert re.findall(r"No\. (\d{4})", _text(path)) == ["0005", "0006", "0007"]
    (entry,) = _downloads(sample_round)
    assert entry.actor == "organiser"
    assert entry.details == {
        "round_id": sample_round.id,
        "stratum": stratum.name,
        "count": 3,
        "first_serial": 5,
    }
    preview = client.get(f"/rounds/{sample_round.id}/preview").get_data(as_text=True)
    assert f"/rounds/{sample_round.id}/codes#paper" in preview


def test_route_refuses_bad_counts_in_chinese(
    client: FlaskClient, auth: AuthActions, users: dict[str, object], sample_round: Round
) -> None:
    stratum = sample_round.strata[0]
    auth.login("admin")
    for bad in (0, 2001, "abc", ""):
        response = client.get(_url(sample_round, stratum.id, bad))
        assert response.status_code == 400, bad
        body = response.get_data(as_text=True)
        assert "份数" in body
    response = client.get(_url(sample_round, 999999))
    assert response.status_code == 400
    assert "测评人员类别" in response.get_data(as_text=True)
    assert _downloads(sample_round) == []


def test_route_requires_login_role_and_scope(
    client: FlaskClient, auth: AuthActions, users: dict[str, object], sample_round: Round
) -> None:
    url = _url(sample_round, sample_round.strata[0].id)
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    auth.login("viewer")
    assert client.get(url).status_code == 403
    auth.logout()
    auth.login("other")
    refused = client.get(url)
    assert refused.status_code == 404
    assert refused.mimetype != "application/pdf"
    assert _downloads(sample_round) == []


def test_route_refuses_a_closed_round(
    client: FlaskClient, auth: AuthActions, users: dict[str, object], sample_round: Round
) -> None:
    sample_round.state = RoundState.CLOSED
    db.session.commit()
    auth.login("organiser")
    response = client.get(_url(sample_round, sample_round.strata[0].id))
    assert response.status_code == 409
    assert "不能打印纸质选票" in response.get_data(as_text=True)
    page = client.get(f"/rounds/{sample_round.id}/codes").get_data(as_text=True)
    assert "不能再打印纸质选票" in page
