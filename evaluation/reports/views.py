"""测评结果 pages: the round summary, a page per subject, charts, workbook and feedback downloads.

Every download (charts, workbook, feedback sheets) is recorded in the audit log, and the
workbook and feedback sheets carry the log's head that includes that entry (SPEC §10).
Results exist only after close (SPEC §4): for a draft or open round every page here answers
409 with a Chinese page saying so, and nothing about votes is computed. Every page is scoped
to the user's units (``accounts.access.visible_round``); viewers may read them.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template, send_file
from flask_login import current_user, login_required

from evaluation import audit
from evaluation.accounts.access import roles_required, visible_round
from evaluation.errors import NotFound
from evaluation.fonts import FontMissing
from evaluation.models import Role, Round
from evaluation.reports import paper
from evaluation.reports.charts import (
    ROUND_CHARTS,
    item_profile_png,
    rank_text,
    round_chart,
    short_form_name,
    subject_png,
)
from evaluation.reports.feedback import feedback_pdf
from evaluation.reports.notes import notes_page
from evaluation.reports.wording import (
    pool_notes,
    pooling_text,
    rule_set_lines,
    rules_text,
    validity_text,
    weight_warnings,
    weighting_text,
)
from evaluation.reports.workbook import (
    write_workbook,
)
from evaluation.rounds.state import round_rule_set
from evaluation.tally.aggregate import sealed_result
from evaluation.tally.core import (
    SubjectResult,
    TallyResult,
    decimal_text,
    fraction_text,
    percent,
    unweighted,
)
from evaluation.tally.seal import ALGORITHM
from evaluation.web import safe_filename

bp = Blueprint("reports", __name__)


@bp.errorhandler(FontMissing)
def _font_missing(error: FontMissing) -> Any:
    """No CJK font on the server: say so, with the fix, instead of drawing boxes."""
    return (
        render_template("errors/error.html", status=503, title="缺少中文字体", message=str(error)),
        503,
    )


def _closed(round_id: int) -> tuple[Round, TallyResult]:
    """The round (scoped to the user) and its sealed result; 409 unless closed or archived."""
    rnd = visible_round(round_id)
    return rnd, sealed_result(rnd)


def _subject(result: TallyResult, subject_id: int) -> SubjectResult:
    try:
        return result.subject(subject_id)
    except KeyError:
        raise NotFound(f"测评对象 {subject_id} 不在本测评活动中") from None


def _downloaded(action: str, rnd: Round, **details: Any) -> audit.ChainHead:
    """Record a download of the round's results (who, what, which round; never content)."""
    return audit.record_download(current_user.username, action, round_id=rnd.id, **details)


def _png(data: bytes) -> Response:
    """A chart response (charts are drawn per request from the sealed result)."""
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def download_names(rnd: Round, what: str, subject: SubjectResult | None = None) -> tuple[str, str]:
    """(file name, ASCII fallback) of a download: "2026-兰州市局-年度测评-测评结果.xlsx" and
    "2026-round-12-results.xlsx"; a feedback sheet "…-反馈单-张三.pdf" /
    "2026-round-12-feedback-34.pdf", all of a round's sheets "…-反馈单.pdf". The year is not
    repeated when the round's title starts with it.

    ``what`` is "results" (the workbook) or "feedback".
    """
    year = str(rnd.year)
    title = rnd.title.strip()
    parts = [title] if title.startswith(year) else [year, title]
    parts.insert(1 if len(parts) == 2 else 0, rnd.unit.name)
    if what == "results":
        parts.append("测评结果")
        ext, tail = "xlsx", "results"
    else:
        parts.append("反馈单")
        ext = "pdf"
        tail = "feedback" if subject is None else f"feedback-{subject.subject_id}"
        if subject is not None:
            parts.append(subject.name)
    name = safe_filename("-".join(p.strip() for p in parts if p.strip()), "download")
    return f"{name}.{ext}", f"{rnd.year}-round-{rnd.id}-{tail}.{ext}"


def _named(response: Response, names: tuple[str, str]) -> Response:
    """Set the download's name: a readable ASCII ``filename`` and the UTF-8 ``filename*``."""
    name, fallback = names
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    )
    return response


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "rank_text": rank_text,
        "percent": percent,
        "fraction_text": fraction_text,
        "decimal_text": decimal_text,
        "short_form_name": short_form_name,
        "unweighted": unweighted,
    }


@bp.route("/rounds/<int:round_id>/results")
@login_required
def round_results(round_id: int) -> Any:
    """The round summary: table, charts, turnout, validity and the seal."""
    rnd, result = _closed(round_id)
    return render_template(
        "reports/round.html",
        rnd=rnd,
        result=result,
        charts=[(name, title) for name, (title, _) in ROUND_CHARTS.items()],
        validity=validity_text(result),
        weighting=weighting_text(result),
        warnings=weight_warnings(result),
        pooling=pooling_text(result),
        pools=pool_notes(result),
        rules=rules_text(result),
        rule_set=rule_set_lines(round_rule_set(rnd), [s.form for s in result.subjects]),
        algorithm=ALGORITHM,
        has_paper=paper.has_paper(result),
        paper_lines=paper.round_paper_lines(result),
    )


@bp.route("/rounds/<int:round_id>/results/<int:subject_id>")
@login_required
def subject_results(round_id: int, subject_id: int) -> Any:
    """One subject: grades, rates, strata (small strata pooled, named) and items."""
    rnd, result = _closed(round_id)
    subject = _subject(result, subject_id)
    return render_template(
        "reports/subject.html",
        rnd=rnd,
        result=result,
        s=subject,
        validity=validity_text(result),
        weighting=weighting_text(result),
        warnings=weight_warnings(result, subject),
        pooling=pooling_text(result),
        pools=pool_notes(result, subject),
        rules=rules_text(result),
        rule_set=rule_set_lines(round_rule_set(rnd), [subject.form]),
        algorithm=ALGORITHM,
        paper=paper.subject_paper(result, paper.rater_ids(rnd, subject_id)),
    )


@bp.route("/rounds/<int:round_id>/results/charts/<name>.png")
@login_required
def chart(round_id: int, name: str) -> Any:
    """A chart of the round as PNG (等次分布, 满意率排名, 参测情况)."""
    if name not in ROUND_CHARTS:
        abort(404)
    rnd, result = _closed(round_id)
    _downloaded("report.chart", rnd, chart=name)
    return _png(round_chart(result, name, seal=rnd.seal))


@bp.route("/rounds/<int:round_id>/results/<int:subject_id>/chart.png")
@login_required
def subject_chart(round_id: int, subject_id: int) -> Any:
    """The subject's chart as PNG."""
    rnd, result = _closed(round_id)
    subject = _subject(result, subject_id)
    _downloaded("report.chart", rnd, chart="subject", subject_id=subject.subject_id)
    return _png(subject_png(result, subject, seal=rnd.seal))


@bp.route("/rounds/<int:round_id>/results/<int:subject_id>/items.png")
@login_required
def item_chart(round_id: int, subject_id: int) -> Any:
    """The subject's item profile as PNG (404 when the form is not graded item by item)."""
    rnd, result = _closed(round_id)
    subject = _subject(result, subject_id)
    png = item_profile_png(result, subject, seal=rnd.seal)
    if png is None:
        abort(404, "该测评表不逐项评分，没有分项图表。")
    _downloaded("report.chart", rnd, chart="items", subject_id=subject.subject_id)
    return _png(png)


@bp.route("/rounds/<int:round_id>/report.xlsx")
@login_required
def workbook(round_id: int) -> Any:
    """The Excel workbook of SPEC §8."""
    rnd, result = _closed(round_id)
    head = _downloaded("report.workbook", rnd)
    buffer = io.BytesIO()
    write_workbook(rnd, result, buffer, audit_head=head)
    buffer.seek(0)
    names = download_names(rnd, "results")
    response = send_file(
        buffer,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=names[0],
        max_age=0,
    )
    return _named(response, names)


@bp.route("/rounds/<int:round_id>/feedback.pdf")
@login_required
def round_feedback(round_id: int) -> Any:
    """Every subject's feedback sheet in one PDF."""
    rnd, result = _closed(round_id)
    head = _downloaded("report.feedback", rnd, subject_id=None)
    names = download_names(rnd, "feedback")
    response = send_file(
        io.BytesIO(feedback_pdf(rnd, result, audit_head=head)),
        mimetype="application/pdf",
        as_attachment=True,
        download_name=names[0],
        max_age=0,
    )
    return _named(response, names)


@bp.route("/rounds/<int:round_id>/results/<int:subject_id>/feedback.pdf")
@login_required
def subject_feedback(round_id: int, subject_id: int) -> Any:
    """One subject's feedback sheet."""
    rnd, result = _closed(round_id)
    subject = _subject(result, subject_id)
    head = _downloaded("report.feedback", rnd, subject_id=subject.subject_id)
    names = download_names(rnd, "feedback", subject)
    response = send_file(
        io.BytesIO(feedback_pdf(rnd, result, [subject.subject_id], audit_head=head)),
        mimetype="application/pdf",
        as_attachment=True,
        download_name=names[0],
        max_age=0,
    )
    return _named(response, names)


# --- 评价意见 and 整改要求 of a feedback sheet (``evaluation.reports.notes``) -------------


@bp.route("/rounds/<int:round_id>/results/<int:subject_id>/feedback-notes", methods=["GET", "POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def feedback_notes(round_id: int, subject_id: int) -> Any:
    """评价意见 and 整改要求, typed after close and before archiving; viewers may not edit."""
    return notes_page(visible_round(round_id), subject_id, current_user.username)
