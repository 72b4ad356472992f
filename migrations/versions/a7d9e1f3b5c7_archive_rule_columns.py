"""archive entries carry what the accountability rules read as plain columns

Revision ID: a7d9e1f3b5c7
Revises: f6c8d0e2a4b6
Create Date: 2026-12-01 00:10:00

* ``archive_entry.closed_at``, ``satisfaction_rate``, ``trust_rate``, ``weighted``: copied from
  the entry's ``figures`` (the close time from the round where older figures lack it), so a
  province's flags are judged from plain columns instead of every entry's JSON (issue 18).
  Entries never change; existing ones are filled here, in batches.
* ``archive_entry (person_id, year)`` and ``(unit_id, year)`` replace the single-column indexes:
  a cadre's or a unit's entries are found, and their years listed, from the index alone.
"""

from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


revision = "a7d9e1f3b5c7"
down_revision = "f6c8d0e2a4b6"
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade():
    with op.batch_alter_table("archive_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("satisfaction_rate", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("trust_rate", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("weighted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_index("ix_archive_entry_person_id")
        batch_op.drop_index("ix_archive_entry_unit_id")
        batch_op.create_index("ix_archive_entry_person_year", ["person_id", "year"])
        batch_op.create_index("ix_archive_entry_unit_year", ["unit_id", "year"])

    meta = sa.MetaData()
    entry = sa.Table(
        "archive_entry",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("round_id", sa.Integer),
        sa.Column("figures", sa.JSON),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("satisfaction_rate", sa.Text),
        sa.Column("trust_rate", sa.Text),
        sa.Column("weighted", sa.Boolean),
    )
    rnd = sa.Table(
        "round",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(entry.c.id, entry.c.figures, rnd.c.closed_at)
            .join(rnd, entry.c.round_id == rnd.c.id)
            .where(entry.c.id > last)
            .order_by(entry.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for entry_id, figures, round_closed in rows:
            figures = figures or {}
            text = figures.get("closed_at")
            closed = datetime.fromisoformat(text) if text else round_closed
            if closed is not None and closed.tzinfo is None:
                closed = closed.replace(tzinfo=UTC)
            conn.execute(
                entry.update()
                .where(entry.c.id == entry_id)
                .values(
                    closed_at=closed,
                    satisfaction_rate=figures.get("satisfaction_rate"),
                    trust_rate=figures.get("trust_rate"),
                    weighted=bool(figures.get("weighted")),
                )
            )
        last = rows[-1][0]


def downgrade():
    with op.batch_alter_table("archive_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_archive_entry_unit_year")
        batch_op.drop_index("ix_archive_entry_person_year")
        batch_op.create_index("ix_archive_entry_unit_id", ["unit_id"])
        batch_op.create_index("ix_archive_entry_person_id", ["person_id"])
        batch_op.drop_column("weighted")
        batch_op.drop_column("trust_rate")
        batch_op.drop_column("satisfaction_rate")
        batch_op.drop_column("closed_at")
