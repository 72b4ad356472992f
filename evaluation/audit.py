"""审计日志: every organiser/admin action, appended to a hash chain (SPEC §10).

Each entry's digest is SHA-256 over the previous digest and the entry's canonical form
(id, time, actor, action, details). ``verify_chain`` walks the log in order and reports the
first entry whose digest or link does not match. Entries never hold a voting code or a
ballot's content: callers pass counts and names only.

The chain's head (the last entry's number and digest) is written into every seal, report,
backup and archive export (``ChainHead``). ``check_against`` holds the log to such a record:
the recorded entry must still be there with the same digest, and the chain must verify from
the first entry to the current head. Deleting entries at the end, or deleting one and
recomputing every digest after it, cannot pass both.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from evaluation.errors import InputError
from evaluation.extensions import db
from evaluation.models import AuditEntry, utcnow
from evaluation.transactions import write_transaction

GENESIS = "0" * 64


def _iso(moment: datetime) -> str:
    # SQLite hands back naive datetimes, PostgreSQL aware ones: both mean UTC here.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def entry_digest(
    prev: str, entry_id: int, at: datetime, actor: str, action: str, details: dict[str, Any]
) -> str:
    """The digest that chains an entry to ``prev``."""
    canonical = json.dumps(
        [entry_id, _iso(at), actor, action, details],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev + "\n" + canonical).encode("utf-8")).hexdigest()


def record(actor: str, action: str, **details: Any) -> AuditEntry:
    """Append an action to the chain (in the caller's transaction) and return the entry."""
    if db.engine.dialect.name == "postgresql":
        # Serialise appenders so two actions cannot both link to the same tail.
        db.session.execute(text("SELECT pg_advisory_xact_lock(7411)"))
    last = db.session.execute(
        db.select(AuditEntry.id, AuditEntry.digest).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    prev = last.digest if last else GENESIS
    next_id = (last.id + 1) if last else 1
    at = utcnow()
    clean = json.loads(json.dumps(details, ensure_ascii=False, default=str))
    entry = AuditEntry(
        id=next_id,
        at=at,
        actor=actor or "system",
        action=action,
        details=clean,
        prev_digest=prev,
        digest=entry_digest(prev, next_id, at, actor or "system", action, clean),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


@dataclass
class ChainProblem:
    """The first place the chain breaks."""

    entry_id: int
    reason: str

    def __str__(self) -> str:
        return f"审计日志第 {self.entry_id} 条：{self.reason}"


def verify_chain() -> tuple[int, ChainProblem | None]:
    """Walk the whole log; return (entries checked, first problem or None)."""
    prev = GENESIS
    expected_id = 1
    checked = 0
    rows = db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars()
    for entry in rows:
        if entry.id != expected_id:
            return checked, ChainProblem(expected_id, f"记录缺失（下一条是第 {entry.id} 条）")
        if entry.prev_digest != prev:
            return checked, ChainProblem(entry.id, "与上一条记录的链接不符（上一条被删除或修改）")
        digest = entry_digest(prev, entry.id, entry.at, entry.actor, entry.action, entry.details)
        if digest != entry.digest:
            return checked, ChainProblem(entry.id, "内容被修改（摘要不符）")
        prev = entry.digest
        expected_id += 1
        checked += 1
    return checked, None


# --- the chain's head, written into seals, reports, backups and archive exports ----------------

HEAD_LABEL = "审计日志链头"
HEAD_METHOD = (
    "在服务器上运行 flask audit verify --against 本文件：审计日志中必须仍有这一条且摘要相同，"
    "并且整条哈希链完好，否则说明日志被截断或删改后重建。"
)
_HEAD_TEXT = re.compile(r"第\s*(\d+)\s*条，摘要\s*([0-9a-f]{64})")
# Sheets of a report workbook or archive export that carry the head.
_HEAD_SHEETS = ("核验", "审计日志")


@dataclass(frozen=True)
class ChainHead:
    """The last entry of the log at some moment: its number and digest (0 and GENESIS if none)."""

    seq: int
    digest: str

    def __str__(self) -> str:
        return f"第 {self.seq} 条，摘要 {self.digest}"

    def as_json(self) -> dict[str, Any]:
        """The head as a JSON object (seal, backup header)."""
        return {"seq": self.seq, "digest": self.digest}


def chain_head(connection: Connection | None = None) -> ChainHead:
    """The current head of the log (read on ``connection`` when given: a backup's snapshot)."""
    query = select(AuditEntry.id, AuditEntry.digest).order_by(AuditEntry.id.desc()).limit(1)
    last = (connection or db.session).execute(query).first()
    return ChainHead(int(last.id), str(last.digest)) if last else ChainHead(0, GENESIS)


def head_of(entry: AuditEntry) -> ChainHead:
    """The head right after ``entry`` was appended."""
    return ChainHead(entry.id, entry.digest)


def head_from_json(value: Any) -> ChainHead | None:
    """A head stored as ``{"seq": n, "digest": hex}``; None if there is none or it is garbled."""
    if not isinstance(value, dict):
        return None
    seq, digest = value.get("seq"), value.get("digest")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    return ChainHead(seq, digest)


def head_from_text(value: Any) -> ChainHead | None:
    """A head written as text (``str(head)``, as reports print it)."""
    match = _HEAD_TEXT.search(str(value or ""))
    return ChainHead(int(match.group(1)), match.group(2)) if match else None


def record_download(actor: str, action: str, **details: Any) -> ChainHead:
    """Record a download or export in its own write transaction; return the head it made.

    The file then carries the head that includes its own download, so deleting that entry is
    found by ``flask audit verify --against`` the file.
    """
    with write_transaction():
        return head_of(record(actor, action, **details))


def check_against(head: ChainHead) -> tuple[int, ChainProblem | None]:
    """Check the log against a recorded head: (entries checked, first problem or None)."""
    checked, problem = verify_chain()
    if problem is not None:
        return checked, problem
    if head.seq == 0:
        return checked, None
    if head.seq > checked:
        return checked, ChainProblem(
            head.seq, f"已不存在（现只有 {checked} 条）：日志被截断，记录被删除"
        )
    digest = db.session.execute(
        select(AuditEntry.digest).where(AuditEntry.id == head.seq)
    ).scalar_one()
    if digest != head.digest:
        return checked, ChainProblem(
            head.seq, "摘要与记录的链头不符：此前的记录被删除或修改后重新计算了哈希链"
        )
    return checked, None


def recorded_head(path: Path) -> ChainHead:
    """The head recorded in a backup (.jsonl/.jsonl.gz) or a report/archive workbook (.xlsx)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"找不到文件 {path}")
    if path.name.lower().endswith(".xlsx"):
        head = _head_in_workbook(path)
        where = "工作簿的“核验”或“审计日志”表中"
    else:
        head = head_from_json(_backup_header(path).get("audit_head"))
        where = "备份文件头中"
    if head is None:
        raise InputError(f"{path.name} {where}没有记录审计日志链头（可能是旧版本生成的文件）")
    return head


def _backup_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    try:
        opener: Any = gzip.open if compressed else open
        with opener(path, "rb") as stream:
            header = json.loads(stream.readline())
    except (OSError, EOFError, ValueError):
        raise InputError(f"无法读取 {path.name}：不是本系统的备份文件或工作簿") from None
    if not isinstance(header, dict) or header.get("format") != "evaluation-backup":
        raise InputError(f"{path.name} 不是本系统的备份文件或工作簿")
    return header


def _head_in_workbook(path: Path) -> ChainHead | None:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        raise InputError(f"无法读取工作簿 {path.name}") from None
    try:
        for name in _HEAD_SHEETS:
            if name not in book.sheetnames:
                continue
            for row in book[name].iter_rows(values_only=True):
                if row and row[0] == HEAD_LABEL and len(row) > 1:
                    return head_from_text(row[1])
    finally:
        book.close()
    return None
