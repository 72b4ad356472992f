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

from evaluation import audit
from evaluation.accounts.access import roles_required, visible_round
from evaluation.codes import codes, paper
from evaluation.codes.slips import slips_pdf
from evaluation.codes.turnout import SMALL_BATCH, round_turnout
from evaluation.errors import InputError
from evaluation.models import Role, Round, RoundState
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
    return f"测评码-{rnd.id}-{issued.stratum_name}-第{issued.batch_id}批"


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
    return render_template(
        "codes/codes.html",
        rnd=rnd,
        turnout=turnout,
        batches=codes.batch_summaries(rnd),
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
    stratum = codes.find_stratum(rnd, request.form.get("stratum", ""))
    fmt = request.form.get("format", "pdf")
    if fmt not in FORMATS:
        fmt = "pdf"
    count = codes.parse_count(request.form.get("count", ""))
    codes.check_can_issue(rnd, stratum)
    plain = codes.new_codes(count)
    draft = codes.IssuedBatch(0, rnd.title, stratum.name, plain)
    pdf = slips_pdf(draft) if fmt in ("pdf", "zip") else b""
    csv = codes.csv_text(draft).encode("utf-8") if fmt in ("csv", "zip") else b""
    stratum_name = stratum.name
    with write_transaction():  # voters may be writing: the lock before the re-read (SQLite)
        rnd = visible_round(round_id)
        stratum = codes.find_stratum(rnd, stratum_name)
        issued = codes.issue_batch(rnd, stratum, count, actor=current_user.username, plain=plain)
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
    return _attachment(body, name, mime)


@bp.route("/rounds/<int:round_id>/codes/paper-ballots.pdf")
@roles_required(Role.ORGANISER, Role.ADMIN)
def paper_ballots(round_id: int) -> Any:
    """纸质选票: ``count`` A4 ballots of one stratum, numbered from ``first`` (audited).

    The serials count sheets, not people: nothing is stored, and no code goes with a ballot.
    """
    rnd = visible_round(round_id)
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="打印纸质选票")
    chosen = request.args.get("stratum", "").strip()
    stratum = next((s for s in rnd.strata if str(s.id) == chosen), None)
    if stratum is None:
        raise InputError("请选择要打印纸质选票的测评人员类别")
    count = paper.parse_copies(request.args.get("count", ""))
    first = paper.parse_first_serial(request.args.get("first", ""))
    pdf = paper.paper_ballots_pdf(rnd, stratum, count, first)
    audit.record_download(
        current_user.username,
        "codes.paper_ballots",
        round_id=rnd.id,
        stratum=stratum.name,
        count=count,
        first_serial=first,
    )
    last = first + count - 1
    name = f"纸质选票-{rnd.id}-{stratum.name}-{first:04d}至{last:04d}.pdf"
    return _attachment(pdf, name, "application/pdf")


@bp.route("/rounds/<int:round_id>/codes/<int:batch_id>/void", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
@writes
def void(round_id: int, batch_id: int) -> Any:
    """Void a lost batch: its unused codes stop working."""
    rnd = visible_round(round_id)
    codes.void_batch(
        rnd, batch_id, actor=current_user.username, reason=request.form.get("reason", "")
    )
    flash(f"第 {batch_id} 批测评码已作废：其中未使用的测评码不能再投票。", "success")
    return redirect(url_for("codes.codes_page", round_id=rnd.id))


def turnout_data(rnd: Round) -> dict[str, Any]:
    """Turnout as plain data for the page and its JSON: counts per stratum, nothing else."""
    turnout = round_turnout(rnd)

    def percent(used: int, issued: int) -> float:
        return round(100 * used / issued, 1) if issued else 0.0

    return {
        "state": state_label(rnd.state),
        "issued": turnout.issued,
        "used": turnout.used,
        "percent": percent(turnout.used, turnout.issued),
        "strata": [
            {
                "id": s.stratum_id,
                "name": s.name,
                "planned": s.planned,
                "issued": s.issued,
                "used": s.used,
                "percent": percent(s.used, s.issued),
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
