"""Database models (SQLAlchemy 2 typed style).

Anonymity is a property of this schema, not of discipline (SPEC §5):

* ``Code`` keeps only a keyed hash of the code and its state: no time, no ballot. While a round
  is open its rows are only read; the codes that voted are written once, at close.
* From cast to close a ballot exists only sealed to the round's public key, in the round's own
  box table (``evaluation.voting.box``), dropped whole at close.
* ``Ballot`` has a random UUID key, its round and stratum, and nothing else: no time, no
  sequence number, no client address, no code.
* ``Answer`` rows belong to a ballot; their key is (ballot, subject, item).
* ``Receipt`` keeps a keyed hash of the voter's receipt, with no link to the ballot.
* Ballots, answers and receipts are written in clear once, at close, in random order and in
  one transaction (``evaluation.voting.anonymity``); the round's codes are rewritten then too,
  so neither row order nor ``rowid``/``ctid``/``xmin`` follows submission order.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from evaluation.extensions import db


def utcnow() -> datetime:
    """Current time in UTC (used only for organiser actions, never for votes)."""
    return datetime.now(UTC)


# The largest id an ``Integer`` primary key holds on every engine (PostgreSQL's 4-byte
# integer); a larger number in an address names nothing, and must not reach the database.
MAX_ID = 2**31 - 1


def is_row_id(value: int) -> bool:
    """True when ``value`` could be an id in this schema (1 … MAX_ID)."""
    return 0 < value <= MAX_ID


class Role(enum.StrEnum):
    """What an account may do."""

    ADMIN = "admin"
    ORGANISER = "organiser"
    VIEWER = "viewer"
    # 计票员: enters paper ballots (double entry), nothing else.
    COUNTER = "counter"


class RoundState(enum.StrEnum):
    """The life of a round; transitions live in ``evaluation.rounds.operations``."""

    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"
    VOID = "void"


class CodeState(enum.StrEnum):
    """A voting code is unused, used, or void (its batch was lost)."""

    UNUSED = "unused"
    USED = "used"
    VOID = "void"


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings with a CHECK constraint: readable in SQL on both engines.
    return Enum(cls, native_enum=False, values_callable=lambda e: [m.value for m in e], length=16)


class Unit(db.Model):  # type: ignore[name-defined,misc]
    """单位: a node of the unit tree (province → city → county bureau)."""

    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    # Full path from the root, "甘肃省局/兰州市局"; scoping is a prefix match on it.
    path: Mapped[str] = mapped_column(String(1000), unique=True)
    # The accountability rule set this unit chose (SPEC §9); None: its parent's, at the root
    # the shipped 000 §五 set.
    accountability_rules: Mapped[str | None] = mapped_column(String(64))

    parent: Mapped[Unit | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<Unit {self.path}>"


class Person(db.Model):  # type: ignore[name-defined,misc]
    """干部: a cadre, kept across rounds, years and moves between units."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    staff_no: Mapped[str | None] = mapped_column(String(50), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    post: Mapped[str] = mapped_column(String(200), default="")

    unit: Mapped[Unit] = relationship()


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """An organiser, viewer or admin account, scoped to a unit and everything beneath it."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(_enum(Role))
    # None only for admins: the whole tree.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Stored in the session at login; bumping it (logout, password change or reset,
    # deactivation) ends every session opened before.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by an admin's reset: the one-time password must be replaced before anything else.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    unit: Mapped[Unit | None] = relationship()

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Flask-Login: disabled accounts cannot log in."""
        return self.active


class Round(db.Model):  # type: ignore[name-defined,misc]
    """测评活动: one evaluation round."""

    __tablename__ = "round"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8), default="集中")  # 集中 | 分散
    kind: Mapped[str] = mapped_column(String(8), default="本级自测")  # 本级自测 | 上级抽测
    # Exact fraction as text, "2/3".
    min_turnout: Mapped[str] = mapped_column(String(20), default="2/3")
    opens_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[RoundState] = mapped_column(_enum(RoundState), default=RoundState.DRAFT)
    void_reason: Mapped[str | None] = mapped_column(Text)
    # form id -> the form as a plain dict, frozen when the round is created or edited in draft
    forms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The grading rule set (``evaluation.rule_sets.RuleSet.to_dict``), chosen in draft and
    # frozen from open on; None for rounds made before rule sets (read as the default set).
    rule_set: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The seal (SPEC §10): digest over the canonical ballots, and the tally stored at close.
    seal: Mapped[str | None] = mapped_column(String(128))
    sealed_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The sealed ballot box (SPEC §5.9, ``evaluation.voting.box``): who keeps the private key,
    # and the public key (from open on; from draft under 监票人保管). The wrapped private key
    # of 服务器保管 lives in the box's own table and goes with it at close.
    box_custody: Mapped[str] = mapped_column(String(16), default="server", server_default="server")
    box_public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # 核对说明: why the slips and paper ballots do not reconcile, recorded by the organiser
    # before a close the mismatch would otherwise stop (``evaluation.codes.reconcile``).
    reconciliation_note: Mapped[str | None] = mapped_column(Text)

    unit: Mapped[Unit] = relationship()
    strata: Mapped[list[Stratum]] = relationship(
        back_populates="round", order_by="Stratum.position", cascade="all, delete-orphan"
    )
    subjects: Mapped[list[Subject]] = relationship(
        back_populates="round", order_by="Subject.position", cascade="all, delete-orphan"
    )


# Which subjects a stratum limited to some (``Stratum.rates_all`` false) rates.
stratum_subject = Table(
    "stratum_subject",
    db.metadata,
    Column("stratum_id", ForeignKey("stratum.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "subject_id", ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)


class Stratum(db.Model):  # type: ignore[name-defined,misc]
    """测评人员类别: who votes, with the number of codes planned and an optional weight."""

    __tablename__ = "stratum"
    __table_args__ = (UniqueConstraint("round_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    planned: Mapped[int] = mapped_column(Integer, default=0)  # 应参加人数
    # Exact decimal or fraction as text ("0.3", "1/3"); None = unweighted.
    weight: Mapped[str | None] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # True (the default): the stratum rates every subject of the round. False: only the
    # subjects in ``rated`` (``stratum_subject``), possibly none once they were removed —
    # which ``rounds.lifecycle.open_round`` refuses.
    rates_all: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # 纸质票 counts of the stratum, never per ballot (``evaluation.paper``): {"printed": n,
    # "valid": n, "invalid": {rule key: n}, "abstained": {rule key: n}, "last_batch": the
    # number of the round's last stack started on it}; empty without paper.
    paper: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    round: Mapped[Round] = relationship(back_populates="strata")
    rated: Mapped[list[Subject]] = relationship(
        secondary=stratum_subject, order_by="Subject.position", back_populates="rated_by"
    )


class Subject(db.Model):  # type: ignore[name-defined,misc]
    """测评对象: a leadership team, a discipline organ, or a person, graded with one form."""

    __tablename__ = "subject"
    __table_args__ = (UniqueConstraint("round_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    form_id: Mapped[str] = mapped_column(String(64))
    # Person subjects point at the cadre; team/organ subjects at the unit they belong to.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    post: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    # 评价意见 and 整改要求 for the feedback sheet, typed by the organiser after close.
    opinion: Mapped[str] = mapped_column(Text, default="", server_default="")
    rectification: Mapped[str] = mapped_column(Text, default="", server_default="")

    round: Mapped[Round] = relationship(back_populates="subjects")
    person: Mapped[Person | None] = relationship()
    rated_by: Mapped[list[Stratum]] = relationship(
        secondary=stratum_subject, back_populates="rated"
    )
    unit: Mapped[Unit] = relationship()


class CodeBatch(db.Model):  # type: ignore[name-defined,misc]
    """One issue of codes for a stratum; a lost batch is voided as a whole."""

    __tablename__ = "code_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    stratum_id: Mapped[int] = mapped_column(ForeignKey("stratum.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer)
    void: Mapped[bool] = mapped_column(Boolean, default=False)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(80), default="")
    # The printed serial of the batch's first slip (its stratum's running number; see
    # ``codes.slip_serial``); None for batches issued before serials.
    first_serial: Mapped[int | None] = mapped_column(Integer)
    # 补发: a replacement for a slip voided by its serial (the serial it replaces).
    replaces: Mapped[str | None] = mapped_column(String(16))

    stratum: Mapped[Stratum] = relationship()


class Code(db.Model):  # type: ignore[name-defined,misc]
    """测评码: a keyed hash and a state. Never a time, never a ballot (SPEC §5.1, §5.2)."""

    __tablename__ = "code"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    stratum_id: Mapped[int] = mapped_column(
        ForeignKey("stratum.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int] = mapped_column(ForeignKey("code_batch.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[CodeState] = mapped_column(_enum(CodeState), default=CodeState.UNUSED)
    # Keyed hash of the slip's printed serial (``codes.serial_tag``): lets one lost slip be
    # voided by its serial; the serial itself is stored nowhere.
    serial_tag: Mapped[str | None] = mapped_column(String(64), unique=True)


class PaperIssue(db.Model):  # type: ignore[name-defined,misc]
    """纸质选票印制: one print of blank paper ballots for a stratum, serials first … first+count-1.

    Blank ballots carry nothing secret, so a print can be downloaded again.
    """

    __tablename__ = "paper_issue"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    stratum_id: Mapped[int] = mapped_column(ForeignKey("stratum.id", ondelete="CASCADE"))
    first_serial: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(80), default="")

    stratum: Mapped[Stratum] = relationship()


class PaperBatch(db.Model):  # type: ignore[name-defined,misc]
    """纸质票录入批次: a stack of returned paper ballots, entered twice, then put in the box.

    Gone once its agreed ballots are in the sealed box (only its counts stay, on the stratum).
    """

    __tablename__ = "paper_batch"
    __table_args__ = (UniqueConstraint("round_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    stratum_id: Mapped[int] = mapped_column(ForeignKey("stratum.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 第 n 批, per round
    count: Mapped[int] = mapped_column(Integer)  # ballots in the stack
    # Salt of the key that seals this batch's entries (``evaluation.paper.entry``).
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    stratum: Mapped[Stratum] = relationship()
    entries: Mapped[list[PaperEntry]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", passive_deletes=True
    )


class PaperEntry(db.Model):  # type: ignore[name-defined,misc]
    """One clerk's entry of one ballot of a batch (by its place in the stack), sealed."""

    __tablename__ = "paper_entry"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("paper_batch.id", ondelete="CASCADE"), primary_key=True
    )
    clerk: Mapped[str] = mapped_column(String(80), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)

    batch: Mapped[PaperBatch] = relationship(back_populates="entries")


class Ballot(db.Model):  # type: ignore[name-defined,misc]
    """选票: a random key, its round and stratum. Nothing else, by design (SPEC §5.1)."""

    __tablename__ = "ballot"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)
    stratum_id: Mapped[int] = mapped_column(ForeignKey("stratum.id", ondelete="CASCADE"))

    answers: Mapped[list[Answer]] = relationship(
        back_populates="ballot", cascade="all, delete-orphan", passive_deletes=True
    )


# The overall grade of a subject is stored with item code "" ; item grades with their code.
OVERALL = ""


class Answer(db.Model):  # type: ignore[name-defined,misc]
    """One grade on a ballot: for a subject overall (item "") or for one item; NULL = 弃权."""

    __tablename__ = "answer"
    __table_args__ = (
        # Covering index for the tally's GROUP BY (SPEC §13: 0.06 s for 10^6 rows on SQLite).
        Index("ix_answer_tally", "subject_id", "item", "stratum_id", "grade"),
    )

    ballot_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ballot.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subject.id", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(String(32), primary_key=True, default=OVERALL)
    # Copied from the ballot so the tally needs no join; it identifies nobody.
    stratum_id: Mapped[int] = mapped_column(ForeignKey("stratum.id", ondelete="CASCADE"))
    grade: Mapped[str | None] = mapped_column(String(32))

    ballot: Mapped[Ballot] = relationship(back_populates="answers")


class Receipt(db.Model):  # type: ignore[name-defined,misc]
    """A keyed hash of a voter's receipt: proves inclusion, never content (SPEC §6)."""

    __tablename__ = "receipt"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id", ondelete="CASCADE"), index=True)


class ArchiveEntry(db.Model):  # type: ignore[name-defined,misc]
    """档案记录: one subject's result in one archived round. Never edited."""

    __tablename__ = "archive_entry"
    __table_args__ = (
        UniqueConstraint("round_id", "subject_id"),
        # A cadre's or a unit's own entries, and their years, from the index alone: every
        # archive page reads through one of these (docs/performance.md, issue 18).
        Index("ix_archive_entry_person_year", "person_id", "year"),
        Index("ix_archive_entry_unit_year", "unit_id", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("round.id"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subject.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # The unit the subject belonged to at the time (a person may move later).
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    year: Mapped[int] = mapped_column(Integer, index=True)
    subject_name: Mapped[str] = mapped_column(String(200))
    form_id: Mapped[str] = mapped_column(String(64))
    # counts, rates (as exact fraction strings), turnout, weighted flag …
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What the accountability rules read, copied from ``figures`` when the entry is made (it
    # never changes): a province's flags are judged from these plain columns, without parsing
    # every entry's figures (issue 18). ``closed_at`` is the round's close (UTC).
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    satisfaction_rate: Mapped[str | None] = mapped_column(Text)
    trust_rate: Mapped[str | None] = mapped_column(Text)
    weighted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    grade: Mapped[str | None] = mapped_column(String(32))
    rank: Mapped[int | None] = mapped_column(Integer)
    valid_round: Mapped[bool] = mapped_column(Boolean)
    seal: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The feedback sheet's 评价意见 and 整改要求 as they stood when the round was archived.
    opinion: Mapped[str] = mapped_column(Text, default="", server_default="")
    rectification: Mapped[str] = mapped_column(Text, default="", server_default="")

    round: Mapped[Round] = relationship()
    person: Mapped[Person | None] = relationship()
    unit: Mapped[Unit] = relationship()
    annotations: Mapped[list[ArchiveAnnotation]] = relationship(
        back_populates="entry", order_by="ArchiveAnnotation.id"
    )


class ArchiveAnnotation(db.Model):  # type: ignore[name-defined,misc]
    """A correction or remark appended to an archive entry (the entry itself never changes)."""

    __tablename__ = "archive_annotation"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("archive_entry.id"), index=True)
    author: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    entry: Mapped[ArchiveEntry] = relationship(back_populates="annotations")


class AuditEntry(db.Model):  # type: ignore[name-defined,misc]
    """One organiser/admin action; ``digest`` chains it to the entry before (SPEC §10)."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Unique: two writers appending to the same tail cannot both succeed (no forks).
    prev_digest: Mapped[str] = mapped_column(String(64), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
