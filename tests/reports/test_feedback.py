"""反馈单 (SPEC §8, 004 §五): whom each sheet goes to, read back from the PDF as printed.

Every sheet is downloaded through the pages, written to disk and read with poppler
(``pdfinfo``, ``pdftotext``), as an official would see it: teams and 纪检 under §五.1 (上级党组),
persons under §五.2 with the 第一责任人 named — never the subject himself —, a document's
marks (内部资料, issuing body, title, 测评时间 in Beijing time, the rule set), the raw counts
with their shares as hand-counted, 加权 labels in a weighted round, the 评价意见 and 整改要求
typed on ``/feedback-notes`` (closed rounds only, audited, organisers only), no digests in the
body, and one page per subject.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from evaluation import audit
from evaluation.errors import StateError
from evaluation.extensions import db
from evaluation.models import AuditEntry, Round, Unit
from evaluation.reports.notes import MAX_NOTE_CHARS, save_feedback_notes
from evaluation.reports.wording import weight_warnings
from evaluation.rounds import lifecycle, operations
from evaluation.tally.aggregate import sealed_result
from tests.helpers import tally as th
from tests.helpers.office import pdf_pages, pdf_text
from tests.helpers.tally import INTEGRITY, MEMBER, ORGAN, PRINCIPAL, TEAM, vote
from tests.helpers.web import AuthActions, csrf_token

OPINION = "该同志认真履行“一岗双责”，\n廉洁自律情况良好。"
RECTIFICATION = "进一步加强对分管科室的日常监督。"


@pytest.fixture
def voted(sample_round: Round) -> Round:
    """The round of test_tally_db, closed and sealed (hand counts in the tests below)."""
    vote(sample_round)
    return sample_round


def _pdf(client: FlaskClient, url: str, tmp_path: Path) -> Path:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.mimetype == "application/pdf"
    path = tmp_path / f"sheet-{len(list(tmp_path.iterdir()))}.pdf"
    path.write_bytes(response.data)
    return path


def _sheet(client: FlaskClient, rnd: Round, name: str, tmp_path: Path) -> tuple[str, str]:
    """One subject's sheet as text: laid out (-layout) and with all white space removed."""
    subject = th.subject(rnd, name)
    path = _pdf(client, f"/rounds/{rnd.id}/results/{subject.id}/feedback.pdf", tmp_path)
    assert pdf_pages(path) == 1
    text = pdf_text(path)
    return text, re.sub(r"\s+", "", text)


def _row(text: str, *cells: str) -> bool:
    """True when one printed line holds ``cells`` in order, separated by spaces."""
    pattern = r"\s+".join(re.escape(c) for c in cells)
    return any(re.search(rf"(^|\s){pattern}(\s|$)", line) for line in text.splitlines())


def _notes_url(rnd: Round, name: str) -> str:
    return f"/rounds/{rnd.id}/results/{th.subject(rnd, name).id}/feedback-notes"


def _post_notes(
    client: FlaskClient, rnd: Round, name: str, opinion: str, rectification: str
) -> TestResponse:
    url = _notes_url(rnd, name)
    token = csrf_token(client, url)
    return client.post(
        url,
        data={"opinion": opinion, "rectification": rectification, "csrf_token": token},
    )


# --- whom the sheet goes to (004 §五) --------------------------------------------------


def test_team_and_discipline_sheets_go_to_the_superior_party_group(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    auth.login("viewer")
    for name in (TEAM, ORGAN):
        _, flat = _sheet(client, voted, name, tmp_path)
        assert "第五条第1款" in flat, name
        assert "由上级党组作为综合考评各单位落实党风廉政建设责任制的重要依据" in flat, name
        assert "报送上级党组（甘肃省局），供上级党组综合考评" in flat, name
        assert "第五条第2款" not in flat, name
        assert "第一责任人" not in flat, name
        assert "廉政档案" not in flat, name


def test_member_sheet_goes_to_him_and_to_the_principal_by_name(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    auth.login("viewer")
    _, flat = _sheet(client, voted, MEMBER, tmp_path)
    assert "第五条第2款" in flat and "第五条第1款" not in flat
    assert "除直接或以书面形式反馈给被测评人外，应向班子“第一责任人”反馈" in flat
    assert "归入领导干部廉政档案" in flat
    assert "送被测评人李四本人，并送班子“第一责任人”张三（局长）" in flat
    assert "被反馈人签收" in flat and "第一责任人（张三）签收" in flat


def test_the_principal_is_never_his_own_first_responsible_person(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    # 张三 is the 正职; 张三（廉洁自律） is the same person (工号 A001) on the integrity form.
    assert th.subject(voted, PRINCIPAL).person_id == th.subject(voted, INTEGRITY).person_id
    auth.login("viewer")
    for name in (PRINCIPAL, INTEGRITY):
        _, flat = _sheet(client, voted, name, tmp_path)
        assert "第五条第2款" in flat, name
        assert "送被测评人张三本人" in flat, name
        assert "同时报上级党组（甘肃省局）及其纪检组" in flat, name
        assert "“第一责任人”张三" not in flat, name
        assert "第一责任人（" not in flat, name  # no second 签收 line for himself
        assert "被反馈人签收" in flat, name


def test_without_a_principal_the_sheet_names_the_office(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round, tmp_path: Path
) -> None:
    operations.remove_subject(sample_round, th.subject(sample_round, PRINCIPAL), actor="test")
    db.session.commit()
    vote(sample_round)
    auth.login("viewer")
    _, flat = _sheet(client, sample_round, MEMBER, tmp_path)
    assert "并送班子“第一责任人”（本单位党组（党委）主要负责人）" in flat
    assert "张三（局长）" not in flat


# --- a document, not a printout --------------------------------------------------------


def test_sheet_reads_as_a_document(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    # closed at 17:30 UTC on 30 November: 1 December in Beijing
    voted.closed_at = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)
    db.session.commit()
    auth.login("viewer")
    text, flat = _sheet(client, voted, MEMBER, tmp_path)
    assert text.lstrip().startswith("内部资料")
    assert "内部资料注意保存" in flat
    assert "兰州市局" in text.splitlines()[2] or "兰州市局" in flat[:40]
    assert "李四党风廉政建设民主测评结果反馈单" in flat
    assert voted.title.startswith("2026年度")
    assert flat.count("2026年度") == 1  # the round's title has the year: not printed twice
    assert "测评时间2026年12月1日" in flat
    assert "反馈单位（盖章）：兰州市局" in flat
    assert "等次规则：本系统默认规则" in flat and "来源：" in flat
    assert "班子成员：不称职：不称职票占有效票≥1/3" in flat  # this form's thresholds
    assert "领导班子：" not in flat  # and no other form's
    assert "测评有效" in flat


def test_issuing_body_of_a_superior_spot_check_is_the_parent_unit(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    voted.kind = "上级抽测"
    voted.title = "党风廉政建设责任制民主测评"  # no year in the title: the year is added once
    db.session.commit()
    auth.login("viewer")
    _, flat = _sheet(client, voted, TEAM, tmp_path)
    assert "反馈单位（盖章）：甘肃省局" in flat
    assert "2026年度党风廉政建设责任制民主测评" in flat and flat.count("2026年度") == 1
    assert "集中·上级抽测" in flat


def test_no_digest_in_the_body_only_a_short_seal_reference(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    auth.login("organiser")
    path = _pdf(client, f"/rounds/{voted.id}/feedback.pdf", tmp_path)
    entry = db.session.execute(
        db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one()
    assert entry.action == "report.feedback"
    text = pdf_text(path)
    flat = re.sub(r"\s+", "", text)
    assert not re.search(r"[0-9a-f]{64}", text)
    assert "SHA-256" not in text and "精确分数" not in flat and "审计日志链头" not in flat
    assert voted.seal is not None
    assert flat.count(f"封存编号{voted.seal[:12]}") == 5
    assert flat.count(f"审计日志第{entry.id}条") == 5
    # the full seal and the audit head (including this download) are in the metadata
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    assert voted.seal in info.stdout
    assert str(audit.head_of(entry)) in info.stdout


# --- figures ---------------------------------------------------------------------------


def test_raw_counts_and_shares_match_the_hand_count(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    auth.login("viewer")
    # 市局领导班子: 优秀 3+6, 合格 20, 不合格 4, 弃权 10 (test_figures_match_hand_count)
    text, flat = _sheet(client, voted, TEAM, tmp_path)
    assert _row(text, "优秀", "9", "27.27%")  # 9/33
    assert _row(text, "合格", "20", "60.61%")  # 20/33
    assert _row(text, "不合格", "4", "12.12%")  # 4/33
    assert _row(text, "弃权", "10", "不计入")
    assert _row(text, "有效票", "33", "100.00%")
    assert _row(text, "优秀率", "27.27%", "满意率", "87.88%")  # 9/33, 29/33
    assert "测评等次：合格" in flat
    assert "排名" not in flat  # alone in its form: no rank
    assert "加权" not in flat and "未加权" not in flat

    # 张三: 优秀 23, 称职 6, 基本称职 10, 不称职 4 of 43 valid
    text, flat = _sheet(client, voted, PRINCIPAL, tmp_path)
    assert _row(text, "优秀", "23", "53.49%")
    assert _row(text, "称职", "6", "13.95%")
    assert _row(text, "基本称职", "10", "23.26%")
    assert _row(text, "不称职", "4", "9.30%")
    assert _row(text, "弃权", "0", "不计入")
    assert _row(text, "有效票", "43", "100.00%")
    assert "满意率67.44%" in flat  # 29/43
    assert "测评等次：优秀" in flat

    # 张三（廉洁自律）: 好 19, 中 20, 差 4
    text, flat = _sheet(client, voted, INTEGRITY, tmp_path)
    assert _row(text, "好", "19", "44.19%") and _row(text, "中", "20", "46.51%")
    assert _row(text, "差", "4", "9.30%") and "测评等次：中" in flat


def test_rank_printed_only_when_the_form_ranks(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round, tmp_path: Path
) -> None:
    operations.add_subject(
        sample_round, actor="test", name="王五", form_id="gansu-member", post="副局长", scope=None
    )
    db.session.commit()
    th.open_round(sample_round)
    th.cast(sample_round, "一般干部", {TEAM: "合格", MEMBER: "优秀", "王五": "称职"}, times=10)
    db.session.commit()
    th.close_round(sample_round)
    result = sealed_result(sample_round)
    member = result.subject(th.subject(sample_round, MEMBER).id)
    assert member.rank == 1 and member.ranked_in_form == 2
    auth.login("viewer")
    _, flat = _sheet(client, sample_round, MEMBER, tmp_path)
    assert "排名：第1名（同一测评表共2个测评对象）" in flat
    _, flat = _sheet(client, sample_round, "王五", tmp_path)
    assert "排名：第2名（同一测评表共2个测评对象）" in flat
    _, flat = _sheet(client, sample_round, TEAM, tmp_path)
    assert "排名" not in flat


def test_weighted_sheet_labels_weighted_rates_beside_raw_ones(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round, tmp_path: Path
) -> None:
    for name, weight in (("班子成员", "1/5"), ("中层干部", "2/5"), ("一般干部", "2/5")):
        th.stratum(sample_round, name).weight = weight
    db.session.commit()
    vote(sample_round)
    auth.login("viewer")
    text, flat = _sheet(client, sample_round, MEMBER, tmp_path)
    # 李四: 优秀 20, 称职 7, 基本称职 6 of 33 valid; weighted 满意率 47/65, graded 称职
    assert _row(text, "优秀", "20", "60.61%", "40.00%")
    assert _row(text, "称职", "7", "21.21%", "32.31%")
    assert "占有效票（未加权）" in flat and "加权比例" in flat
    assert "优秀率（加权）40.00%优秀率（未加权）60.61%" in flat
    assert "满意率（加权）72.31%满意率（未加权）81.82%" in flat
    assert "测评等次：称职" in flat
    assert "加权说明：各类别权重为班子成员1/5、中层干部2/5、一般干部2/5" in flat
    result = sealed_result(sample_round)
    warnings = weight_warnings(result, result.subject(th.subject(sample_round, MEMBER).id))
    assert warnings
    for line in warnings:
        assert re.sub(r"\s+", "", line) in flat


# --- 评价意见 and 整改要求 -------------------------------------------------------------


def test_typed_notes_are_printed_and_audited(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    auth.login("organiser")
    page = client.get(_notes_url(voted, MEMBER))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="viewport"' in html and 'name="csrf_token"' in html
    assert 'name="opinion"' in html and 'name="rectification"' in html
    response = _post_notes(client, voted, MEMBER, OPINION, RECTIFICATION)
    assert response.status_code == 303
    member = th.subject(voted, MEMBER)
    assert response.headers["Location"].endswith(f"/rounds/{voted.id}/results/{member.id}")
    db.session.expire_all()
    assert (member.opinion, member.rectification) == (OPINION, RECTIFICATION)
    entry = db.session.execute(
        db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one()
    assert entry.action == "feedback.notes" and entry.actor == "organiser"
    assert entry.details == {"round_id": voted.id, "subject": MEMBER}
    results = client.get(f"/rounds/{voted.id}/results/{member.id}").get_data(as_text=True)
    assert "已保存“李四”的评价意见和整改要求" in results
    assert "填写评价意见和整改要求" in results  # the link on the results page

    text, flat = _sheet(client, voted, MEMBER, tmp_path)
    assert "该同志认真履行“一岗双责”，" in text and "廉洁自律情况良好。" in text
    assert "二、评价意见该同志认真履行" in flat
    assert "三、整改要求进一步加强对分管科室的日常监督。" in flat
    # another subject's sheet is untouched: its fields stay blank for handwriting
    _, other = _sheet(client, voted, TEAM, tmp_path)
    assert "二、评价意见三、整改要求反馈单位" in other and "一岗双责" not in other
    # saving the same text again changes nothing and writes no entry
    last = db.select(db.func.max(AuditEntry.id))
    before = db.session.execute(last).scalar_one()
    _post_notes(client, voted, MEMBER, OPINION, RECTIFICATION)
    assert db.session.execute(last).scalar_one() == before


def test_notes_refused_before_close_and_after_archiving(
    client: FlaskClient, auth: AuthActions, users: dict, sample_round: Round
) -> None:
    auth.login("organiser")
    member = th.subject(sample_round, MEMBER)
    assert client.get(_notes_url(sample_round, MEMBER)).status_code == 409  # draft
    th.open_round(sample_round)
    res = client.get(_notes_url(sample_round, MEMBER))
    assert res.status_code == 409 and "测评结束" in res.get_data(as_text=True)
    with pytest.raises(StateError):
        save_feedback_notes(sample_round, member, OPINION, "", "test")
    db.session.rollback()
    assert member.opinion == ""

    vote_rest(sample_round)
    assert _post_notes(client, sample_round, MEMBER, OPINION, "").status_code == 303
    lifecycle.archive_round(sample_round, actor="test")
    db.session.commit()
    page = client.get(_notes_url(sample_round, MEMBER))
    assert page.status_code == 200  # read only: what the archive keeps
    html = page.get_data(as_text=True)
    assert "已归档" in html and "一岗双责" in html and "<form" not in html.split("<main", 1)[1]
    token = csrf_token(client, f"/rounds/{sample_round.id}/results/{member.id}")
    res = client.post(
        _notes_url(sample_round, MEMBER),
        data={"opinion": "改过的意见", "rectification": "", "csrf_token": token},
    )
    assert res.status_code == 409
    assert "廉政档案保存的是归档时填写的评价意见和整改要求" in res.get_data(as_text=True)
    with pytest.raises(StateError, match="已归档"):
        save_feedback_notes(sample_round, member, "改过的意见", "", "test")
    db.session.rollback()
    db.session.expire_all()
    assert member.opinion == OPINION


def vote_rest(rnd: Round) -> None:
    """Cast the votes of ``vote`` into an already open round and close it."""
    th.cast(rnd, "一般干部", {TEAM: "合格", MEMBER: "优秀"}, times=10)
    db.session.commit()
    th.close_round(rnd)


def test_viewers_and_other_units_may_not_edit_notes(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round
) -> None:
    url = _notes_url(voted, MEMBER)
    assert client.get(url).status_code in (302, 401)
    auth.login("viewer")
    assert client.get(url).status_code == 403
    token = csrf_token(client, f"/rounds/{voted.id}/results")
    res = client.post(url, data={"opinion": "x", "rectification": "", "csrf_token": token})
    assert res.status_code == 403
    page = client.get(f"/rounds/{voted.id}/results/{th.subject(voted, MEMBER).id}")
    assert "填写评价意见和整改要求" not in page.get_data(as_text=True)
    auth.logout()
    auth.login("other")  # 天水市局
    assert client.get(url).status_code == 404
    assert client.get(f"/rounds/{voted.id}/results/999999/feedback-notes").status_code == 404
    db.session.expire_all()
    assert th.subject(voted, MEMBER).opinion == ""


def test_notes_are_length_capped_and_need_csrf(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round
) -> None:
    auth.login("organiser")
    res = _post_notes(client, voted, MEMBER, "长" * (MAX_NOTE_CHARS + 1), "")
    assert res.status_code == 400
    assert f"不能超过 {MAX_NOTE_CHARS} 字" in res.get_data(as_text=True)
    res = client.post(_notes_url(voted, MEMBER), data={"opinion": "无令牌", "rectification": ""})
    assert res.status_code == 400
    db.session.expire_all()
    assert th.subject(voted, MEMBER).opinion == ""
    assert not db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "feedback.notes")
    ).first()


# --- one page per subject --------------------------------------------------------------


def test_one_page_per_subject_even_with_full_notes(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    auth.login("organiser")
    assert len(voted.subjects) == 5
    path = _pdf(client, f"/rounds/{voted.id}/feedback.pdf", tmp_path)
    assert pdf_pages(path) == 5
    for page, s in enumerate(voted.subjects, start=1):
        flat = re.sub(r"\s+", "", pdf_text(path, first=page, last=page))
        assert f"{s.name}党风廉政建设民主测评结果反馈单" in flat
        assert flat.count("党风廉政建设民主测评结果反馈单") == 1
    full = ("意见" * MAX_NOTE_CHARS)[:MAX_NOTE_CHARS]
    for name in (TEAM, PRINCIPAL):
        assert _post_notes(client, voted, name, full, full).status_code == 303
    path = _pdf(client, f"/rounds/{voted.id}/feedback.pdf", tmp_path)
    assert pdf_pages(path) == 5
    unit = db.session.execute(db.select(Unit).where(Unit.name == "兰州市局")).scalar_one()
    assert unit.parent is not None and unit.parent.name == "甘肃省局"


def test_a_shrunk_sheet_keeps_its_tables_as_wide_as_its_text(
    client: FlaskClient, auth: AuthActions, users: dict, voted: Round, tmp_path: Path
) -> None:
    """A sheet too long for one page is drawn smaller; its tables are set as wide as its
    paragraphs then are, so the printed page keeps one right edge (not tables a sixth
    narrower than the text around them)."""
    auth.login("organiser")
    full = ("意见" * MAX_NOTE_CHARS)[:MAX_NOTE_CHARS]
    assert _post_notes(client, voted, PRINCIPAL, full, full).status_code == 303
    for name in (PRINCIPAL, MEMBER):  # shrunk, and as it is
        path = _pdf(
            client,
            f"/rounds/{voted.id}/results/{th.subject(voted, name).id}/feedback.pdf",
            tmp_path,
        )
        assert pdf_pages(path) == 1
        words = subprocess.run(
            ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        boxes = re.findall(
            r'xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)<', words
        )
        text_right = max(float(x1) for _x0, x1, _w in boxes)
        # the rates and shares are right-aligned in the tables' last columns
        table_right = max(float(x1) for _x0, x1, w in boxes if re.fullmatch(r"\d+\.\d\d%", w))
        assert text_right - table_right < 16, (name, text_right, table_right)
