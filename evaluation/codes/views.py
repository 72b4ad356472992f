"""发放测评码 and 参测情况: the organiser's code pages, live turnout, and ``flask codes issue``.

Issuing answers the POST with the file itself (PDF slips, CSV, or both in a ZIP): the plaintext
codes go to the organiser once and are kept nowhere on the server — not in the database, not
in ``reports/``, not in a log. A lost batch is voided (with a reason) and a new one issued.
While a round is open, the turnout page shows issued and used codes per stratum, refreshed
by a small same-origin script; nothing about the votes.
"""

from __future__ import annotations

import io
import re
import zipfile
from fractions import Fraction
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from evaluation import formatting
from evaluation.accounts.access import roles_required, visible_round
from evaluation.codes import codes, paper, reconcile
from evaluation.codes.slips import slips_pdf
from evaluation.codes.turnout import SMALL_BATCH, round_turnout
from evaluation.errors import NotFound
from evaluation.extensions import db
from evaluation.models import PaperIssue, Role, Round, RoundState, Stratum
from evaluation.rounds import lifecycle
from evaluation.rounds.state import min_turnout, require_state, state_label
from evaluation.transactions import write_transaction, writes
from evaluation.web import safe_filename

bp = Blueprint("codes", __name__)

FORMATS = {
    "pdf": "PDF 测评码条（打印裁剪）",
    "csv": "CSV（分散测评时发送链接）",
    "zip": "PDF 和 CSV（ZIP）",
}
# Measured on a 2-core machine, used only to animate the progress bar while slips render.
MS_PER_SLIP = 1.0


def _file_stem(rnd: Round, issued: codes.IssuedBatch) -> str:
    number = codes.batch_number(rnd, issued.batch_id)
    return f"测评码-{rnd.id}-{issued.stratum_name}-第{number}批"


def _attachment(data: bytes, filename: str, mimetype: str) -> Response:
    filename = safe_filename(filename, "codes")
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "codes"
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    )
    # Shown once: no cache may keep the codes.
    response.headers["Cache-Control"] = "no-store"
    return response


# --- pages -------------------------------------------------------------------------------------


def _can_issue(rnd: Round) -> bool:
    return rnd.state in (RoundState.DRAFT, RoundState.OPEN)


@bp.route("/rounds/<int:round_id>/codes")
@roles_required(Role.ORGANISER, Role.ADMIN)
def codes_page(round_id: int) -> Any:
    """Issue codes per stratum, list batches (counts only), void a lost batch."""
    rnd = visible_round(round_id)
    turnout = {s.stratum_id: s for s in round_turnout(rnd).strata}
    letters = {s.id: codes.stratum_letter(rnd, s) for s in rnd.strata}
    prints = db.session.execute(
        db.select(PaperIssue).where(PaperIssue.round_id == rnd.id).order_by(PaperIssue.id)
    ).scalars()
    return render_template(
        "codes/codes.html",
        rnd=rnd,
        turnout=turnout,
        batches=codes.batch_summaries(rnd),
        new_batch=request.args.get("new", type=int),
        reconciliation=reconcile.reconcile(rnd),
        paper_prints=[{"issue": p, "serials": _print_range(p, letters)} for p in prints],
        small_batch=SMALL_BATCH,
        formats=FORMATS,
        default_format="csv" if rnd.mode == "分散" else "pdf",
        can_issue=_can_issue(rnd),
        ms_per_slip=MS_PER_SLIP,
        max_batch=codes.MAX_BATCH,
        max_paper=paper.MAX_COPIES,
    )


@bp.route("/rounds/<int:round_id>/codes/issue", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def issue(round_id: int) -> Any:
    """Issue a batch and answer with its file: the only time the codes are shown.

    The codes are made and their slips rendered first (a 20,000-code PDF takes seconds); the
    write lock is taken only to store the hashes, so voters are never kept waiting by a PDF.
    """
    rnd = visible_round(round_id)
    stratum = codes.stratum_chosen(rnd, request.form.get("stratum"))
    fmt = request.form.get("format", "pdf")
    if fmt not in FORMATS:
        fmt = "pdf"
    count = codes.parse_count(request.form.get("count", ""))
    codes.check_can_issue(rnd, stratum)
    confirmation = _over_planned(rnd, stratum, count)
    if confirmation:
        return _confirm_page(rnd, confirmation, "codes.issue", request.form)
    plain = codes.new_codes(count)
    # The serials the slips will carry; checked again under the write lock (another issue
    # to the same stratum in between makes the slips be drawn again with the right ones).
    letter = codes.stratum_letter(rnd, stratum)
    first = codes.next_serial(stratum)
    draft = codes.IssuedBatch(0, rnd.title, stratum.name, plain, letter, first)
    pdf = slips_pdf(draft) if fmt in ("pdf", "zip") else b""
    csv = codes.csv_text(draft).encode("utf-8") if fmt in ("csv", "zip") else b""
    stratum_id = stratum.id
    with write_transaction():  # voters may be writing: the lock before the re-read (SQLite)
        rnd = visible_round(round_id)
        stratum = codes.stratum_chosen(rnd, stratum_id)
        issued = codes.issue_batch(rnd, stratum, count, actor=current_user.username, plain=plain)
    if issued.first_serial != first and fmt in ("pdf", "zip"):
        pdf = slips_pdf(issued)
    stem = safe_filename(_file_stem(rnd, issued), "codes")
    if fmt == "csv":
        body, name, mime = csv, f"{stem}.csv", "text/csv"
    elif fmt == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{stem}.pdf", pdf)
            archive.writestr(f"{stem}.csv", csv)
        body, name, mime = buf.getvalue(), f"{stem}.zip", "application/zip"
    else:
        body, name, mime = pdf, f"{stem}.pdf", "application/pdf"
    return _new_batch(_attachment(body, name, mime), issued)


def _new_batch(response: Response, issued: codes.IssuedBatch) -> Response:
    """Name the batch just issued, so the page shown next marks it (``codes.js``)."""
    response.headers["X-Batch-Id"] = str(issued.batch_id)
    return response


def _print_range(issue: PaperIssue, letters: dict[int, str]) -> str:
    """``A-P0001 至 A-P0040``: the serials a print carries (as slips' ranges are shown)."""
    prefix = paper.paper_prefix(letters[issue.stratum_id])
    first, last = (
        paper.serial_text(n, prefix).removeprefix("No. ")
        for n in (issue.first_serial, issue.first_serial + issue.count - 1)
    )
    return first if issue.count == 1 else f"{first} 至 {last}"


def _over_planned(rnd: Round, stratum: Stratum, adding: int) -> str | None:
    """The confirmation an issue of ``adding`` more needs, unless already confirmed."""
    if request.form.get("confirm") == "yes":
        return None
    issued = next(t.issued for t in round_turnout(rnd).strata if t.stratum_id == stratum.id)
    return codes.over_planned(rnd, stratum, adding, issued)


def _confirm_page(rnd: Round, message: str, endpoint: str, form: Any) -> Any:
    """Ask before issuing more than the stratum's 应参加: the same form again, confirmed."""
    fields = {k: v for k, v in form.items() if k not in ("csrf_token", "confirm")}
    page = render_template(
        "codes/confirm_issue.html",
        rnd=rnd,
        message=message,
        action=url_for(endpoint, round_id=rnd.id),
        fields=fields,
        paper=endpoint == "codes.paper_ballots",
    )
    return page, 200, {"X-Confirm-Needed": "1"}


@bp.route("/rounds/<int:round_id>/codes/paper-ballots", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def paper_ballots(round_id: int) -> Any:
    """纸质选票: print ``count`` A4 ballots of one stratum; they are issued and numbered on
    from the stratum's last (``A-P0001`` …), counted in the reconciliation, audited.

    The serials count sheets, not people: no code goes with a ballot, and a ballot entered
    is not stored with its serial.
    """
    rnd = visible_round(round_id)
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="打印纸质选票")
    stratum = codes.stratum_chosen(rnd, request.form.get("stratum"))
    count = paper.parse_copies(request.form.get("count", ""))
    confirmation = _over_planned(rnd, stratum, count)
    if confirmation:
        return _confirm_page(rnd, confirmation, "codes.paper_ballots", request.form)
    stratum_id = stratum.id
    with write_transaction():
        rnd = visible_round(round_id)
        stratum = db.session.get_one(Stratum, stratum_id)
        issue = paper.issue_paper(rnd, stratum, count, actor=current_user.username)
        issue_id = issue.id
    response = _paper_pdf(rnd, issue_id)
    response.headers["X-Paper-Issue"] = str(issue_id)
    return response


@bp.route("/rounds/<int:round_id>/codes/paper-ballots/<int:issue_id>.pdf")
@roles_required(Role.ORGANISER, Role.ADMIN)
def paper_reprint(round_id: int, issue_id: int) -> Any:
    """The same printed paper ballots again (a printer jam): the same serials, nothing new
    issued. Blank ballots hold nothing secret."""
    rnd = visible_round(round_id)
    return _paper_pdf(rnd, issue_id)


def _paper_pdf(rnd: Round, issue_id: int) -> Response:
    issue = db.session.get(PaperIssue, issue_id)
    if issue is None or issue.round_id != rnd.id:
        raise NotFound("没有这次纸质选票印制记录")
    stratum = db.session.get_one(Stratum, issue.stratum_id)
    prefix = paper.paper_prefix(codes.stratum_letter(rnd, stratum))
    pdf = paper.paper_ballots_pdf(rnd, stratum, issue.count, issue.first_serial, prefix)
    first = paper.serial_text(issue.first_serial, prefix).removeprefix("No. ")
    last = paper.serial_text(issue.first_serial + issue.count - 1, prefix).removeprefix("No. ")
    name = f"纸质选票-{rnd.id}-{stratum.name}-{first}至{last}.pdf"
    return _attachment(pdf, name, "application/pdf")


@bp.route("/rounds/<int:round_id>/codes/void-slip", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def void_slip(round_id: int) -> Any:
    """Void one slip by its printed serial; with ``reissue``, answer with its replacement."""
    serial = request.form.get("serial", "")
    reissue = request.form.get("reissue") == "yes"
    fmt = request.form.get("format", "pdf")
    with write_transaction():
        rnd = visible_round(round_id)
        stratum = codes.void_slip(
            rnd, serial, actor=current_user.username, reason=request.form.get("reason", "")
        )
        canonical = codes.normalise_serial(serial)
        issued = (
            codes.issue_batch(rnd, stratum, 1, actor=current_user.username, replaces=canonical)
            if reissue
            else None
        )
    if issued is None:
        flash(f"编号 {canonical} 的测评码已作废，不能再投票。", "success")
        return redirect(url_for("codes.codes_page", round_id=round_id) + "#reconcile")
    stem = safe_filename(f"补发测评码-{rnd.id}-{issued.stratum_name}-替换{canonical}", "codes")
    if fmt == "csv":
        response = _attachment(codes.csv_text(issued).encode("utf-8"), f"{stem}.csv", "text/csv")
    else:
        response = _attachment(slips_pdf(issued), f"{stem}.pdf", "application/pdf")
    return _new_batch(response, issued)


@bp.route("/rounds/<int:round_id>/codes/reconciliation-note", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
@writes
def reconciliation_note(round_id: int) -> Any:
    """Record why the round does not reconcile (the close needs it when it does not)."""
    rnd = visible_round(round_id)
    reconcile.record_note(rnd, request.form.get("note", ""), actor=current_user.username)
    flash("核对说明已记录。", "success")
    return redirect(url_for("codes.codes_page", round_id=rnd.id) + "#reconcile")


@bp.route("/rounds/<int:round_id>/codes/batches.json")
@roles_required(Role.ORGANISER, Role.ADMIN)
def batches_json(round_id: int) -> Any:
    """How many batches and prints the round has (the codes page reloads once one appears)."""
    rnd = visible_round(round_id)
    batches = codes.batch_summaries(rnd)
    prints = db.session.execute(
        db.select(db.func.count()).select_from(PaperIssue).where(PaperIssue.round_id == rnd.id)
    ).scalar_one()
    response = jsonify(
        {"batches": len(batches), "last": batches[-1].id if batches else None, "prints": prints}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/rounds/<int:round_id>/codes/<int:batch_id>/void", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
@writes
def void(round_id: int, batch_id: int) -> Any:
    """Void a lost batch: its unused codes stop working."""
    rnd = visible_round(round_id)
    codes.void_batch(
        rnd, batch_id, actor=current_user.username, reason=request.form.get("reason", "")
    )
    number = next((b.number for b in codes.batch_summaries(rnd) if b.id == batch_id), batch_id)
    flash(f"第 {number} 批测评码已作废：其中未使用的测评码不能再投票。", "success")
    return redirect(url_for("codes.codes_page", round_id=rnd.id))


def turnout_data(rnd: Round) -> dict[str, Any]:
    """Turnout as plain data for the page and its JSON: counts per stratum, nothing else."""
    turnout = round_turnout(rnd)

    def percent(used: int, issued: int) -> float:
        """For the progress bar: tenths of a percent, rounded half up like every figure."""
        return int(Fraction(1000 * used, issued) + Fraction(1, 2)) / 10 if issued else 0.0

    def text(used: int, issued: int) -> str:
        """As the 测评活动 list shows it ("75 %", "66.7 %"; "—" before any is issued)."""
        return formatting.percent(Fraction(used, issued)) if issued else "—"

    return {
        "state": state_label(rnd.state),
        "issued": turnout.issued,
        "used": turnout.used,
        "percent": percent(turnout.used, turnout.issued),
        "percent_text": text(turnout.used, turnout.issued),
        "strata": [
            {
                "id": s.stratum_id,
                "name": s.name,
                "planned": s.planned,
                "issued": s.issued,
                "used": s.used,
                "percent": percent(s.used, s.issued),
                "percent_text": text(s.used, s.issued),
            }
            for s in turnout.strata
        ],
    }


@bp.route("/rounds/<int:round_id>/turnout")
@roles_required(Role.ORGANISER, Role.ADMIN, Role.VIEWER)
def turnout(round_id: int) -> Any:
    """Live turnout per stratum (refreshes itself); never anything about the votes."""
    rnd = lifecycle.apply_schedule_now(visible_round(round_id))
    return render_template(
        "codes/turnout.html",
        rnd=rnd,
        data=turnout_data(rnd),
        minimum=min_turnout(rnd),
    )


@bp.route("/rounds/<int:round_id>/turnout.json")
@roles_required(Role.ORGANISER, Role.ADMIN, Role.VIEWER)
def turnout_json(round_id: int) -> Any:
    """The turnout page's data, for its refresh script."""
    rnd = visible_round(round_id)
    response = jsonify(turnout_data(rnd))
    response.headers["Cache-Control"] = "no-store"
    return response
