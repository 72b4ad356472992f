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
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.cli import AppGroup
from flask_login import current_user

from evaluation import codes, rounds
from evaluation.accounts import roles_required, visible_round
from evaluation.extensions import db
from evaluation.models import Role, Round, RoundState
from evaluation.slips import render_slips
from evaluation.transactions import begin_write
from evaluation.turnout import SMALL_BATCH, round_turnout

bp = Blueprint("issuing", __name__)

FORMATS = {
    "pdf": "PDF 测评码条（打印裁剪）",
    "csv": "CSV（分散测评时发送链接）",
    "zip": "PDF 和 CSV（ZIP）",
}
# Measured on a 2-core machine, used only to animate the progress bar while slips render.
MS_PER_SLIP = 1.0


def entry_url() -> str:
    """The page where a code is typed, from PUBLIC_BASE_URL."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/v"


def slips_pdf(issued: codes.IssuedBatch) -> bytes:
    """The A4 slips of a batch just issued."""
    return render_slips(
        round_title=issued.round_title,
        stratum_name=issued.stratum_name,
        codes=issued.codes,
        urls=issued.urls(),
        entry_url=entry_url(),
    )


def _file_stem(rnd: Round, issued: codes.IssuedBatch) -> str:
    return f"测评码-{rnd.id}-{issued.stratum_name}-第{issued.batch_id}批"


def _attachment(data: bytes, filename: str, mimetype: str) -> Response:
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
        "issuing/codes.html",
        rnd=rnd,
        turnout=turnout,
        batches=codes.batch_summaries(rnd),
        small_batch=SMALL_BATCH,
        formats=FORMATS,
        default_format="csv" if rnd.mode == "分散" else "pdf",
        can_issue=_can_issue(rnd),
        ms_per_slip=MS_PER_SLIP,
        max_batch=codes.MAX_BATCH,
    )


@bp.route("/rounds/<int:round_id>/codes/issue", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def issue(round_id: int) -> Any:
    """Issue a batch and answer with its file: the only time the codes are shown."""
    begin_write()  # voters may be writing: take the lock before reading (SQLite)
    rnd = visible_round(round_id)
    stratum = codes.find_stratum(rnd, request.form.get("stratum", ""))
    fmt = request.form.get("format", "pdf")
    if fmt not in FORMATS:
        fmt = "pdf"
    issued = codes.issue_batch(
        rnd, stratum, codes.parse_count(request.form.get("count", "")), actor=current_user.username
    )
    stem = _file_stem(rnd, issued)
    if fmt == "csv":
        body, name, mime = codes.csv_text(issued).encode("utf-8"), f"{stem}.csv", "text/csv"
    elif fmt == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{stem}.pdf", slips_pdf(issued))
            archive.writestr(f"{stem}.csv", codes.csv_text(issued).encode("utf-8"))
        body, name, mime = buf.getvalue(), f"{stem}.zip", "application/zip"
    else:
        body, name, mime = slips_pdf(issued), f"{stem}.pdf", "application/pdf"
    db.session.commit()
    return _attachment(body, name, mime)


@bp.route("/rounds/<int:round_id>/codes/<int:batch_id>/void", methods=["POST"])
@roles_required(Role.ORGANISER, Role.ADMIN)
def void(round_id: int, batch_id: int) -> Any:
    """Void a lost batch: its unused codes stop working."""
    begin_write()
    rnd = visible_round(round_id)
    codes.void_batch(
        rnd, batch_id, actor=current_user.username, reason=request.form.get("reason", "")
    )
    db.session.commit()
    flash(f"第 {batch_id} 批测评码已作废：其中未使用的测评码不能再投票。", "success")
    return redirect(url_for("issuing.codes_page", round_id=rnd.id))


def turnout_data(rnd: Round) -> dict[str, Any]:
    """Turnout as plain data for the page and its JSON: counts per stratum, nothing else."""
    turnout = round_turnout(rnd)

    def percent(used: int, issued: int) -> float:
        return round(100 * used / issued, 1) if issued else 0.0

    return {
        "state": rounds.state_label(rnd.state),
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
    from evaluation.voting import apply_schedule_now

    rnd = apply_schedule_now(visible_round(round_id))
    return render_template(
        "issuing/turnout.html",
        rnd=rnd,
        data=turnout_data(rnd),
        minimum=rounds.min_turnout(rnd),
    )


@bp.route("/rounds/<int:round_id>/turnout.json")
@roles_required(Role.ORGANISER, Role.ADMIN, Role.VIEWER)
def turnout_json(round_id: int) -> Any:
    """The turnout page's data, for its refresh script."""
    rnd = visible_round(round_id)
    response = jsonify(turnout_data(rnd))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- command line ------------------------------------------------------------------------------

codes_cli = AppGroup("codes", help="测评码")


@codes_cli.command("issue")
@click.argument("round_id", type=int)
@click.option("--stratum", required=True, help="测评人员类别名称")
@click.option("--count", required=True, help="数量")
@click.option("--csv", "csv_path", required=True, type=click.Path(path_type=Path))
@click.option("--pdf", "pdf_path", default=None, type=click.Path(path_type=Path))
def codes_issue(
    round_id: int, stratum: str, count: str, csv_path: Path, pdf_path: Path | None
) -> None:
    """Issue codes for a stratum; write the CSV (code,url) and optionally the A4 slips."""
    from evaluation.cli import ACTOR, transactional

    written: list[Path] = []

    @transactional
    def _issue() -> codes.IssuedBatch:
        begin_write()
        rnd = rounds.get_round(round_id)
        issued = codes.issue_batch(
            rnd, codes.find_stratum(rnd, stratum), codes.parse_count(count), actor=ACTOR
        )
        try:
            _write(csv_path, codes.csv_text(issued).encode("utf-8"), written)
            if pdf_path is not None:
                _write(pdf_path, slips_pdf(issued), written)
        except OSError as exc:
            for path in written:
                path.unlink(missing_ok=True)
            raise click.ClickException(f"无法写入文件：{exc.strerror}（{exc.filename}）") from None
        return issued

    issued = _issue()
    click.echo(
        f"已发放 {len(issued.codes)} 个测评码（{issued.round_title} · {issued.stratum_name}，"
        f"第 {issued.batch_id} 批）"
    )
    for path in written:
        click.echo(str(path))
    click.echo("测评码只保存在上述文件中，系统内只存哈希：请妥善保管，遗失请作废该批并重新发放。")


def _write(path: Path, data: bytes, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path)


def init_app(app: Flask) -> None:
    """Register ``flask codes``."""
    app.cli.add_command(codes_cli)
