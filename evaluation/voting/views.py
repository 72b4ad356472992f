"""Voting pages (SPEC §6): scan or type a code, fill in the ballot on a phone, get a receipt.

``GET /v/<code>`` checks the code (never uses it up: link previewers open URLs on their own),
keeps it in the voter's session and redirects to ``/ballot`` so it leaves the address bar.
Only ``POST /ballot`` consumes a code, in one transaction that marks it used — a conditional
``UPDATE … WHERE state = 'unused'`` with the round open — and stores the ballot, its answers
and a receipt, and answers with the thanks page showing the receipt (``GET /thanks`` shows it
again). The ballot row carries no time, sequence, client data or code reference.

Failed code entries (unknown codes) are counted per client address and throttled; valid codes
never are, since a whole meeting hall may share one address.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from limits import parse
from sqlalchemy import bindparam, exists, literal, select
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from wtforms import ValidationError

from evaluation import ratelimits
from evaluation.accounts.access import roles_required, visible_round
from evaluation.codes import codes
from evaluation.errors import (
    CodeAlreadyUsed,
    CodeUnknown,
    DomainError,
    InputError,
    RoundClosed,
    RoundNotOpen,
)
from evaluation.extensions import csrf, db
from evaluation.models import (
    Code,
    CodeState,
    Receipt,
    Role,
    Round,
    RoundState,
    Stratum,
)
from evaluation.rounds import lifecycle
from evaluation.rounds.state import schedule_due, voting_time_over
from evaluation.transactions import (
    end_standalone_reads,
    read_without_transaction,
    write_transaction,
)
from evaluation.voting import box
from evaluation.voting.ballot import (
    BallotSubject,
    cached_ballot,
    collect_answers,
    foreign_answers,
    grade_choices,
    missing_subjects,
    question_count,
)
from evaluation.web import voting_headers

bp = Blueprint("voting", __name__)

SESSION_CODE = "voting_code"
SESSION_RECEIPT = "voting_receipt"
SESSION_RECEIPT_ROUND = "voting_receipt_round"


class TooManyFailedEntries(DomainError):
    """Too many unknown codes from one client address."""

    status = 429
    title = "尝试次数过多"


# Flask-WTF's CSRFProtect also demands, over HTTPS, a Referer from the same host
# (WTF_CSRF_SSL_STRICT). Voting pages send no referrer (SPEC §5.6), so behind HTTPS it would
# refuse every ballot. This blueprint checks the session-bound token itself, the same check
# minus the Referer; the session cookie is SameSite=Lax besides.
csrf.exempt(bp)


@bp.before_request
def _check_csrf_token() -> None:
    config = current_app.config
    if not config["WTF_CSRF_ENABLED"] or request.method not in config["WTF_CSRF_METHODS"]:
        return
    try:
        validate_csrf(request.form.get(config["WTF_CSRF_FIELD_NAME"]))
    except ValidationError as exc:
        raise CSRFError(exc.args[0]) from None
    g.csrf_valid = True  # as CSRFProtect marks it: the ballot form need not check again


@bp.after_request
def _voting_headers(response: Response) -> Response:
    """Strict headers on every voting page, refusals included (SPEC §5.6)."""
    return voting_headers(response)


@bp.teardown_request
def _release_reads(_error: BaseException | None) -> None:
    end_standalone_reads()


# --- checking a code ---------------------------------------------------------------------------


def _count_failed_entry() -> None:
    """Count an unknown code against the client's address; 429 once over the limit."""
    limit = parse(str(current_app.config["CODE_ENTRY_RATE_LIMIT"]))
    if not ratelimits.hit(limit, "code-entry-failed", get_remote_address()):
        raise TooManyFailedEntries(
            "您输入的无效测评码次数过多，请稍后再试。请核对测评码（不区分大小写，可不输入短横线）。"
        )


@dataclass(frozen=True, slots=True)
class VotingRound:
    """What a voting request needs of its round, read in the same query as the code."""

    id: int
    title: str
    state: RoundState
    opens_at: datetime | None
    closes_at: datetime | None
    created_at: datetime
    box_custody: str

    @classmethod
    def of(cls, row: Any) -> VotingRound:
        """From a row (or a Round) with the columns of ``ROUND_COLUMNS``."""
        return cls(
            row.id,
            row.title,
            row.state,
            row.opens_at,
            row.closes_at,
            row.created_at,
            row.box_custody,
        )


ROUND_COLUMNS = (
    Round.id,
    Round.title,
    Round.state,
    Round.opens_at,
    Round.closes_at,
    Round.created_at,
    Round.box_custody,
)


# The voting path's statements are built once: each request only binds its values (building
# a statement costs more than running it on an indexed row). They run as Core statements on
# the session's connection, outside the ORM.
_ROUND_QUERY = select(*ROUND_COLUMNS).where(Round.id == bindparam("round_id"))

_CODE_QUERY = (
    select(
        Code.state.label("code_state"),
        Code.stratum_id,
        Stratum.name.label("stratum_name"),
        *ROUND_COLUMNS,
    )
    .select_from(Code)
    .join(Stratum, Stratum.id == Code.stratum_id)
    .join(Round, Round.id == Code.round_id)
    .where(Code.digest == bindparam("digest"))
)


def _voting_round(round_id: int) -> VotingRound:
    """The round's state and schedule (not its large JSON columns), in one query."""
    row = db.session.connection().execute(_ROUND_QUERY, {"round_id": round_id}).one()
    return VotingRound.of(row)


def _round_for_voting(rnd: VotingRound) -> VotingRound:
    """Apply the round's schedule, then refuse unless it is open."""
    if schedule_due(rnd):
        rnd = VotingRound.of(lifecycle.apply_schedule_now(db.session.get_one(Round, rnd.id)))
    if rnd.state == RoundState.DRAFT:
        raise RoundNotOpen(f"“{rnd.title}”尚未开始投票，请在组织者宣布开始后再扫码。")
    if rnd.state != RoundState.OPEN or voting_time_over(rnd):
        raise RoundClosed(f"“{rnd.title}”已经结束，不能再投票。")
    return rnd


@functools.lru_cache(maxsize=256)
def _code_query_in(round_id: int) -> Any:
    """``_CODE_QUERY`` plus whether the code's ballot is in the round's box (built once)."""
    table = box.box_table(round_id)
    in_box = exists(select(literal(1)).where(table.c.digest == bindparam("digest")))
    return _CODE_QUERY.add_columns(in_box.label("in_box"))


def _find_code(digest: str, round_hint: int | None) -> tuple[Any, bool | None]:
    """The code's row, and whether it has voted when the round it was held for says so.

    With the round known (the voter's session holds it) one query answers both; otherwise,
    or when that round's box has gone with a close, the plain query (and the box later).
    """
    conn = db.session.connection()
    # A failed statement must not end a transaction (PostgreSQL reads here stand alone).
    standalone = (
        conn.dialect.name != "postgresql"
        or conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    )
    if round_hint is not None and standalone:
        try:
            row = conn.execute(_code_query_in(round_hint), {"digest": digest}).first()
        except DBAPIError as exc:
            if not box.gone_with_close(exc):
                raise
        else:
            if row is None or row.id == round_hint:
                return row, (bool(row.in_box) if row is not None else None)
    return conn.execute(_CODE_QUERY, {"digest": digest}).first(), None


def check_code(typed: str, round_hint: int | None = None) -> tuple[Any, VotingRound]:
    """The code (its state, stratum and stratum name) and its open round.

    One query when ``round_hint`` (the round the voter's session holds) is given, two
    otherwise (the code and its round, then the round's sealed box). CodeUnknown /
    RoundNotOpen / RoundClosed / CodeAlreadyUsed otherwise.
    """
    if not codes.looks_like_code(typed):
        _count_failed_entry()
        raise CodeUnknown("测评码不正确。请核对后重新输入（不区分大小写，可不输入短横线）。")
    digest = codes.code_digest(typed)
    code, in_box = _find_code(digest, round_hint)

    def voted() -> bool:  # while open, a code's ballot is in the box, its row unchanged
        if code.state != RoundState.OPEN:
            return False
        return in_box if in_box is not None else box.has_voted(code.id, digest)

    # A void code whose ballot is in the box voted before its batch was voided.
    if code is None or (code.code_state == CodeState.VOID and not voted()):
        _count_failed_entry()
        raise CodeUnknown("测评码不存在或已作废。请核对后重新输入，或向组织者领取新的测评码。")
    rnd = _round_for_voting(VotingRound.of(code))
    if code.code_state == CodeState.USED or voted():
        raise CodeAlreadyUsed("此测评码已经投过票，每个测评码只能使用一次。")
    return code, rnd


def _remember(typed: str, code: Any, rnd: VotingRound) -> None:
    """Keep the checked code in the voter's session (signed cookie, the voter's own device)."""
    session[SESSION_CODE] = {
        "code": codes.normalise(typed),
        "round": rnd.id,
        "round_created": rnd.created_at.isoformat(),
        "round_title": rnd.title,
        "stratum": code.stratum_id,
        "stratum_name": code.stratum_name,
    }
    session.pop(SESSION_RECEIPT, None)


def _held() -> dict[str, Any]:
    held = session.get(SESSION_CODE)
    if not isinstance(held, dict) or not held.get("code"):
        raise InputError("没有找到您的测评码（可能已提交或页面已过期）。请重新扫码或输入测评码。")
    return held


# --- pages -------------------------------------------------------------------------------------


@bp.route("/v", methods=["GET", "POST"])
def enter() -> Any:
    """A page for typing a code; POST checks it like ``/v/<code>``."""
    if request.method == "POST":  # CSRFProtect has checked the token already
        read_without_transaction()
        typed = request.form.get("code", "")
        try:
            code, rnd = check_code(typed)
        except CodeUnknown as exc:
            # What was typed stays in the box, to be corrected rather than typed again (20
            # characters on a phone). The page is the voter's own answer, never stored.
            page = render_template("voting/enter.html", error=exc.message, typed=typed[:64])
            return page, exc.status
        _remember(typed, code, rnd)
        return redirect(url_for("voting.ballot"))
    return render_template("voting/enter.html", error=None, typed="")


@bp.route("/v/")
def enter_slash() -> Any:
    """``/v/`` (a link cut short, or typed with a slash): the page for typing a code."""
    return redirect(url_for("voting.enter"))


@bp.route("/v/<code>")
def scan(code: str) -> Any:
    """What the QR code opens: check the code, keep it in the session, go to the ballot."""
    read_without_transaction()
    row, rnd = check_code(code)
    _remember(code, row, rnd)
    return redirect(url_for("voting.ballot"))


def _render_ballot(
    rnd: Round | VotingRound,
    stratum_name: str | None,
    layout: list[Any],
    form: Any,
    *,
    preview: bool = False,
    status: int = 200,
    token: str | None = None,
    preview_strata: list[tuple[int | None, str, bool]] | None = None,
) -> Any:
    """The ballot page; ``token`` stands in for the CSRF token (``_blank_ballot_page``)."""
    errors = form.errors if not preview else {}
    extra = {"csrf_token": lambda: token} if token is not None else {}
    return (
        render_template(
            "voting/ballot.html",
            rnd=rnd,
            stratum_name=stratum_name,
            layout=layout,
            form=form,
            errors=errors,
            missing=missing_subjects(layout, errors),
            total_questions=question_count(layout),
            preview=preview,
            preview_strata=preview_strata or [],
            **extra,
        ),
        status,
    )


# Stands for the CSRF token in a cached blank ballot page (hex tokens can never contain it).
_TOKEN_SLOT = "@@csrf-token@@"


def _blank_ballot_page(
    rnd: VotingRound, stratum_id: int, stratum_name: str, layout: list[Any]
) -> str:
    """The empty ballot a voter first sees, rendered once per round and stratum per process.

    Every voter of a stratum gets the same page but for the CSRF token, which is put in on
    each request. A round's ballot never changes once it is open (``cached_ballot``).
    """
    cache: dict[tuple[int, object, int, str], str]
    cache = current_app.extensions.setdefault("ballot_pages", {})
    key = (rnd.id, rnd.created_at, stratum_id, stratum_name)
    page = cache.get(key)
    if page is None or "_flashes" in session:
        blank = cached_ballot(rnd, stratum_id)[1](formdata=None)
        page = _render_ballot(rnd, stratum_name, layout, blank, token=_TOKEN_SLOT)[0]
        if "_flashes" not in session:
            if len(cache) > 256:
                cache.clear()
            cache[key] = page
    return page.replace(_TOKEN_SLOT, generate_csrf())


@bp.route("/ballot", methods=["GET", "POST"])
def ballot() -> Any:
    """Show the ballot; on POST validate it, cast it in one transaction and show the receipt.

    The thanks page is the answer to the POST itself (one round trip less on a crowded hall
    network); ``/thanks`` shows it again. A repeated POST after a successful one (the phone
    reloading the thanks page) shows the same receipt instead of an error.
    """
    if not session.get(SESSION_CODE):
        if request.method == "GET":
            return redirect(url_for("voting.enter"))
        if session.get(SESSION_RECEIPT):
            return _render_thanks()
    held = _held()
    if request.method == "GET":
        read_without_transaction()  # these reads stand alone (PostgreSQL: no BEGIN/ROLLBACK)
        # The code may have been used or voided, or the round closed, since the scan.
        code, rnd = check_code(held["code"], held["round"])
        layout = cached_ballot(rnd, code.stratum_id)[0]
        return _blank_ballot_page(rnd, code.stratum_id, held["stratum_name"], layout)
    # No read before the write: the cast itself re-checks the code and that the round is
    # open and not past its closing time, and says which when it refuses.
    held_round = _HeldRound.of(held)
    layout, form_class = cached_ballot(held_round, held["stratum"])
    foreign = foreign_answers(cached_ballot(held_round)[0], layout, request.form.keys())
    if foreign:
        _round_for_voting(_voting_round(held["round"]))  # a closed round is 403, not 400
        raise InputError(
            f"这张选票含有您所在类别（{held['stratum_name']}）不评价的测评对象："
            f"{'、'.join(foreign)}。选票没有被记录，测评码仍可使用；请重新打开选票页面后再提交。"
        )
    form = form_class()
    if not form.validate():
        rnd = _round_for_voting(_voting_round(held["round"]))  # a closed round is 403, not 400
        return _render_ballot(rnd, held["stratum_name"], layout, form, status=400)
    answers = collect_answers(layout, {k: form[k].data for k in form._fields})
    receipt = cast_ballot(
        codes.code_digest(held["code"]), held_round, held["stratum"], layout, answers
    )
    session.pop(SESSION_CODE, None)
    session[SESSION_RECEIPT] = receipt
    session[SESSION_RECEIPT_ROUND] = held.get("round_title") or _voting_round(held["round"]).title
    return _render_thanks()


@dataclass(frozen=True, slots=True)
class _HeldRound:
    """The round of the code in the voter's session, as far as its ballot layout needs it.

    It was open when the code was checked, and an open round's ballot never changes, so its
    layout is found without reading the round again.
    """

    id: int
    created_at: datetime
    state: RoundState = RoundState.OPEN

    @classmethod
    def of(cls, held: dict[str, Any]) -> _HeldRound | VotingRound:
        """From the session; a session saved before it kept the creation time reads the round."""
        created = held.get("round_created")
        if not isinstance(created, str):
            return _voting_round(held["round"])
        return cls(held["round"], datetime.fromisoformat(created))


class _NotCast(Exception):
    """The conditional write stored nothing: the transaction rolled back."""


def _box_for(rnd: _HeldRound | VotingRound) -> tuple[bytes, int]:
    """The round's public key and the one length its ballots are padded to (per app).

    The length comes from the whole round's ballot (every subject), the longest of any
    stratum's: a stratum that rates fewer subjects pads to the same length as the others.
    """
    cache: dict[tuple[int, object], tuple[bytes, int]]
    cache = current_app.extensions.setdefault("ballot_boxes", {})
    key = (rnd.id, rnd.created_at)
    if key not in cache:
        public = (
            db.session.connection()
            .execute(select(Round.box_public_key).where(Round.id == rnd.id))
            .scalar_one()
        )
        if len(cache) > 64:
            cache.clear()
        everything = cached_ballot(_HeldRound(rnd.id, rnd.created_at))[0]  # cast: open
        cache[key] = (bytes(public or b""), box.plaintext_size(grade_choices(everything)))
    return cache[key]


def cast_ballot(
    digest: str,
    rnd: _HeldRound | VotingRound,
    stratum_id: int,
    layout: list[BallotSubject],
    answers: list[tuple[int, str, str | None]],
) -> str:
    """Seal the ballot and cast it into the round's box with a receipt, in one statement.

    The write is conditional: the code must still be unused, and the round open and not past
    its closing time, else nothing is stored (CodeAlreadyUsed / CodeUnknown / RoundClosed).
    ``layout`` is the voter's ballot (their stratum's subjects): an answer outside it is
    refused before anything is stored. Returns the receipt code (plaintext, shown once).
    """
    asked = {(s.subject_id, q.item) for s in layout for q in s.questions}
    if any((subject_id, item) not in asked for subject_id, item, _grade in answers):
        raise InputError("选票含有不在本类别选票上的测评对象，没有被记录。")
    public_key, size = _box_for(rnd)
    if not public_key:
        raise RoundNotOpen("测评尚未开始，不能投票。")
    sealed = box.seal_ballot(public_key, rnd.id, stratum_id, answers, size)
    receipt = codes.new_receipt()
    try:
        with write_transaction():
            cast = db.session.connection().execute(
                box.cast_statement(rnd.id),
                {
                    "digest": digest,
                    "stratum": stratum_id,
                    "sealed": sealed,
                    "receipt": codes.receipt_digest(receipt),
                    "now": datetime.now(UTC),
                },
            )
            if cast.first() is None:
                raise _NotCast
    except (_NotCast, OperationalError, ProgrammingError) as exc:
        # A database error here is the box having gone with a close that committed first
        # (its table dropped); anything else is re-raised once the round is found open.
        _refuse_cast(digest, rnd.id, exc if not isinstance(exc, _NotCast) else None)
    return receipt


def _refuse_cast(digest: str, round_id: int, error: Exception | None = None) -> NoReturn:
    """Say why the conditional write stored nothing: the round, or else the code."""
    try:
        _round_for_voting(_voting_round(round_id))  # closes it if its closing time has passed
    except (RoundClosed, RoundNotOpen):
        raise RoundClosed("测评已经结束，您的选票没有被记录。") from None
    if error is not None:
        raise error
    code_state = (
        db.session.connection()
        .execute(select(Code.state).where(Code.digest == digest, Code.round_id == round_id))
        .scalar_one_or_none()
    )
    if code_state is None or (code_state == CodeState.VOID and not box.has_voted(round_id, digest)):
        raise CodeUnknown("测评码不存在或已作废，您的选票没有被记录。")
    raise CodeAlreadyUsed("此测评码已经投过票，每个测评码只能使用一次。")


@bp.route("/thanks")
def thanks() -> Any:
    """The thanks page with the receipt code (``id="receipt"``)."""
    if not session.get(SESSION_RECEIPT):
        return redirect(url_for("voting.enter"))
    return _render_thanks()


def _render_thanks() -> str:
    """The thanks page for the receipt kept in this voter's session."""
    return render_template(
        "voting/thanks.html",
        receipt=str(session[SESSION_RECEIPT]),
        round_title=session.get(SESSION_RECEIPT_ROUND, ""),
    )


@bp.route("/receipt", methods=["GET", "POST"])
def receipt() -> Any:
    """Check a receipt after close: counted or not found — never what the ballot said."""
    if request.method == "GET":
        return render_template("voting/receipt.html", outcome=None, typed="")
    typed = request.form.get("receipt", "")
    found = receipt_round(codes.receipt_digest(typed)) if codes.normalise(typed) else None
    if found is None:
        _count_failed_entry()
        return render_template("voting/receipt.html", outcome="unknown", typed=typed), 404
    rnd = db.session.get_one(Round, found)
    if rnd.state == RoundState.OPEN:
        outcome = "pending"
    elif rnd.state == RoundState.VOID:
        outcome = "void"
    else:
        outcome = "counted"
    return render_template("voting/receipt.html", outcome=outcome, typed=typed, rnd=rnd)


def receipt_round(digest: str) -> int | None:
    """The round a receipt's keyed hash belongs to, closed or open, if any."""
    found = db.session.execute(
        select(Receipt.round_id).where(Receipt.digest == digest)
    ).scalar_one_or_none()
    if found is None:  # an open round keeps its receipts beside its sealed ballots
        found = box.round_of_receipt(digest)
    return found


@bp.route("/healthz")
def healthz() -> Any:
    """A bare route for load balancers (and the submission benchmark's baseline)."""
    return Response("ok", mimetype="text/plain")


@bp.route("/rounds/<int:round_id>/preview")
@roles_required(Role.ORGANISER, Role.ADMIN)
def preview(round_id: int) -> Any:
    """The ballot exactly as voters see it, read-only, for the organiser.

    ``?stratum=<id>``: the ballot of that stratum (a stratum may rate only some subjects);
    without it, every subject of the round.
    """
    rnd = visible_round(round_id)
    chosen = request.args.get("stratum", type=int)
    stratum = next((s for s in rnd.strata if s.id == chosen), None)
    layout, form_class = cached_ballot(rnd, stratum.id if stratum else None)
    form = form_class(formdata=None)
    choices: list[tuple[int | None, str, bool]] = []
    if any(not s.rates_all for s in rnd.strata):
        choices = [(None, "全部测评对象", stratum is None)] + [
            (s.id, s.name, s is stratum) for s in rnd.strata
        ]
    name = stratum.name if stratum else None
    return _render_ballot(rnd, name, layout, form, preview=True, preview_strata=choices)
