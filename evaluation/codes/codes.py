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
import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import insert, update

from evaluation import audit
from evaluation.errors import InputError, NotFound
from evaluation.extensions import db
from evaluation.models import Code, CodeBatch, CodeState, Round, RoundState, Stratum
from evaluation.rounds.operations import require_state

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 20
GROUP = 4
MAX_BATCH = 20000

_CODE_DOMAIN = b"code:"
_RECEIPT_DOMAIN = b"receipt:"


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


@dataclass(frozen=True)
class IssuedBatch:
    """A batch just issued: the plaintext codes live only here, for the one-time download."""

    batch_id: int
    round_title: str
    stratum_name: str
    codes: tuple[str, ...]

    def urls(self) -> list[str]:
        """The voting link of each code."""
        return [code_url(c) for c in self.codes]


def find_stratum(rnd: Round, name_or_id: str | int) -> Stratum:
    """The round's stratum with this name (or id); InputError naming the choices otherwise."""
    for stratum in rnd.strata:
        if stratum.name == str(name_or_id).strip() or str(stratum.id) == str(name_or_id):
            return stratum
    known = "、".join(s.name for s in rnd.strata) or "（无）"
    raise InputError(f"测评活动“{rnd.title}”没有测评人员类别“{name_or_id}”（现有：{known}）")


def parse_count(value: object) -> int:
    """A batch size between 1 and MAX_BATCH; InputError otherwise."""
    try:
        count = int(str(value).strip())
    except ValueError:
        raise InputError(f"数量“{value}”不是整数") from None
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
) -> IssuedBatch:
    """Create ``count`` codes for a stratum (draft or open round); return the plaintext once.

    ``plain`` gives codes made earlier with ``new_codes`` (their slips rendered outside the
    write lock); their hashes are computed here.
    """
    check_can_issue(rnd, stratum)
    count = parse_count(count)
    if plain is None:
        plain = new_codes(count)
    elif len(plain) != count or len(set(plain)) != count:
        raise ValueError("plain must hold count distinct codes")
    key = hash_key()
    digests = [code_digest(c, key) for c in plain]
    batch = CodeBatch(round_id=rnd.id, stratum_id=stratum.id, count=count, issued_by=actor)
    db.session.add(batch)
    db.session.flush()
    rows = [
        {
            "round_id": rnd.id,
            "stratum_id": stratum.id,
            "batch_id": batch.id,
            "digest": digest,
            "state": CodeState.UNUSED,
        }
        for digest in digests
    ]
    for start in range(0, len(rows), 2000):
        db.session.execute(insert(Code), rows[start : start + 2000])
    db.session.flush()
    # Counts only: a code never enters the audit log (SPEC §5.4).
    audit.record(
        actor, "codes.issue", round_id=rnd.id, stratum=stratum.name, batch=batch.id, count=count
    )
    return IssuedBatch(batch.id, rnd.title, stratum.name, tuple(plain))


@dataclass(frozen=True)
class BatchSummary:
    """What an organiser may see of a batch: its size and state, never its codes or their use.

    Used counts exist per stratum only (SPEC §5.8): a count per batch would tell, for a batch
    of one, whether its holder voted.
    """

    id: int
    stratum_name: str
    count: int
    void: bool
    issued_by: str
    issued_at: object


def batch_summaries(rnd: Round) -> list[BatchSummary]:
    """The round's batches, oldest first."""
    batches = db.session.execute(
        db.select(CodeBatch).where(CodeBatch.round_id == rnd.id).order_by(CodeBatch.id)
    ).scalars()
    return [
        BatchSummary(
            id=b.id,
            stratum_name=b.stratum.name,
            count=b.count,
            void=b.void,
            issued_by=b.issued_by,
            issued_at=b.issued_at,
        )
        for b in batches
    ]


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
