"""测评码: one-time voting codes, issued per stratum and stored only as keyed hashes (SPEC §5.2).

A code is 20 characters from a 31-character alphabet with no look-alikes (no 0/O, 1/I/L), about
99 bits of entropy, printed in groups of four (``K7QM-4XPA-R9TW-HC3N-8WZE``) so it can be read
aloud and typed. Entry ignores case, dashes, spaces and full-width characters. The database
keeps only ``HMAC-SHA256(key, normalised code)``; the plaintext exists only in the PDF or CSV
handed to the organiser once, at issue. Receipts use the same alphabet and a separate domain
of the same keyed hash.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from flask import current_app
from sqlalchemy import func, insert, select, update

from evaluation import audit
from evaluation.errors import InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Code, CodeBatch, CodeState, Round, RoundState, Stratum
from evaluation.rounds.operations import require_state
from evaluation.rounds.state import min_turnout

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 20
GROUP = 4
MAX_BATCH = 20000

_CODE_DOMAIN = b"code:"
_RECEIPT_DOMAIN = b"receipt:"
_SERIAL_DOMAIN = b"serial:"


def entropy_bits(length: int = CODE_LENGTH) -> float:
    """Bits of entropy of a random code of ``length`` characters."""
    return length * math.log2(len(ALPHABET))


def group(raw: str) -> str:
    """Insert dashes every four characters: ``K7QM4XPA…`` → ``K7QM-4XPA-…``."""
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def new_code(length: int = CODE_LENGTH) -> str:
    """A fresh random code, grouped for reading aloud."""
    return group("".join(secrets.choice(ALPHABET) for _ in range(length)))


def normalise(text: str) -> str:
    """Canonical form of a typed code: upper case, no dashes/spaces, full-width folded.

    A pasted link (``…/v/K7QM-…``) is reduced to its code.
    """
    text = unicodedata.normalize("NFKC", text or "")
    if "/v/" in text:
        text = text.rsplit("/v/", 1)[1]
    return "".join(ch for ch in text.upper() if ch.isascii() and ch.isalnum())


def looks_like_code(text: str) -> bool:
    """True if the normalised text has the shape of a code (length and alphabet)."""
    norm = normalise(text)
    return len(norm) == CODE_LENGTH and all(ch in ALPHABET for ch in norm)


def hash_key() -> bytes:
    """The key of the keyed hash: CODE_HASH_KEY, else derived from SECRET_KEY."""
    configured = current_app.config.get("CODE_HASH_KEY")
    if configured:
        return str(configured).encode("utf-8")
    secret = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(secret, b"evaluation code hash key v1", hashlib.sha256).digest()


def code_digest(code: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the normalised code, hex (what the ``code`` table stores)."""
    key = key if key is not None else hash_key()
    return hmac.new(key, _CODE_DOMAIN + normalise(code).encode(), hashlib.sha256).hexdigest()


def receipt_digest(receipt: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of a normalised receipt code, hex (what the ``receipt`` table stores)."""
    key = key if key is not None else hash_key()
    return hmac.new(key, _RECEIPT_DOMAIN + normalise(receipt).encode(), hashlib.sha256).hexdigest()


def code_url(code: str) -> str:
    """The voting link of a code, always from PUBLIC_BASE_URL (never the request's Host)."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/v/{code}"


def entry_url() -> str:
    """The page where a code is typed, from PUBLIC_BASE_URL."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/v"


# --- serials: every slip's printed number, for accounting -----------------------------------


def stratum_letter(rnd: Round, stratum: Stratum) -> str:
    """The letter of a stratum in its round's serials: A, B, … Z, AA, AB … (round order)."""
    index = next(i for i, s in enumerate(rnd.strata) if s.id == stratum.id)
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# Letters, at most one dash, digits (``A-0017``, ``a17``); ``A-17-3`` is no serial.
_SERIAL_SHAPE = re.compile(r"([A-Z]{1,3})-?([0-9]{1,6})")


def slip_serial(letter: str, number: int) -> str:
    """The printed serial of a slip: ``A-0017`` (stratum letter, running number)."""
    return f"{letter}-{number:04d}"


def normalise_serial(text: str) -> str:
    """A typed serial in canonical form (``a17``, ``Ａ－００１７`` → ``A-0017``); "" if none."""
    text = unicodedata.normalize("NFKC", text or "").upper().replace(" ", "")
    match = _SERIAL_SHAPE.fullmatch(text)
    if match is None:
        return ""
    return slip_serial(match.group(1), int(match.group(2)))


def serial_tag(round_id: int, serial: str, key: bytes | None = None) -> str:
    """Keyed hash of a slip's serial in its round (what ``code.serial_tag`` stores)."""
    key = key if key is not None else hash_key()
    message = _SERIAL_DOMAIN + f"{round_id}:{normalise_serial(serial)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def next_serial(stratum: Stratum) -> int:
    """The running number the stratum's next slip gets (1 for its first)."""
    last = db.session.execute(
        select(func.max(CodeBatch.first_serial + CodeBatch.count - 1)).where(
            CodeBatch.stratum_id == stratum.id, CodeBatch.first_serial.is_not(None)
        )
    ).scalar()
    return int(last or 0) + 1


@dataclass(frozen=True)
class IssuedBatch:
    """A batch just issued: the plaintext codes live only here, for the one-time download."""

    batch_id: int
    round_title: str
    stratum_name: str
    codes: tuple[str, ...]
    letter: str = ""
    first_serial: int = 0

    def urls(self) -> list[str]:
        """The voting link of each code."""
        return [code_url(c) for c in self.codes]

    def serials(self) -> list[str]:
        """The printed serial of each slip (none for a batch without serials)."""
        if not self.first_serial:
            return []
        return [slip_serial(self.letter, self.first_serial + i) for i in range(len(self.codes))]


def stratum_named(rnd: Round, name: str) -> Stratum:
    """The round's stratum of this name (``flask codes issue --stratum NAME``); InputError
    naming the choices otherwise."""
    wanted = str(name).strip()
    for stratum in rnd.strata:
        if stratum.name == wanted:
            return stratum
    known = "、".join(s.name for s in rnd.strata) or "（无）"
    raise InputError(f"测评活动“{rnd.title}”没有测评人员类别“{wanted}”（现有：{known}）")


def stratum_chosen(rnd: Round, value: object) -> Stratum:
    """The stratum a page's form chose: its id (a name may be any text, digits too, so a
    page never sends one). InputError when it is not one of the round's strata."""
    text = str(value if value is not None else "").strip()
    for stratum in rnd.strata:
        if str(stratum.id) == text:
            return stratum
    raise InputError(f"请选择测评活动“{rnd.title}”的测评人员类别（页面可能已过期，请刷新后重试）")


def parse_count(value: object) -> int:
    """A batch size between 1 and MAX_BATCH; InputError otherwise."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise InputError("请填写数量")
    try:
        count = int(text)
    except ValueError:
        raise InputError(f"数量“{text}”不是整数") from None
    if not 1 <= count <= MAX_BATCH:
        raise InputError(f"每批数量应在 1 到 {MAX_BATCH} 之间")
    return count


def new_codes(count: int) -> tuple[str, ...]:
    """``count`` distinct fresh codes (made before the write lock is taken; see ``issue_batch``)."""
    plain: dict[str, None] = {}
    while len(plain) < count:
        plain[new_code()] = None
    return tuple(plain)


def check_can_issue(rnd: Round, stratum: Stratum) -> None:
    """Refuse early, before any slip is rendered, what ``issue_batch`` would refuse."""
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="发放测评码")
    if stratum.round_id != rnd.id:
        raise InputError("该测评人员类别不属于此测评活动")


def issue_batch(
    rnd: Round,
    stratum: Stratum,
    count: int,
    *,
    actor: str,
    plain: tuple[str, ...] | None = None,
    replaces: str | None = None,
) -> IssuedBatch:
    """Create ``count`` codes for a stratum (draft or open round); return the plaintext once.

    ``plain`` gives codes made earlier with ``new_codes`` (their slips rendered outside the
    write lock); their hashes are computed here. The slips are numbered on from the
    stratum's last serial (the stratum's row is locked so two issues never share one).
    ``replaces``: the serial of the voided slip this one replaces (补发).
    """
    check_can_issue(rnd, stratum)
    count = parse_count(count)
    if plain is None:
        plain = new_codes(count)
    elif len(plain) != count or len(set(plain)) != count:
        raise ValueError("plain must hold count distinct codes")
    db.session.execute(select(Stratum.id).where(Stratum.id == stratum.id).with_for_update())
    first = next_serial(stratum)
    letter = stratum_letter(rnd, stratum)
    key = hash_key()
    digests = [code_digest(c, key) for c in plain]
    batch = CodeBatch(
        round_id=rnd.id,
        stratum_id=stratum.id,
        count=count,
        issued_by=actor,
        first_serial=first,
        replaces=replaces,
    )
    db.session.add(batch)
    db.session.flush()
    rows = [
        {
            "round_id": rnd.id,
            "stratum_id": stratum.id,
            "batch_id": batch.id,
            "digest": digest,
            "state": CodeState.UNUSED,
            "serial_tag": serial_tag(rnd.id, slip_serial(letter, first + i), key),
        }
        for i, digest in enumerate(digests)
    ]
    for start in range(0, len(rows), 2000):
        db.session.execute(insert(Code), rows[start : start + 2000])
    db.session.flush()
    # Counts only: a code never enters the audit log (SPEC §5.4).
    audit.record(
        actor,
        "codes.issue",
        round_id=rnd.id,
        stratum=stratum.name,
        batch=batch.id,
        count=count,
        serials=serial_range(letter, first, count),
        **({"replaces": replaces} if replaces else {}),
    )
    return IssuedBatch(batch.id, rnd.title, stratum.name, tuple(plain), letter, first)


def serial_range(letter: str, first: int | None, count: int) -> str:
    """``A-0001 至 A-0040`` (one serial for a batch of one; "" without serials)."""
    if not first:
        return ""
    if count == 1:
        return slip_serial(letter, first)
    return f"{slip_serial(letter, first)} 至 {slip_serial(letter, first + count - 1)}"


@dataclass(frozen=True)
class BatchSummary:
    """What an organiser may see of a batch: its size and state, never its codes or their use.

    Used counts exist per stratum only (SPEC §5.8): a count per batch would tell, for a batch
    of one, whether its holder voted.
    """

    id: int
    number: int  # 第 n 批 within the round
    stratum_name: str
    count: int
    void: bool
    issued_by: str
    issued_at: object
    serials: str = ""
    replaces: str | None = None


def batch_number(rnd: Round, batch_id: int) -> int:
    """The 第 n 批 of a batch within its round (as ``batch_summaries`` numbers it)."""
    return int(
        db.session.execute(
            select(func.count())
            .select_from(CodeBatch)
            .where(CodeBatch.round_id == rnd.id, CodeBatch.id <= batch_id)
        ).scalar_one()
    )


def batch_summaries(rnd: Round) -> list[BatchSummary]:
    """The round's batches, oldest first, numbered within the round."""
    batches = db.session.execute(
        db.select(CodeBatch).where(CodeBatch.round_id == rnd.id).order_by(CodeBatch.id)
    ).scalars()
    letters = {s.id: stratum_letter(rnd, s) for s in rnd.strata}
    return [
        BatchSummary(
            id=b.id,
            number=number,
            stratum_name=b.stratum.name,
            count=b.count,
            void=b.void,
            issued_by=b.issued_by,
            issued_at=b.issued_at,
            serials=serial_range(letters.get(b.stratum_id, "?"), b.first_serial, b.count),
            replaces=b.replaces,
        )
        for number, b in enumerate(batches, start=1)
    ]


def void_slip(rnd: Round, serial: str, *, actor: str, reason: str) -> Stratum:
    """Void one slip by its printed serial (lost, damaged); the stratum it belongs to.

    Like a batch's void, it marks the code void whether or not it has voted (a row must not
    tell which while the round is open); a slip that had voted is counted as used at the
    close, and the reconciliation reports it (``reconcile``).
    """
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="作废测评码")
    reason = (reason or "").strip()
    if not reason:
        raise InputError("作废测评码必须填写原因（如“遗失”）")
    canonical = normalise_serial(serial)
    if not canonical:
        raise InputError(f"“{serial}”不是测评码条上的编号（形如 A-0017）")
    tag = serial_tag(rnd.id, canonical)
    code = db.session.execute(
        select(Code).where(Code.round_id == rnd.id, Code.serial_tag == tag)
    ).scalar_one_or_none()
    if code is None:
        raise NotFound(f"本测评活动没有编号为 {canonical} 的测评码条")
    if code.state == CodeState.VOID:
        raise InputError(f"编号 {canonical} 的测评码已经作废")
    if code.state == CodeState.USED:
        raise InputError(f"编号 {canonical} 的测评码已经投过票，不能作废")
    code.state = CodeState.VOID
    db.session.flush()
    audit.record(actor, "codes.void_slip", round_id=rnd.id, serial=canonical, reason=reason)
    return db.session.get_one(Stratum, code.stratum_id)


def over_planned(rnd: Round, stratum: Stratum, adding: int, issued: int) -> str | None:
    """The confirmation to ask before issuing ``adding`` more to a stratum that has ``issued``
    (slips and paper ballots), when that exceeds its 应参加; None when it does not."""
    planned = stratum.planned or 0
    total = issued + adding
    if not planned or total <= planned:
        return None
    best = Fraction(planned, total)
    text = (
        f"“{stratum.name}”应参加 {planned} 人，已发出 {issued} 份，再发出 {adding} 份后共 "
        f"{total} 份，比应参加人数多 {total - planned} 份。参测率按发出的份数计算："
        f"即使应参加的 {planned} 人全部投票，参测率最高也只有 {float(best) * 100:.2f}%"
        f"（{planned}/{total}）"
    )
    minimum = min_turnout(rnd)
    if best < minimum:
        text += f"，低于最低参测率 {float(minimum) * 100:.2f}%，测评将无效"
    return text + "。多出的测评码或选票请在不用时作废。"


def void_batch(rnd: Round, batch_id: int, *, actor: str, reason: str) -> int:
    """Void a lost batch: its unused codes can no longer vote; how many (never shown on pages).

    Codes already used stay used: their ballots cannot be told apart from any other (§5.1).
    While the round is open a code's row does not say whether it voted (its ballot is in the
    sealed box): every code of the batch is marked void alike, voted or not, so no row version
    tells which had voted by the time of the void; the close marks the voted ones used again.
    """
    require_state(rnd, RoundState.DRAFT, RoundState.OPEN, action="作废测评码")
    reason = (reason or "").strip()
    if not reason:
        raise InputError("作废一批测评码必须填写原因（如“遗失”）")
    batch = db.session.get(CodeBatch, batch_id)
    if batch is None or batch.round_id != rnd.id:
        raise NotFound(f"测评码批次 {batch_id} 不存在")
    if batch.void:
        raise InputError(f"第 {batch_id} 批测评码已作废")
    result = db.session.execute(
        update(Code)
        .where(Code.batch_id == batch.id, Code.state == CodeState.UNUSED)
        .values(state=CodeState.VOID)
    )
    batch.void = True
    db.session.flush()
    voided = int(result.rowcount or 0)  # type: ignore[attr-defined]
    # Not the number voided: with the batch's size it would tell how many of it were used.
    audit.record(actor, "codes.void", round_id=rnd.id, batch=batch.id, reason=reason)
    return voided


def csv_text(issued: IssuedBatch) -> str:
    """The CSV for distributed rounds: header ``code,url``, one code a line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["code", "url"])
    for code, url in zip(issued.codes, issued.urls(), strict=True):
        writer.writerow([code, url])
    return out.getvalue()


def new_receipt() -> str:
    """A fresh receipt code, unrelated to any voting code."""
    return new_code(16)
