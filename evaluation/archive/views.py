"""廉政档案 pages: search, a timeline per person and per unit, flags, exports, combined feedback.

Views parse, call one operation from ``evaluation.archive.entries`` or ``queries`` and render.
Everyone logged in may read the archive of their own units; organisers and admins may add
correction notes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from evaluation import audit
from evaluation.accounts.access import check_person_change, roles_required, visible_units
from evaluation.accounts.units import can_see, subtree_clause
from evaluation.archive import export as archive_export
from evaluation.archive import queries
from evaluation.archive import rules as archive_rules
from evaluation.archive.accountability import unit_choice, unit_rules
from evaluation.archive.charts import trend_chart_png
from evaluation.archive.entries import MAX_REASON, annotate, paper_text
from evaluation.ballot_forms import SHORT_FORM_NAMES
from evaluation.errors import NotFound
from evaluation.extensions import db
from evaluation.models import ArchiveEntry, Role, Unit
from evaluation.rounds.operations import change_person
from evaluation.transactions import write_transaction
from evaluation.web import safe_filename

bp = Blueprint("archive", __name__, url_prefix="/archive")

# Flags listed per page of /archive/flags (a province has hundreds in force).
FLAGS_PER_PAGE = 100

RULE_LABELS = {
    archive_rules.INTEGRITY: "廉洁自律测评",
    archive_rules.TEAM: "领导班子测评",
    archive_rules.TRUST: "信任票",
}


class AnnotationForm(FlaskForm):
    """添加更正说明: which entry, and why."""

    entry_id = SelectField(
        "档案记录",
        coerce=int,
        validators=[DataRequired("请选择档案记录")],
        invalid_value_message="请选择本页列出的档案记录",
        invalid_choice_message="请选择本页列出的档案记录",
    )
    reason = TextAreaField(
        "更正说明（写明更正内容和理由）",
        validators=[
            DataRequired("请填写更正说明"),
            Length(max=MAX_REASON, message=f"不能超过 {MAX_REASON} 字"),
        ],
    )


def _root() -> Unit | None:
    return queries.user_root(current_user)


def _may_annotate() -> bool:
    return bool(current_user.role in (Role.ORGANISER, Role.ADMIN))


def _entry_choices(entries: list[ArchiveEntry]) -> list[tuple[int, str]]:
    return [
        (
            e.id,
            f"{e.year} 年 · {e.figures.get('round_title', '')} · {e.subject_name}"
            f"（{e.figures.get('form_title', e.form_id)}）",
        )
        for e in reversed(entries)
    ]


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"short_form": lambda form_id, title: SHORT_FORM_NAMES.get(form_id, title)}


@bp.app_template_filter("archive_percent")
def _percent(value: str | None) -> str:
    """An exact "p/q" share as a percentage with two decimals ("—" when there is none)."""
    return archive_export.percent_text(value)


@bp.app_template_filter("archive_paper")
def _paper(figures: dict[str, Any] | None) -> str:
    """An entry's 纸质票 and 废票 in words ("" for an entry without paper ballots)."""
    return paper_text(figures or {})


@bp.app_template_filter("archive_score")
def _score(value: str | None) -> str:
    """An exact "p/q" score with two decimals ("—" when there is none)."""
    return archive_export.score_text(value)


@bp.route("")
@login_required
def search() -> Any:
    """Search cadres by name or staff number, and units by name."""
    query = request.args.get("q", "").strip()[:100]
    result = queries.search(_root(), query)
    return render_template("archive/search.html", query=query, result=result)


class PersonChangeForm(FlaskForm):
    """修改职务或调动: the explicit, audited change of a cadre's record."""

    post = StringField("职务", validators=[Length(max=200, message="职务不能超过 200 字")])
    unit_id = SelectField(
        "所在单位",
        coerce=int,
        validators=[DataRequired("请选择单位")],
        invalid_value_message="请从列表中选择单位",
        invalid_choice_message="请从列表中选择单位",
    )


def _change_form(person: Any, formdata: Any = None) -> PersonChangeForm | None:
    """The change form, for an organiser or admin who sees the cadre's unit."""
    if not _may_annotate() or not can_see(current_user, person.unit):
        return None
    form = PersonChangeForm(formdata=formdata, post=person.post, unit_id=person.unit_id)
    form.unit_id.choices = [SelectChoice(u.id, u.path) for u in visible_units(current_user)]
    return form


def _person_page(
    person_id: int,
    form: AnnotationForm | None = None,
    status: int = 200,
    change_form: PersonChangeForm | None = None,
) -> Any:
    root = _root()
    person = queries.get_person(person_id, root)
    timeline = queries.person_timeline(person, root)
    if form is None and _may_annotate():
        form = AnnotationForm()
    if form is not None:
        form.entry_id.choices = _entry_choices(timeline.entries)
    return (
        render_template(
            "archive/person.html",
            person=person,
            open_rounds=queries.rounds_in_scope(timeline.entries, root),
            unit_visible=queries.in_scope(person.unit, root),
            timeline=timeline,
            change_form=change_form or _change_form(person),
            form=form,
            rule_labels=RULE_LABELS,
            choice=unit_choice(person.unit),
        ),
        status,
    )


@bp.route("/person/<int:person_id>")
@login_required
def person(person_id: int) -> Any:
    """A cadre's timeline: every year's entries, the trend chart, flags and notes."""
    return _person_page(person_id)


@bp.route("/person/<int:person_id>/trend.png")
@login_required
def person_trend(person_id: int) -> Response:
    """The cadre's 满意率 and 信任率 by year, as a PNG."""
    root = _root()
    person = queries.get_person(person_id, root)
    timeline = queries.person_timeline(person, root)
    png = trend_chart_png(
        timeline, title=f"{person.name} 历年测评趋势", config=unit_rules(person.unit)
    )
    audit.record_download(current_user.username, "archive.chart", person_id=person.id)
    return _png(png)


@bp.route("/person/<int:person_id>/annotate", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def annotate_person(person_id: int) -> Any:
    """Append a correction note to one of the cadre's entries."""
    root = _root()
    person = queries.get_person(person_id, root)
    timeline = queries.person_timeline(person, root)
    form = AnnotationForm()
    form.entry_id.choices = _entry_choices(timeline.entries)
    if not form.validate_on_submit():
        return _person_page(person_id, form, 400)
    entry = next(e for e in timeline.entries if e.id == form.entry_id.data)
    with write_transaction():
        annotate(entry, author=current_user.username, reason=form.reason.data or "")
    return redirect(url_for("archive.person", person_id=person.id, _anchor=f"entry-{entry.id}"))


@bp.route("/person/<int:person_id>/change", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def change_person_record(person_id: int) -> Any:
    """修改职务或调动 (the only way a cadre's 职务 or unit changes), audited."""
    person = queries.get_person(person_id, _root())
    form = _change_form(person, request.form)
    if form is None:
        raise NotFound("干部不存在或不在您的管辖范围内")
    if not form.validate_on_submit():
        return _person_page(person_id, status=400, change_form=form)
    target = db.session.get(Unit, form.unit_id.data)
    assert target is not None  # a choice of visible_units
    with write_transaction():
        check_person_change(current_user, person.unit, target)
        changed = change_person(
            person, post=form.post.data or "", unit=target, actor=current_user.username
        )
    flash("已修改干部的职务或单位，并记入审计日志。" if changed else "没有改动。", "success")
    return redirect(url_for("archive.person", person_id=person.id))


def _unit_page(unit_id: int, form: AnnotationForm | None = None, status: int = 200) -> Any:
    root = _root()
    unit = queries.get_unit(unit_id, root)
    timeline = queries.unit_timeline(unit, root)
    cadres = queries.unit_cadres(unit, root)
    # Its own subjects only: the subtree's flags are one link away (the page stays the size of
    # the unit's own history, however large the tree beneath it).
    flags = queries.with_entries(queries.current_flags_under(root, unit, subtree=False))
    feedback_years = queries.feedback_years(unit, root)
    children = list(
        db.session.execute(
            db.select(Unit).where(Unit.parent_id == unit.id).order_by(Unit.name)
        ).scalars()
    )
    if form is None and _may_annotate() and timeline.entries:
        form = AnnotationForm()
    if form is not None:
        form.entry_id.choices = _entry_choices(timeline.entries)
    return (
        render_template(
            "archive/unit.html",
            unit=unit,
            open_rounds=queries.rounds_in_scope(timeline.entries, root),
            timeline=timeline,
            cadres=cadres,
            flags=flags,
            feedback_years=feedback_years,
            children=children,
            form=form,
            rule_labels=RULE_LABELS,
            choice=unit_choice(unit),
        ),
        status,
    )


@bp.route("/unit/<int:unit_id>")
@login_required
def unit(unit_id: int) -> Any:
    """A unit's timeline: its team and discipline organ by year, its cadres, its flags."""
    return _unit_page(unit_id)


@bp.route("/unit/<int:unit_id>/trend.png")
@login_required
def unit_trend(unit_id: int) -> Response:
    """The unit team's 满意率 and 信任率 by year, as a PNG."""
    root = _root()
    unit = queries.get_unit(unit_id, root)
    timeline = queries.unit_timeline(unit, root)
    png = trend_chart_png(timeline, title=f"{unit.name} 历年测评趋势", config=unit_rules(unit))
    audit.record_download(current_user.username, "archive.chart", unit=unit.path)
    return _png(png)


@bp.route("/unit/<int:unit_id>/annotate", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def annotate_unit(unit_id: int) -> Any:
    """Append a correction note to one of the unit's entries."""
    root = _root()
    unit = queries.get_unit(unit_id, root)
    timeline = queries.unit_timeline(unit, root)
    form = AnnotationForm()
    form.entry_id.choices = _entry_choices(timeline.entries)
    if not form.validate_on_submit():
        return _unit_page(unit_id, form, 400)
    entry = next(e for e in timeline.entries if e.id == form.entry_id.data)
    with write_transaction():
        annotate(entry, author=current_user.username, reason=form.reason.data or "")
    return redirect(url_for("archive.unit", unit_id=unit.id, _anchor=f"entry-{entry.id}"))


@bp.route("/flags")
@login_required
def flags() -> Any:
    """Every flag still in force under the user's unit tree (or a chosen part of it)."""
    root = _root()
    tree = None
    if (unit_id := _scope_arg("unit", "单位")) is not None:
        tree = queries.get_unit(unit_id, root)
    units_q = db.select(Unit).order_by(Unit.path)
    if root is not None:
        units_q = units_q.where(subtree_clause(Unit.path, root))
    flags = queries.current_flags_under(root, tree)
    pages = max(1, -(-len(flags) // FLAGS_PER_PAGE))
    page = min(max(1, _id_arg("page") or 1), pages)
    shown = flags[(page - 1) * FLAGS_PER_PAGE : page * FLAGS_PER_PAGE]
    return render_template(
        "archive/flags.html",
        flags=queries.with_entries(shown),
        total=len(flags),
        first=(page - 1) * FLAGS_PER_PAGE + 1,
        page=page,
        pages=pages,
        tree=tree,
        units=list(db.session.execute(units_q).scalars()),
        rule_labels=RULE_LABELS,
    )


@bp.route("/export.xlsx")
@login_required
def export() -> Response:
    """Download the archive (of a unit tree or one cadre) as a workbook."""
    root = _root()
    tree = person = None
    if (unit_id := _scope_arg("unit", "单位")) is not None:
        tree = queries.get_unit(unit_id, root)
    if (person_id := _scope_arg("person", "干部")) is not None:
        person = queries.get_person(person_id, root)
    # Recorded first: the workbook carries the audit log's head that includes this export.
    head = audit.record_download(
        current_user.username,
        "archive.export",
        unit=tree.path if tree else None,
        person_id=person.id if person else None,
        entries=queries.count_visible(root, person=person, tree=tree),
    )
    # Written to a temporary file as the entries stream in, then sent from it: a province's
    # archive costs the worker no more memory than a county's.
    out = tempfile.TemporaryFile()
    try:
        archive_export.write_workbook(
            out,
            archive_export.archive_contents(root, tree=tree, person=person),
            audit_head=head,
            scope=archive_export.scope_text(root, tree, person),
        )
        out.seek(0)
    except BaseException:
        out.close()
        raise
    name = "廉政档案.xlsx"
    if person is not None:
        name = f"廉政档案-{person.name}.xlsx"
    elif tree is not None:
        name = f"廉政档案-{tree.name}.xlsx"
    return _download(out, name, archive_export.XLSX_MIME)


@bp.route("/unit/<int:unit_id>/feedback/<int:year>")
@login_required
def unit_feedback(unit_id: int, year: int) -> Response:
    """One PDF with the feedback sheets of all the unit's cadres for a year (第一责任人)."""
    root = _root()
    unit = queries.get_unit(unit_id, root)
    if year not in queries.feedback_years(unit, root):  # refused before it is recorded
        raise NotFound(f"{unit.path} {year} 年度没有干部的归档测评结果")
    head = audit.record_download(
        current_user.username, "archive.unit_feedback", unit=unit.path, year=year
    )
    data = archive_export.unit_feedback_pdf(unit, year, root, audit_head=head)
    return _download(data, f"{year}年度{unit.name}干部测评结果反馈汇总.pdf", "application/pdf")


def _id_arg(name: str) -> int | None:
    """A numeric query argument (``?unit=3``) as an id; None when absent or not a number.

    A number too long for any id becomes 0, which names nothing (a 404, not a 500).
    """
    value = request.args.get(name, "")
    if not value.isdecimal():
        return None
    return int(value) if len(value) <= 19 else 0


def _scope_arg(name: str, what: str) -> int | None:
    """The id of a scope argument (``?unit=3``, ``?person=7``): None when absent or empty;
    anything else that is not an id is a 404 naming what was not found — never a silent
    export or list of everything."""
    if not request.args.get(name, ""):
        return None
    value = _id_arg(name)
    if not value:
        raise NotFound(f"{what}不存在")
    return value


def _png(data: bytes) -> Response:
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _download(data: bytes | IO[bytes], filename: str, mimetype: str) -> Response:
    """An attachment: bytes, or an open file sent in chunks (and closed once sent)."""
    filename = safe_filename(filename, "archive")
    if isinstance(data, bytes):
        response = Response(data, mimetype=mimetype)
    else:
        size = os.fstat(data.fileno()).st_size
        response = Response(_chunks(data), mimetype=mimetype, direct_passthrough=True)
        response.content_length = size
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"archive{_suffix(filename)}\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _chunks(file: IO[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    """The file's bytes in chunks; the file is closed once they are sent (or the client has
    gone: the server closes the iterator)."""
    try:
        while chunk := file.read(size):
            yield chunk
    finally:
        file.close()


def _suffix(filename: str) -> str:
    return filename[filename.rfind(".") :] if "." in filename else ""
