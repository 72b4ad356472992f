"""评价意见 and 整改要求 on a feedback sheet (SPEC §8): typed by the organiser before printing.

``save_feedback_notes`` stores them; ``notes_page`` is the page behind
``/rounds/<id>/results/<subject id>/feedback-notes`` (the route in ``evaluation.reports.views``
checks the role and the scope first). They can be typed once the round is closed (its results
are sealed) and until it is archived: archiving copies them into the 廉政档案 with the
figures (``evaluation.archive.entries``), and the archive keeps what was typed then, so an
archived round refuses changes. Each save is one write transaction and one audit entry (who,
which round, which subject — never the text).
"""

from __future__ import annotations

from typing import Any

from flask import render_template, url_for
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from evaluation import audit
from evaluation.errors import InputError, NotFound, StateError
from evaluation.extensions import db
from evaluation.forms import ChineseForm
from evaluation.models import Round, RoundState, Subject
from evaluation.rounds.state import state_label
from evaluation.transactions import write_transaction
from evaluation.web import done

MAX_NOTE_CHARS = 2000
FIELDS = {"opinion": "评价意见", "rectification": "整改要求"}


class FeedbackNotesForm(ChineseForm):
    """评价意见 and 整改要求 of one subject's feedback sheet."""

    opinion = TextAreaField(
        "评价意见",
        validators=[
            Length(max=MAX_NOTE_CHARS, message=f"评价意见不能超过 {MAX_NOTE_CHARS} 字"),
        ],
    )
    rectification = TextAreaField(
        "整改要求",
        validators=[
            Length(max=MAX_NOTE_CHARS, message=f"整改要求不能超过 {MAX_NOTE_CHARS} 字"),
        ],
    )


def _clean(text: str | None) -> str:
    """Line ends normalised, trailing spaces and blank lines at both ends dropped."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def check_editable(rnd: Round) -> None:
    """StateError unless the round is closed: before, no results; after archiving, frozen."""
    if rnd.state == RoundState.ARCHIVED:
        raise StateError(
            f"测评活动“{rnd.title}”已归档：廉政档案保存的是归档时填写的评价意见和整改要求，"
            "不能再修改。"
        )
    if rnd.state != RoundState.CLOSED:
        raise StateError(
            f"测评活动“{rnd.title}”当前为{state_label(rnd.state)}状态：评价意见和整改要求"
            "在测评结束（已封存结果）后、归档前填写。"
        )


def save_feedback_notes(
    rnd: Round, subject: Subject, opinion: str | None, rectification: str | None, actor: str
) -> bool:
    """Store the subject's 评价意见 and 整改要求; return False when nothing changed.

    One write transaction (joins the caller's): the round's state is read again under the
    write lock, so a round archived meanwhile refuses.
    """
    values = {"opinion": _clean(opinion), "rectification": _clean(rectification)}
    too_long = [
        f"{FIELDS[key]}有 {len(text)} 字，超过 {MAX_NOTE_CHARS} 字的上限"
        for key, text in values.items()
        if len(text) > MAX_NOTE_CHARS
    ]
    if too_long:
        raise InputError("未保存：" + "；".join(too_long) + "。")
    if subject.round_id != rnd.id:
        raise InputError("测评对象不属于该测评活动")
    with write_transaction():
        db.session.refresh(rnd)
        db.session.refresh(subject)
        check_editable(rnd)
        if (
            subject.opinion == values["opinion"]
            and subject.rectification == values["rectification"]
        ):
            return False
        subject.opinion = values["opinion"]
        subject.rectification = values["rectification"]
        db.session.flush()
        audit.record(actor, "feedback.notes", round_id=rnd.id, subject=subject.name)
    return True


def notes_form(subject: Subject) -> FlaskForm:
    """The form filled with the subject's notes on GET, with the posted values on POST."""
    form = FeedbackNotesForm()
    if not form.is_submitted():
        form.opinion.data = subject.opinion
        form.rectification.data = subject.rectification
    return form


def round_subject(rnd: Round, subject_id: int) -> Subject:
    """The round's subject with this id; NotFound otherwise."""
    subject = next((s for s in rnd.subjects if s.id == subject_id), None)
    if subject is None:
        raise NotFound(f"测评对象 {subject_id} 不在本测评活动中")
    return subject


def notes_page(rnd: Round, subject_id: int, actor: str) -> Any:
    """GET: the form (read only once archived); POST: save and go back to the subject's results.

    Refused with the 409 page while the round is a draft or open (there are no results yet),
    and on POST once it is archived.
    """
    subject = round_subject(rnd, subject_id)
    archived = rnd.state == RoundState.ARCHIVED
    if not archived:
        check_editable(rnd)
    form = notes_form(subject)
    problems: list[str] = []
    if form.is_submitted():
        if archived:
            check_editable(rnd)
        if form.validate_on_submit():
            try:
                changed = save_feedback_notes(
                    rnd, subject, form.opinion.data, form.rectification.data, actor
                )
            except InputError as exc:
                problems = [exc.message, *exc.problems]
            else:
                target = url_for("reports.subject_results", round_id=rnd.id, subject_id=subject.id)
                if not changed:
                    return done("评价意见和整改要求没有变化。", target)
                return done(
                    f"已保存“{subject.name}”的评价意见和整改要求，下载反馈单时印在单上。",
                    target,
                )
        else:
            problems = ["填写有误，未保存。请按提示修改。"]
    status = 400 if problems else 200
    return (
        render_template(
            "reports/feedback_notes.html",
            rnd=rnd,
            subject=subject,
            form=form,
            archived=archived,
            problems=problems,
            max_chars=MAX_NOTE_CHARS,
        ),
        status,
    )
