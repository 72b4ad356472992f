"""审计日志: every organiser/admin action, appended to a hash chain (SPEC §10).

Each entry's digest is SHA-256 over the previous digest and the entry's canonical form
(id, time, actor, action, details). ``verify_chain`` walks the log in order and reports the
first entry whose digest or link does not match. Entries never hold a voting code or a
ballot's content: callers pass counts and names only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from evaluation.extensions import db
from evaluation.models import AuditEntry, utcnow

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
