"""投票箱: the sealed ballot box of an open round (SPEC §5.9–10).

The transaction that uses up a code must not hold a readable ballot: PostgreSQL's write-ahead
log (and its archives, replicas and point-in-time backups) keeps each transaction whole, code
and ballot together, whatever the tables say later. So while a round is open a ballot exists
only as a sealed box (libsodium's ``crypto_box_seal`` through PyNaCl: anonymous sender, X25519
and XSalsa20-Poly1305) to the round's public key, padded to one length for the whole round so
that not even its size says anything.

Where things live:

* The round's **public key** is on the round (``Round.box_public_key``), for the whole life of
  the round and after, so anyone can tell which key sealed its ballots.
* The **private key** is never in the database in clear. Under 服务器保管 (the default) it is
  stored wrapped by a key derived from the code-hash key, itself ``CODE_HASH_KEY`` or derived
  from ``SECRET_KEY`` — in the box table itself, as its one row with an empty code hash
  (``KEY_ROW``), so it goes with the table at close: a dump, WAL archive or replica alone opens
  nothing. Under 监票人保管 the key pair is made while the round is a draft and the private key
  handed to the organiser as a file and a printable QR code, and not kept at all; the round
  opens only once the key is presented back (so nobody opens a round whose key was lost on
  the way), and it cannot be closed until someone presents it again.
* The **sealed ballots** go into a table of the round's own, ``ballot_box_<round id>``: the code's
  keyed hash (the key that makes each code vote once), the stratum, the sealed ballot and the
  receipt's keyed hash. The ``code`` table is only read while voting, never written, so its rows
  do not date anyone's vote.

At close (``open_box`` then ``destroy_box``, called by ``rounds.lifecycle``) the box is opened,
the ballots are handed over to be written in clear once, in random order, and the box table is
dropped whole and the private key erased: on PostgreSQL the table's files go (no raw page of
them stays reachable, ``pageinspect`` included), on SQLite ``secure_delete`` zeroes its pages.
Only the round's own table is locked to drop it, so votes in other open rounds never wait.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from evaluation.errors import InputError, StateError
from evaluation.extensions import db
from evaluation.models import Code, CodeBatch, CodeState, Receipt, Round, RoundState
from evaluation.rounds.state import SCRUTINEER_CUSTODY

CUSTODY_SERVER = "server"
CUSTODY_SCRUTINEER = SCRUTINEER_CUSTODY
CUSTODY_LABELS = {CUSTODY_SERVER: "服务器保管", CUSTODY_SCRUTINEER: "监票人保管"}
# The Chinese words accepted wherever a person names the custody (round file, CLI).
CUSTODY_BY_LABEL = {
    "服务器": CUSTODY_SERVER,
    "服务器保管": CUSTODY_SERVER,
    "server": CUSTODY_SERVER,
    "监票人": CUSTODY_SCRUTINEER,
    "监票人保管": CUSTODY_SCRUTINEER,
    "scrutineer": CUSTODY_SCRUTINEER,
}

T = TypeVar("T")

_TABLE_PREFIX = "ballot_box_"
# The box's own row for its wrapped private key (服务器保管): no code hash is empty.
KEY_ROW = ""
TABLE_PATTERN = re.compile(rf"^{_TABLE_PREFIX}\d+$")
_WRAP_PERSON = b"ballot-box-wrap1"  # blake2b personalisation: 16 bytes
KEY_BEGIN = "-----BEGIN 民主测评投票箱私钥-----"
KEY_END = "-----END 民主测评投票箱私钥-----"
_KEY_TEXT = re.compile(r"[A-Za-z0-9+/]{43}=")


# --- the box table -------------------------------------------------------------------------------


def table_name(round_id: int) -> str:
    """The name of a round's box table."""
    return f"{_TABLE_PREFIX}{int(round_id)}"


@functools.lru_cache(maxsize=256)
def box_table(round_id: int) -> Table:
    """The round's box table (its own metadata: it is not part of the migrated schema)."""
    return Table(
        table_name(round_id),
        MetaData(),
        # The code's keyed hash: a second ballot with the same code is a key conflict.
        Column("digest", String(64), primary_key=True),
        Column("stratum_id", Integer, nullable=False),
        Column("sealed", LargeBinary, nullable=False),
        Column("receipt", String(64), nullable=False),
    )


def box_exists(round_id: int) -> bool:
    """True when the round's box table exists (the round is open)."""
    inspector = db.inspect(db.session.connection())
    return bool(inspector.has_table(table_name(round_id)))


# --- keys ----------------------------------------------------------------------------------------


def _wrapping_box(round_id: int, public_key: bytes, secret: bytes) -> SecretBox:
    """The secret box that wraps a round's private key under 服务器保管.

    ``secret`` is the server's code-hash key (``evaluation.codes.codes.hash_key``).
    """
    key = hashlib.blake2b(
        b"%d:" % round_id + public_key,
        key=hashlib.sha256(secret).digest(),
        person=_WRAP_PERSON,
        digest_size=SecretBox.KEY_SIZE,
    ).digest()
    return SecretBox(key)


def fingerprint(public_key: bytes) -> str:
    """A short printable fingerprint of a public key ("3F2A-…"), shown beside the key."""
    digest = hashlib.sha256(public_key).hexdigest()[:16].upper()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def key_text(private_key: bytes) -> str:
    """The private key as the 44 characters a 监票人 keeps (base64)."""
    return base64.b64encode(private_key).decode("ascii")


def key_file_text(rnd: Round, private_key: bytes) -> str:
    """The key file handed to the 监票人 at open."""
    public = bytes(rnd.box_public_key or b"")
    return "\n".join(
        [
            "民主测评 投票箱私钥（监票人保管）",
            f"测评活动：{rnd.title}（编号 {rnd.id}）",
            f"公钥指纹：{fingerprint(public)}",
            "结束测评时须提交此密钥，否则无法开箱计票。请妥善保管，结束测评后销毁。",
            KEY_BEGIN,
            key_text(private_key),
            KEY_END,
            "",
        ]
    )


def parse_key(text_or_bytes: str | bytes | None) -> bytes:
    """The private key in a key file, its 44 characters pasted, or a scanned QR code."""
    if isinstance(text_or_bytes, bytes):
        text_or_bytes = text_or_bytes.decode("utf-8", errors="replace")
    found = set(_KEY_TEXT.findall(text_or_bytes or ""))  # the file and the same key pasted
    if len(found) != 1:
        raise InputError(
            "没有找到投票箱私钥：请上传开始测评时下载的密钥文件，或粘贴其中 44 个字符的密钥"
        )
    return base64.b64decode(found.pop())


def prepare_scrutineer_key(rnd: Round) -> bytes:
    """In draft, for 监票人保管: a new key pair; the public key is kept, the private returned.

    Called again (the key page was lost before the round opened), it replaces the pair.
    """
    private = PrivateKey.generate()
    rnd.box_public_key = bytes(private.public_key)
    rnd.box_custody = CUSTODY_SCRUTINEER
    return bytes(private)


def create_box(rnd: Round, secret: bytes, presented_key: bytes | None = None) -> None:
    """At open: the round's empty box table, and under 服务器保管 a new key pair.

    Under 监票人保管 the key pair was made in draft (``prepare_scrutineer_key``) and the open
    needs its private key presented back: proof that the 监票人 holds it before any ballot is
    sealed to it.
    """
    table = box_table(rnd.id)
    if rnd.box_custody == CUSTODY_SCRUTINEER:
        public = bytes(rnd.box_public_key or b"")
        if not public:
            raise InputError("请先生成投票箱密钥并交监票人保管，再开始测评")
        if presented_key is None:
            raise InputError(
                "请上传刚才下载的密钥文件（或粘贴私钥），确认监票人已拿到密钥后再开始测评"
            )
        _check_presented(public, presented_key)
        table.create(db.session.connection())
        return
    rnd.box_custody = CUSTODY_SERVER
    private = PrivateKey.generate()
    public = bytes(private.public_key)
    rnd.box_public_key = public
    wrapped = bytes(_wrapping_box(rnd.id, public, secret).encrypt(bytes(private)))
    table.create(db.session.connection())
    db.session.connection().execute(
        table.insert().values(digest=KEY_ROW, stratum_id=0, sealed=wrapped, receipt="")
    )


def check_open_key(rnd: Round, presented_key: bytes | None) -> None:
    """Under 监票人保管: InputError unless the key made in draft is presented back."""
    public = bytes(rnd.box_public_key or b"")
    if not public:
        raise InputError("请先生成投票箱密钥并交监票人保管，再开始测评")
    if presented_key is None:
        raise InputError("请上传刚才下载的密钥文件（或粘贴私钥），确认监票人已拿到密钥后再开始测评")
    _check_presented(public, presented_key)


def wrapped_key(round_id: int) -> bytes | None:
    """The wrapped private key kept in the round's box (服务器保管), if any."""
    table = box_table(round_id)
    found = db.session.connection().execute(select(table.c.sealed).where(table.c.digest == KEY_ROW))
    value = found.scalar()
    return bytes(value) if value is not None else None


def _check_presented(public: bytes, presented: bytes) -> PrivateKey:
    key = PrivateKey(presented) if len(presented) == PrivateKey.SIZE else None
    if key is None or bytes(key.public_key) != public:
        raise InputError(
            f"提交的密钥与本测评活动的投票箱不符（投票箱公钥指纹 {fingerprint(public)}），"
            "请核对是否为本测评活动的密钥文件。"
        )
    return key


def _private_key(rnd: Round, presented: bytes | None, secret: bytes) -> PrivateKey:
    """The round's private key: unwrapped (服务器保管) or the one presented (监票人保管)."""
    public = bytes(rnd.box_public_key or b"")
    if presented is None and rnd.box_custody == CUSTODY_SCRUTINEER:
        raise InputError(
            "本测评活动的投票箱私钥由监票人保管：请上传开始测评时下载的密钥文件（或粘贴其中的密钥）"
            "后再结束测评。"
        )
    if presented is not None:
        return _check_presented(public, presented)
    try:
        raw = _wrapping_box(rnd.id, public, secret).decrypt(wrapped_key(rnd.id) or b"")
    except CryptoError:
        raise StateError(
            "投票箱无法打开：服务器的密钥（CODE_HASH_KEY 或 SECRET_KEY）与开始测评时不同。"
            "请恢复开始测评时的配置后再结束测评；在此之前选票完好，测评活动保持进行中。"
        ) from None
    return PrivateKey(raw)


# --- sealing a ballot ----------------------------------------------------------------------------

Answers = list[tuple[int, str, str | None]]  # (subject id, item, grade key or None for 弃权)


def plaintext_size(questions: list[tuple[int, str, list[str]]]) -> int:
    """The one length every ballot of a round is padded to, from its questions.

    ``questions`` are (subject id, item, grade keys); the longest possible ballot is the one
    with the longest key everywhere, in the largest stratum id there could be.
    """
    longest: Answers = [
        (sid, item, max([None, *keys], key=lambda k: len(json.dumps(k))))
        for sid, item, keys in questions
    ]
    return len(_encode(2**53, 2**53, longest))


def _encode(round_id: int, stratum_id: int, answers: Answers) -> bytes:
    return json.dumps(
        {"r": round_id, "s": stratum_id, "a": [list(a) for a in answers]},
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")


def seal_ballot(
    public_key: bytes, round_id: int, stratum_id: int, answers: Answers, size: int
) -> bytes:
    """One ballot sealed to the round's public key, padded to ``size`` bytes first."""
    plain = _encode(round_id, stratum_id, answers)
    if len(plain) > size:
        raise ValueError("ballot longer than the round's padded size")
    return bytes(SealedBox(PublicKey(public_key)).encrypt(plain.ljust(size)))


@dataclass(frozen=True)
class OpenedBallot:
    """A ballot out of the box: its stratum and answers."""

    stratum_id: int
    answers: list[tuple[int, str, str | None]]


@dataclass(frozen=True)
class OpenedBox:
    """Everything the box held: the ballots, the receipts, and which codes voted."""

    ballots: list[OpenedBallot]
    receipts: list[str]
    digests: set[str]


def _decode(rnd: Round, row: Any, unsealer: SealedBox) -> OpenedBallot:
    try:
        data = json.loads(unsealer.decrypt(bytes(row.sealed)))
        answers = [(int(s), str(i), None if g is None else str(g)) for s, i, g in data["a"]]
        if int(data["r"]) != rnd.id or int(data["s"]) != row.stratum_id:
            raise ValueError("ballot of another round or stratum")
    except (CryptoError, ValueError, KeyError, TypeError):
        raise StateError(
            f"测评活动“{rnd.title}”的投票箱中有无法解读的选票，可能已被改动；结束测评已取消，"
            "什么都没有改变。请联系系统管理员核查数据库。"
        ) from None
    return OpenedBallot(row.stratum_id, answers)


def open_box(rnd: Round, presented_key: bytes | None, secret: bytes) -> OpenedBox:
    """Lock the round's box, take its key and open every ballot (nothing is changed yet).

    The box is locked first, before anything else in the close: a vote already writing to it
    finishes, a vote arriving later waits and then finds the round closed, and no vote can
    hold the box while waiting for the round (which the close is about to change).
    """
    table = lock_box(rnd)
    conn = db.session.connection()
    key = _private_key(rnd, presented_key, secret)
    unsealer = SealedBox(key)
    ballots: list[OpenedBallot] = []
    receipts: list[str] = []
    digests: set[str] = set()
    ballots_only = select(table).where(table.c.digest != KEY_ROW)
    for row in conn.execute(ballots_only.execution_options(yield_per=5000)):
        ballots.append(_decode(rnd, row, unsealer))
        receipts.append(row.receipt)
        digests.add(row.digest)
    return OpenedBox(ballots, receipts, digests)


def lock_box(rnd: Round) -> Table:
    """Take the round's box from its voters for the rest of the transaction.

    PostgreSQL: EXCLUSIVE mode stops ballots going in (and waits for those going in) but lets
    readers — turnout, a scan's check, a receipt lookup, a backup — go on while the close
    works; only the drop at its end excludes them, for an instant. A second close waiting here
    finds the box gone once the first commits, and is refused. SQLite serialises writers.
    """
    table = box_table(rnd.id)
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        try:
            conn.execute(text(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"))
        except DBAPIError as exc:
            if not gone_with_close(exc):
                raise
            raise StateError(
                f"测评活动“{rnd.title}”刚刚已经结束（或作废），无需再次操作。"
            ) from None
    elif not box_exists(rnd.id):
        raise StateError(f"测评活动“{rnd.title}”刚刚已经结束（或作废），无需再次操作。")
    return table


def voted_digests(rnd: Round) -> tuple[set[str], list[str]]:
    """The keyed hashes of the codes that voted, and of the receipts (nothing is opened)."""
    table = box_table(rnd.id)
    rows = (
        db.session.connection()
        .execute(select(table.c.digest, table.c.receipt).where(table.c.digest != KEY_ROW))
        .all()
    )
    return {r.digest for r in rows}, [r.receipt for r in rows]


def destroy_box(rnd: Round) -> None:
    """Drop the round's box table, with the wrapped private key in it (the public key stays)."""
    box_table(rnd.id).drop(db.session.connection(), checkfirst=True)


# --- what voting and turnout read while the round is open ----------------------------------------


def gone_with_close(exc: DBAPIError) -> bool:
    """True when a database error says a round's box table no longer exists: a close (or a
    void) committed and dropped it while the statement waited or ran."""
    message = str(getattr(exc, "orig", exc))
    return _TABLE_PREFIX in message and ("does not exist" in message or "no such table" in message)


def _read_box(read: Callable[[Connection], T], fallback: Callable[[], T]) -> T:
    """Run ``read`` on an open round's box; ``fallback`` if the box went with a close.

    Reads run alongside a close (it locks out votes, not readers) and may find the table
    dropped once the close commits. On PostgreSQL inside a transaction the read runs in a
    savepoint, so the failure does not end the caller's transaction.
    """
    conn = db.session.connection()
    in_transaction = (
        conn.dialect.name == "postgresql"
        and conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
    )
    try:
        if in_transaction:
            with db.session.begin_nested():
                return read(db.session.connection())
        return read(conn)
    except DBAPIError as exc:
        if not gone_with_close(exc):
            raise
    return fallback()


@functools.lru_cache(maxsize=256)
def _voted_query(round_id: int) -> Any:
    """Whether a code's keyed hash is in the round's box (built once per round: a scan runs
    it, and building a statement costs more than running it on a keyed row)."""
    table = box_table(round_id)
    return select(literal(1)).where(table.c.digest == bindparam("digest"))


def has_voted(round_id: int, digest: str) -> bool:
    """True when the code with this keyed hash has cast a ballot in the open round."""

    def in_box(conn: Connection) -> bool:
        return conn.execute(_voted_query(round_id), {"digest": digest}).first() is not None

    def after_close() -> bool:  # the close wrote each code's final state
        state = db.session.execute(select(Code.state).where(Code.digest == digest)).scalar()
        return state == CodeState.USED

    return _read_box(in_box, after_close)


def round_of_receipt(digest: str) -> int | None:
    """The open round whose box holds this receipt's keyed hash, if any."""
    open_rounds = db.session.execute(
        select(Round.id).where(Round.state == RoundState.OPEN)
    ).scalars()
    for round_id in list(open_rounds):
        table = box_table(round_id)

        def in_box(conn: Connection, table: Table = table) -> bool:
            found = conn.execute(select(literal(1)).where(table.c.receipt == digest))
            return found.first() is not None

        def after_close(round_id: int = round_id) -> bool:  # moved to the receipts
            found = db.session.execute(
                select(Receipt.round_id).where(
                    Receipt.digest == digest, Receipt.round_id == round_id
                )
            )
            return found.first() is not None

        if _read_box(in_box, after_close):
            return int(round_id)
    return None


def used_per_stratum(round_id: int) -> dict[int, int]:
    """Ballots in the box per stratum: the live turnout of an open round."""
    table = box_table(round_id)

    def in_box(conn: Connection) -> dict[int, int]:
        rows = conn.execute(
            select(table.c.stratum_id, func.count())
            .where(table.c.digest != KEY_ROW)
            .group_by(table.c.stratum_id)
        )
        return {int(s): int(n) for s, n in rows}

    def after_close() -> dict[int, int]:  # the close wrote each code's final state
        rows = db.session.execute(
            select(Code.stratum_id, func.count())
            .where(Code.round_id == round_id, Code.state == CodeState.USED)
            .group_by(Code.stratum_id)
        )
        return {int(s): int(n) for s, n in rows}

    return _read_box(in_box, after_close)


def voted_in_voided_batches(round_id: int, small_batch: int) -> dict[int, int]:
    """Per stratum, codes that voted and whose batch (of ``small_batch`` codes or more) was
    voided after: their rows say void, but they were used, so they count as issued."""
    table = box_table(round_id)

    def in_box(conn: Connection) -> dict[int, int]:
        rows = conn.execute(
            select(Code.stratum_id, func.count())
            .join(table, table.c.digest == Code.digest)
            .join(CodeBatch, CodeBatch.id == Code.batch_id)
            .where(
                Code.round_id == round_id,
                Code.state == CodeState.VOID,
                CodeBatch.void.is_(True),  # not a slip voided alone: counted as issued anyway
                CodeBatch.count >= small_batch,
            )
            .group_by(Code.stratum_id)
        )
        return {int(s): int(n) for s, n in rows}

    return _read_box(in_box, dict)  # after close such codes are used again


# --- casting -------------------------------------------------------------------------------------


def cast_statement(round_id: int) -> Any:
    """The one statement that casts a ballot into the round's box (built once per round).

    It inserts the sealed ballot only if the code is unused, of this round and stratum, and the
    round is open and not past its closing time; a second ballot with the same code is a key
    conflict and inserts nothing. A returned row says the ballot went in. On PostgreSQL
    the round check takes a share lock on the round's row (FOR SHARE), so a close waits for
    ballots being cast and a ballot after a close finds the round closed; SQLite serialises
    writers with BEGIN IMMEDIATE instead.
    """
    return _cast_statement(db.engine.dialect.name, round_id)


@functools.lru_cache(maxsize=256)
def _cast_statement(dialect: str, round_id: int) -> Any:
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = box_table(round_id)
    digest = bindparam("digest", type_=String)
    stratum = bindparam("stratum", type_=Integer)
    source = select(
        digest, stratum, bindparam("sealed", type_=LargeBinary), bindparam("receipt", type_=String)
    ).where(
        exists(
            select(literal(1)).where(
                Code.digest == digest,
                Code.state == CodeState.UNUSED,
                Code.round_id == round_id,
                Code.stratum_id == stratum,
            )
        ),
        exists(
            select(literal(1))
            .where(
                Round.id == round_id,
                Round.state == RoundState.OPEN,
                or_(Round.closes_at.is_(None), Round.closes_at > bindparam("now")),
            )
            .with_for_update(read=True)
        ),
    )
    return (
        dialect_insert(table)
        .from_select(["digest", "stratum_id", "sealed", "receipt"], source)
        .on_conflict_do_nothing(index_elements=["digest"])
        # The row comes back when the ballot went in (psycopg reports no row count here).
        .returning(table.c.digest)
    )
