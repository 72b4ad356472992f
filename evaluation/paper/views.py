"""纸质票 pages: stacks of returned paper ballots, entered twice by 计票员, compared, resolved.

Only accounts with the 计票 role enter ballots; organisers and admins see the stacks' progress
(never a ballot) and may delete a stack entered wrongly. Each page works with the keyboard
alone: one keystroke per question, Enter to the next (``static/paper.js``; without script,
Tab moves and Enter saves the ballot).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from evaluation.accounts.access import roles_required, visible_round
from evaluation.codes.codes import stratum_chosen
from evaluation.errors import Forbidden, InputError
from evaluation.models import PaperBatch, Role, Round, RoundState
from evaluation.paper import entry as paper_entry
from evaluation.paper.counts import paper_counts
from evaluation.paper.rules import ABSTAIN_STROKE, InvalidRules, is_digit_stroke
from evaluation.transactions import write_transaction, writes

bp = Blueprint("paper", __name__)

CLERKS = (Role.COUNTER,)
WATCHERS = (Role.COUNTER, Role.ORGANISER, Role.ADMIN)


def stroke_text(question: paper_entry.EntryQuestion, stroke: str, rules: InvalidRules) -> str:
    """What a keystroke means for a question, in words."""
    if stroke == ABSTAIN_STROKE:
        return "弃权"
    if is_digit_stroke(stroke) and 1 <= int(stroke) <= len(question.grade_labels):
        return question.grade_labels[int(stroke) - 1]
    rule = rules.question_rule(stroke)
    if rule is None:
        return f"“{stroke}”"
    return f"{rule.label}（{'整张作废' if rule.voids_ballot else '按弃权计'}）"


def mark_text(mark: str, rules: InvalidRules) -> str:
    """What the 票面 keystroke means."""
    rule = rules.ballot_rule(mark)
    return "正常" if rule is None else f"{rule.label}（整张作废）"


def question_meanings(question: paper_entry.EntryQuestion, rules: InvalidRules) -> dict[str, str]:
    """Every keystroke a question accepts, with its meaning (for the page's live echo)."""
    meanings = {str(i): label for i, label in enumerate(question.grade_labels, 1)}
    if question.abstain:
        meanings[ABSTAIN_STROKE] = "弃权"
    for rule in rules.of_scope("question"):
        meanings[rule.stroke] = stroke_text(question, rule.stroke, rules)
    return meanings


def mark_meanings(rules: InvalidRules) -> dict[str, str]:
    """The 票面 keystrokes with their meaning."""
    meanings = {"": "正常"}
    for rule in rules.of_scope("ballot"):
        if rule.stroke:
            meanings[rule.stroke] = mark_text(rule.stroke, rules)
    return meanings


def _strokes(questions: list[paper_entry.EntryQuestion]) -> list[str]:
    """The keystrokes posted, one per line of the form (a line missing makes the list short,
    which ``clean_entry`` refuses: a stale or hand-made form is not read as 未勾选)."""
    return [request.form[f"q{q.index}"] for q in questions if f"q{q.index}" in request.form]


def _position(text: str) -> int | None:
    """A ballot's place in the stack from a form or query ("" or not a number: None)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None


@bp.route("/rounds/<int:round_id>/paper")
@roles_required(*WATCHERS)
def batches(round_id: int) -> Any:
    """The round's stacks being entered, the paper counts per stratum, a new stack."""
    rnd = visible_round(round_id)
    rows = []
    for batch in paper_entry.open_batches(rnd):
        found = paper_entry.differences(batch)
        rows.append(
            {
                "batch": batch,
                "progress": paper_entry.progress(batch),
                "complete": paper_entry.complete(batch),
                "differences": len(found),
            }
        )
    return render_template(
        "paper/batches.html",
        rnd=rnd,
        rows=rows,
        counts={s.id: paper_counts(s.paper) for s in rnd.strata},
        rules=paper_entry.invalid_rules(),
        may_enter=current_user.role in CLERKS,
        may_delete=current_user.role in (Role.ORGANISER, Role.ADMIN),
        max_stack=paper_entry.MAX_STACK,
    )


@bp.route("/rounds/<int:round_id>/paper/batches", methods=["POST"])
@roles_required(*CLERKS)
@writes
def new_batch(round_id: int) -> Any:
    """Start a stack: its stratum and how many ballots it holds."""
    rnd = visible_round(round_id)
    stratum = stratum_chosen(rnd, request.form.get("stratum"))
    batch = paper_entry.create_batch(
        rnd, stratum, request.form.get("count", ""), actor=current_user.username
    )
    flash(
        f"第 {batch.number} 批（{stratum.name}，{batch.count} 张）已建立，请开始录入。", "success"
    )
    return redirect(url_for("paper.enter", round_id=rnd.id, batch_id=batch.id))


def _batch(rnd: Round, batch_id: int, *, lock: bool = False) -> PaperBatch:
    return paper_entry.find_batch(rnd, batch_id, lock=lock)


@bp.route("/rounds/<int:round_id>/paper/<int:batch_id>", methods=["GET", "POST"])
@roles_required(*CLERKS)
def enter(round_id: int, batch_id: int) -> Any:
    """Enter the next ballot of the stack (``?position=n``: enter ballot n again)."""
    if request.method == "POST":
        return _save(round_id, batch_id)
    rnd = visible_round(round_id)
    if rnd.state != RoundState.OPEN:
        flash("测评活动不在进行中，不能录入纸质票。", "warning")
        return redirect(url_for("paper.batches", round_id=rnd.id))
    batch = _batch(rnd, batch_id)
    paper_entry.check_clerk(batch, current_user.username)
    clerk = current_user.username
    asked = _position(request.args.get("position", ""))
    position = asked if asked is not None else paper_entry.next_position(batch, clerk)
    if position is not None and not 1 <= position <= batch.count:
        raise InputError(f"第 {batch.number} 批只有 {batch.count} 张")
    return _entry_page(rnd, batch, position)


def _entry_page(
    rnd: Round,
    batch: PaperBatch,
    position: int | None,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    error_field: str = "",
) -> Any:
    clerk = current_user.username
    mine = next((p.entered for p in paper_entry.progress(batch) if p.clerk == clerk), 0)
    questions = paper_entry.entry_questions(rnd, batch.stratum_id)
    rules = paper_entry.invalid_rules()
    if values is None and position is not None:
        previous = paper_entry.own_entry(batch, clerk, position)
        values = {}
        if previous is not None:
            values = {"mark": previous.mark}
            values.update({f"q{i}": s for i, s in enumerate(previous.strokes)})
    differences = paper_entry.differences(batch) if paper_entry.complete(batch) else []
    return render_template(
        "paper/enter.html",
        rnd=rnd,
        batch=batch,
        position=position,
        entered=mine,
        questions=questions,
        rules=rules,
        values=values or {},
        error=error,
        focus=error_field or "mark",
        differences=len(differences),
        complete=paper_entry.complete(batch),
        q_meanings=question_meanings,
        mark_meanings=mark_meanings,
    ), (422 if error else 200)


def _posted_ballot(round_id: int, batch_id: int) -> tuple[Round, PaperBatch, int]:
    """The round, its stack (locked) and the ballot's place in it that a form posts; 400
    without a readable place."""
    rnd = visible_round(round_id)
    batch = _batch(rnd, batch_id, lock=True)
    position = _position(request.form.get("position", ""))
    if position is None:
        abort(400)
    return rnd, batch, position


def _save(round_id: int, batch_id: int) -> Any:
    with write_transaction():
        rnd, batch, position = _posted_ballot(round_id, batch_id)
        questions = paper_entry.entry_questions(rnd, batch.stratum_id)
        rules = paper_entry.invalid_rules()
        try:
            cleaned = paper_entry.clean_entry(
                request.form.get("mark", ""), _strokes(questions), questions, rules
            )
        except paper_entry.EntryError as exc:
            paper_entry.check_clerk(batch, current_user.username)
            values = {"mark": request.form.get("mark", "")}
            values.update({f"q{q.index}": request.form.get(f"q{q.index}", "") for q in questions})
            return _entry_page(
                rnd, batch, position, values=values, error=exc.message, error_field=exc.field
            )
        number = batch.number
        committed = paper_entry.save_entry(
            rnd, batch, current_user.username, position, cleaned, actor=current_user.username
        )
        differing = len(paper_entry.differences(batch)) if committed is None else 0
    if committed is not None:
        flash(_committed_text(committed), "success")
        return redirect(url_for("paper.batches", round_id=round_id))
    flash(f"第 {number} 批第 {position} 张已保存。", "success")
    if differing:
        flash(f"两位计票员都已录完：有 {differing} 张不一致，请对照原票核定。", "warning")
        return redirect(url_for("paper.resolve", round_id=round_id, batch_id=batch_id))
    return redirect(url_for("paper.enter", round_id=round_id, batch_id=batch_id))


def _committed_text(result: paper_entry.CommitResult) -> str:
    return (
        f"第 {result.number} 批（{result.stratum}）两位计票员录入一致，已放入投票箱："
        f"有效 {result.valid} 张，废票 {result.invalid} 张。"
    )


@bp.route("/rounds/<int:round_id>/paper/<int:batch_id>/resolve", methods=["GET", "POST"])
@roles_required(*CLERKS)
def resolve(round_id: int, batch_id: int) -> Any:
    """The ballots the two clerks read differently, to settle with the paper in hand."""
    if request.method == "POST":
        return _resolve(round_id, batch_id)
    rnd = visible_round(round_id)
    batch = _batch(rnd, batch_id)
    _check_resolver(batch)
    return _resolve_page(rnd, batch)


def _check_resolver(batch: PaperBatch) -> None:
    """Only the stack's own two clerks see its readings (they have the paper in hand)."""
    clerks = [p.clerk for p in paper_entry.progress(batch)]
    if current_user.username not in clerks:
        raise Forbidden(
            f"只有录入第 {batch.number} 批的计票员（{'、'.join(clerks) or '尚无'}）可以核对"
        )


def _resolve_page(rnd: Round, batch: PaperBatch, error: str | None = None) -> Any:
    rules = paper_entry.invalid_rules()
    questions = paper_entry.entry_questions(rnd, batch.stratum_id)
    found = paper_entry.differences(batch)
    return render_template(
        "paper/resolve.html",
        rnd=rnd,
        batch=batch,
        found=found,
        questions=questions,
        rules=rules,
        stroke_text=stroke_text,
        mark_text=mark_text,
        q_meanings=question_meanings,
        mark_meanings=mark_meanings,
        complete=paper_entry.complete(batch),
        clerks=[p.clerk for p in paper_entry.progress(batch)] + ["计票员甲", "计票员乙"],
        error=error,
    ), (422 if error else 200)


def _resolve(round_id: int, batch_id: int) -> Any:
    with write_transaction():
        rnd, batch, position = _posted_ballot(round_id, batch_id)
        _check_resolver(batch)
        questions = paper_entry.entry_questions(rnd, batch.stratum_id)
        try:
            cleaned = paper_entry.clean_entry(
                request.form.get("mark", ""),
                _strokes(questions),
                questions,
                paper_entry.invalid_rules(),
            )
        except paper_entry.EntryError as exc:
            return _resolve_page(rnd, batch, f"第 {position} 张：{exc.message}")
        committed = paper_entry.resolve(rnd, batch, position, cleaned, actor=current_user.username)
    if committed is not None:
        flash(_committed_text(committed), "success")
        return redirect(url_for("paper.batches", round_id=round_id))
    flash(f"第 {position} 张已核定。", "success")
    return redirect(url_for("paper.resolve", round_id=round_id, batch_id=batch_id))


@bp.route("/rounds/<int:round_id>/paper/<int:batch_id>/delete", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
@writes
def delete(round_id: int, batch_id: int) -> Any:
    """Drop a stack not yet in the box (audited, with a reason)."""
    rnd = visible_round(round_id)
    batch = _batch(rnd, batch_id, lock=True)
    number = batch.number
    paper_entry.delete_batch(
        rnd, batch, actor=current_user.username, reason=request.form.get("reason", "")
    )
    flash(f"第 {number} 批纸质票录入已删除，请重新建批录入。", "success")
    return redirect(url_for("paper.batches", round_id=rnd.id))
