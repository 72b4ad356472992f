"""备份与恢复: a portable, engine-independent dump of the whole database.

``flask backup OUT`` writes every table, in foreign-key order, to one JSON-lines file
(gzip-compressed when OUT ends in ``.gz``): a header naming the schema revision, then for each
table a line with its column names followed by one line per row, then a trailer with the row
count of every table and a SHA-256 over everything before it. Values are exact: datetimes in
UTC with microseconds, UUIDs as text, JSON as JSON (SQL NULL kept apart from JSON ``null``).

``flask restore IN`` checks the whole file first (trailer, digest, schema revision, columns),
then loads it into an empty migrated database in one transaction: a refused or failed restore
leaves the database as it was. PostgreSQL sequences are moved past the restored ids. It works
between engines (SQLite → PostgreSQL and back).

Anonymity (SPEC §5): the backup holds what the database holds and nothing more: codes only as
keyed hashes, ballots with no time or reference. Ballots, answers and receipts (all of closed
rounds: nothing is stored in clear before close) are dumped and restored in their stored order,
random since the close. An open round's sealed ballot box (``evaluation.voting.box``) follows
the schema's tables as a section of its own, its rows in a fresh random order (the table holds
them in submission order until the close drops it; a backup file would keep that for ever), and
a restore makes the box again before loading it. The box's private key stays as it was: wrapped
(so the restored server needs the same ``CODE_HASH_KEY``/``SECRET_KEY`` to close the round) or
with the 监票人.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from sqlalchemy import (
    JSON,
    DateTime,
    LargeBinary,
    Table,
    Uuid,
    func,
    insert,
    inspect,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from evaluation import audit
from evaluation.cli import ACTOR, Command, CommandError
from evaluation.errors import DomainError, InputError
from evaluation.extensions import db
from evaluation.models import Round, RoundState
from evaluation.transactions import write_transaction
from evaluation.voting import box

_random = secrets.SystemRandom()

FORMAT = "evaluation-backup"
VERSION = 1
# Tables whose physical row order is kept as stored (SPEC §5.3: random since their round's
# close): never re-sorted by key.
STORED_ORDER = frozenset({"ballot", "answer", "receipt"})
CHUNK = 2000


@dataclass
class BackupSummary:
    """What a backup or restore moved: rows per table, in dependency order."""

    counts: dict[str, int] = field(default_factory=dict)
    schema: str = ""

    @property
    def total(self) -> int:
        """All rows together."""
        return sum(self.counts.values())


# --- value encoding ---------------------------------------------------------------------------


def _encode(table: Table, row: Any) -> list[Any]:
    """One database row as a JSON-ready list, exact for every column type."""
    values: list[Any] = []
    for column in table.columns:
        value = row._mapping[column.name]
        kind = column.type
        if isinstance(kind, JSON):
            # SQL NULL is null; a stored JSON value (even JSON null) is wrapped in a list.
            is_sql_null = row._mapping[f"__null_{column.name}"]
            values.append(None if is_sql_null else [value])
        elif value is None:
            values.append(None)
        elif isinstance(kind, DateTime):
            values.append(_utc(value).isoformat(timespec="microseconds"))
        elif isinstance(kind, Uuid):
            values.append(str(value))
        elif isinstance(kind, LargeBinary):
            values.append(base64.b64encode(bytes(value)).decode("ascii"))
        elif hasattr(value, "value") and isinstance(value.value, str):  # enum members
            values.append(value.value)
        else:
            values.append(value)
    return values


def _decode(table: Table, values: list[Any]) -> dict[str, Any]:
    """The inverse of ``_encode``: a row ready for ``insert``."""
    row: dict[str, Any] = {}
    for column, value in zip(table.columns, values, strict=True):
        kind = column.type
        if isinstance(kind, JSON):
            row[column.name] = null() if value is None else value[0]
        elif value is None:
            row[column.name] = None
        elif isinstance(kind, DateTime):
            row[column.name] = _utc(datetime.fromisoformat(value))
        elif isinstance(kind, Uuid):
            row[column.name] = uuid.UUID(value)
        elif isinstance(kind, LargeBinary):
            row[column.name] = base64.b64decode(value)
        else:
            row[column.name] = value
    return row


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes, PostgreSQL aware ones: both are UTC in this product.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- reading the database ---------------------------------------------------------------------


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(db.metadata.sorted_tables)


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision the database is migrated to, or None if it is not migrated."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _storage_order(conn: Connection) -> Any:
    return literal_column("ctid" if conn.dialect.name == "postgresql" else "rowid")


def _rows(conn: Connection, table: Table) -> Iterator[Any]:
    """The table's rows: stored order for ballots and answers, key order for the rest."""
    extra = [
        column.is_(None).label(f"__null_{column.name}")
        for column in table.columns
        if isinstance(column.type, JSON)
    ]
    query = select(table, *extra)
    if table.name in STORED_ORDER:
        query = query.order_by(_storage_order(conn))
    else:
        query = query.order_by(*table.primary_key.columns)
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
    self_refs = [fk for fk in table.foreign_keys if fk.column.table is table]
    if not self_refs:
        yield from result
        return
    # A tree (unit.parent_id): parents first, whatever their ids.
    pending = list(result)
    done: set[Any] = set()
    while pending:
        later = []
        for row in pending:
            parents = [row._mapping[fk.parent.name] for fk in self_refs]
            if all(p is None or p in done for p in parents):
                done.add(row._mapping[self_refs[0].column.name])
                yield row
            else:
                later.append(row)
        if len(later) == len(pending):
            yield from later  # a cycle cannot be ordered; the restore will name the table
            return
        pending = later


def _shuffled(rows: Iterator[Any]) -> Iterator[Any]:
    """An open round's box rows in a fresh random order (see the module docstring)."""
    held = list(rows)
    _random.shuffle(held)
    yield from held


def _line(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def write_backup(out: IO[bytes]) -> BackupSummary:
    """Write the whole database to ``out`` from one consistent snapshot."""
    engine = db.engine
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    summary = BackupSummary()
    digest = hashlib.sha256()

    def emit(obj: Any) -> None:
        data = _line(obj)
        digest.update(data)
        out.write(data)

    with engine.connect().execution_options(**options) as conn, conn.begin():
        revision = schema_revision(conn)
        if revision is None:
            raise InputError("数据库尚未建立结构（请先运行 flask db upgrade），没有可备份的内容")
        summary.schema = revision
        emit(
            {
                "format": FORMAT,
                "version": VERSION,
                "schema": revision,
                "engine": engine.dialect.name,
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "tables": [t.name for t in tables()],
                # The audit log's head in this snapshot: flask audit verify --against FILE.
                "audit_head": audit.chain_head(conn).as_json(),
            }
        )
        open_rounds = conn.execute(
            select(Round.id).where(Round.state == RoundState.OPEN).order_by(Round.id)
        ).scalars()
        boxes = [box.box_table(round_id) for round_id in open_rounds]
        try:
            for table in boxes:  # a close cannot drop them under the backup from here on
                if conn.dialect.name == "postgresql":
                    conn.execute(text(f"LOCK TABLE {table.name} IN ACCESS SHARE MODE"))
        except DBAPIError as exc:
            if box.gone_with_close(exc):
                raise _BoxGone from None  # closed since the snapshot: start again
            raise
        for table in [*tables(), *boxes]:
            emit({"table": table.name, "columns": [c.name for c in table.columns]})
            count = 0
            rows = _rows(conn, table)
            if box.TABLE_PATTERN.match(table.name):
                rows = _shuffled(rows)
            for row in rows:
                emit(_encode(table, row))
                count += 1
            summary.counts[table.name] = count
    out.write(_line({"end": True, "counts": summary.counts, "sha256": digest.hexdigest()}))
    return summary


class _BoxGone(Exception):
    """A round closed between the backup's snapshot and its lock on the round's box."""


def backup_to(path: Path) -> BackupSummary:
    """Write a backup file (gzip when the name ends in .gz); written whole or not at all."""
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{path} 是一个目录，请给出备份文件名，例如 {path / 'evaluation.jsonl.gz'}"
        )
    if not path.parent.exists():
        raise InputError(f"目录 {path.parent} 不存在")
    partial = path.with_name(path.name + ".partial")
    try:
        opener: Any = gzip.open if _gz(path) else open
        for attempt in range(3):
            try:
                with opener(partial, "wb") as stream:
                    summary = write_backup(stream)
                break
            except _BoxGone:
                if attempt == 2:
                    raise InputError("备份期间一直有测评活动在结束，请稍后再备份") from None
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return summary


def _gz(path: Path) -> bool:
    return path.name.endswith(".gz")


# --- reading a backup file --------------------------------------------------------------------


@dataclass
class _Section:
    table: str
    columns: list[str]
    rows: int = 0


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    if compressed:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block


def _lines(path: Path) -> Iterator[tuple[int, bytes, Any]]:
    """(line number, raw bytes, parsed JSON) for every line; bad input is an InputError."""
    try:
        with _open(path) as stream:
            for number, data in enumerate(stream, start=1):
                try:
                    yield number, data, json.loads(data)
                except ValueError:
                    raise InputError(f"备份文件第 {number} 行无法解析，文件可能已损坏") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise InputError(f"找不到备份文件 {path}") from None
        raise InputError(f"无法读取备份文件 {path}：文件已损坏或不完整") from None


def check_backup(path: Path, expected_schema: str) -> tuple[dict[str, Any], list[_Section]]:
    """Read the whole file once: header, sections, trailer and digest must all agree."""
    digest = hashlib.sha256()
    header: dict[str, Any] | None = None
    sections: list[_Section] = []
    trailer: dict[str, Any] | None = None
    for number, data, obj in _lines(path):
        if trailer is not None:
            raise InputError(f"备份文件第 {number} 行：结束标记之后还有内容，文件不完整或被改动")
        if header is None:
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise InputError("这不是本系统的备份文件（缺少备份文件头）")
            if obj.get("version") != VERSION:
                raise InputError(f"备份文件格式版本 {obj.get('version')} 不受支持")
            header = obj
        elif isinstance(obj, dict) and obj.get("end") is True:
            trailer = obj
            continue
        elif isinstance(obj, dict) and "table" in obj:
            sections.append(_Section(str(obj["table"]), list(obj.get("columns", []))))
        elif isinstance(obj, list) and sections:
            if len(obj) != len(sections[-1].columns):
                raise InputError(f"备份文件第 {number} 行：列数与表 {sections[-1].table} 不符")
            sections[-1].rows += 1
        else:
            raise InputError(f"备份文件第 {number} 行内容无法识别，文件可能已损坏")
        digest.update(data)
    if header is None:
        raise InputError("备份文件是空的")
    if trailer is None:
        raise InputError("备份文件不完整（缺少结束标记），可能在写入或复制时被截断")
    if trailer.get("sha256") != digest.hexdigest():
        raise InputError("备份文件的校验和不符：文件已损坏或被改动")
    counts = {s.table: s.rows for s in sections}
    if trailer.get("counts") != counts:
        raise InputError("备份文件中的行数与结束标记记录的不符：文件已损坏或被改动")
    if header.get("schema") != expected_schema:
        raise InputError(
            f"备份的数据库结构版本（{header.get('schema')}）与当前数据库（{expected_schema}）不同，"
            "请用相同版本的程序恢复"
        )
    known = {t.name: [c.name for c in t.columns] for t in tables()}
    names = [s.table for s in sections]
    schema = [t.name for t in tables()]
    boxes = names[len(schema) :]
    if names[: len(schema)] != schema or not all(box.TABLE_PATTERN.match(n) for n in boxes):
        raise InputError("备份文件中的表与当前数据库结构不符")
    box_columns = [c.name for c in box.box_table(0).columns]
    known.update({s.table: box_columns for s in sections if s.table not in known})
    for section in sections:
        if section.columns != known[section.table]:
            raise InputError(f"备份文件中表 {section.table} 的列与当前数据库结构不符")
    return header, sections


def _non_empty_tables() -> list[str]:
    busy = [
        name
        for name in inspect(db.session.connection()).get_table_names()
        if box.TABLE_PATTERN.match(name)
    ]
    for table in tables():
        if db.session.execute(select(func.count()).select_from(table)).scalar():
            busy.append(table.name)
    return busy


def restore_from(path: Path, *, actor: str = ACTOR) -> BackupSummary:
    """Load a backup into this (empty, migrated) database in one transaction."""
    path = Path(path)
    revision = schema_revision(db.session.connection())
    if revision is None:
        raise InputError("目标数据库尚未建立结构，请先运行 flask db upgrade，再恢复备份")
    _header, _sections = check_backup(path, revision)
    with write_transaction():
        busy = _non_empty_tables()
        if busy:
            raise InputError(
                "只能恢复到空数据库：当前数据库已有数据（"
                + "、".join(busy)
                + "）。请新建一个数据库并运行 flask db upgrade 后再恢复，现有数据未作任何改动"
            )
        summary = BackupSummary(schema=revision)
        by_name = {t.name: t for t in tables()}
        table: Table | None = None
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            if table is not None and batch:
                db.session.execute(insert(table), batch)
                summary.counts[table.name] = summary.counts.get(table.name, 0) + len(batch)
                batch.clear()

        for _number, _data, obj in _lines(path):
            if isinstance(obj, list):
                assert table is not None
                batch.append(_decode(table, obj))
                if len(batch) >= CHUNK:
                    flush()
            elif isinstance(obj, dict) and "table" in obj:
                flush()
                name = obj["table"]
                table = by_name[name] if name in by_name else _restored_box(name)
                summary.counts[table.name] = 0
        flush()
        _reset_sequences()
        audit.record(
            actor,
            "backup.restore",
            file=path.name,
            schema=revision,
            rows=summary.total,
            backup_created_at=_header.get("created_at"),
        )
    return summary


def _restored_box(name: str) -> Table:
    """Make the sealed ballot box of an open round again (its rows follow)."""
    round_id = int(name.removeprefix("ballot_box_"))
    rnd = db.session.get(Round, round_id)
    if rnd is None or rnd.state != RoundState.OPEN:
        raise InputError(
            f"备份文件中有测评活动 {round_id} 的投票箱，但该活动不在进行中：文件已被改动"
        )
    table = box.box_table(round_id)
    table.create(db.session.connection())
    return table


def _reset_sequences() -> None:
    """PostgreSQL: the next generated id follows the restored ones."""
    if db.engine.dialect.name != "postgresql":
        return
    for table in tables():
        column = table.autoincrement_column
        if column is None:
            continue
        db.session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                f'COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) + 1, false)'
            )
        )


# --- command line -----------------------------------------------------------------------------


@click.command(
    "backup", cls=Command, help="把整个数据库写入备份文件（JSON 行；文件名以 .gz 结尾时压缩）"
)
@click.argument("out", type=click.Path(path_type=Path))
def backup_command(out: Path) -> None:
    """Write the whole database to OUT (JSON lines; gzip if OUT ends in .gz)."""
    try:
        summary = backup_to(out)
        with write_transaction():
            audit.record(ACTOR, "backup.create", file=out.name, rows=summary.total)
    except DomainError as exc:
        raise CommandError(exc.message) from None
    click.echo(f"已备份 {len(summary.counts)} 张表、共 {summary.total} 行到 {out}")


@click.command(
    "restore", cls=Command, help="把备份恢复到一个已迁移的空数据库（全部恢复或全不恢复）"
)
@click.argument("source", metavar="IN", type=click.Path(path_type=Path))
def restore_command(source: Path) -> None:
    """Restore a backup into an empty, migrated database (all or nothing)."""
    try:
        summary = restore_from(source)
    except DomainError as exc:
        raise CommandError(exc.message) from None
    except SQLAlchemyError as exc:
        reason = type(getattr(exc, "orig", exc)).__name__
        raise CommandError(
            f"恢复失败（数据库拒绝了备份中的数据：{reason}），数据库未作任何改动"
        ) from None
    click.echo(f"已从 {source} 恢复 {len(summary.counts)} 张表、共 {summary.total} 行")
    click.echo("请运行 flask audit verify 检查审计日志")
