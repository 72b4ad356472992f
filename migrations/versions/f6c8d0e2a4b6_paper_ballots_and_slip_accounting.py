"""paper ballots entered by two clerks, and every slip accounted for

Revision ID: f6c8d0e2a4b6
Revises: e5b7c9d1f3a2
Create Date: 2026-11-30 19:00:00

* ``code.serial_tag``: keyed hash of a slip's printed serial (a lost slip is voided by it);
  ``code_batch.first_serial`` / ``replaces``: the serial range of a batch, and the serial a
  补发 replaces. Slips issued before this revision have no serial.
* ``stratum.paper``: the stratum's paper counts (printed, valid, invalid by rule, marks counted
  as 弃权 by rule), never anything per ballot.
* ``paper_issue``: prints of blank paper ballots; ``paper_batch`` / ``paper_entry``: stacks of
  returned ballots being entered twice (gone once in the sealed box).
* ``round.reconciliation_note``: the organiser's reason for a mismatch, needed to close.
"""

from alembic import op
import sqlalchemy as sa


revision = "f6c8d0e2a4b6"
down_revision = "e5b7c9d1f3a2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("code", schema=None) as batch_op:
        batch_op.add_column(sa.Column("serial_tag", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_code_serial_tag", ["serial_tag"])
    with op.batch_alter_table("code_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_serial", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("replaces", sa.String(length=16), nullable=True))
    with op.batch_alter_table("stratum", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paper", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("round", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reconciliation_note", sa.Text(), nullable=True))
    op.create_table(
        "paper_issue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("stratum_id", sa.Integer(), nullable=False),
        sa.Column("first_serial", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["round.id"],
            name=op.f("fk_paper_issue_round_id_round"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stratum_id"],
            ["stratum.id"],
            name=op.f("fk_paper_issue_stratum_id_stratum"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_issue")),
    )
    with op.batch_alter_table("paper_issue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_issue_round_id"), ["round_id"], unique=False)
    op.create_table(
        "paper_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("stratum_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["round.id"],
            name=op.f("fk_paper_batch_round_id_round"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stratum_id"],
            ["stratum.id"],
            name=op.f("fk_paper_batch_stratum_id_stratum"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_batch")),
        sa.UniqueConstraint("round_id", "number", name=op.f("uq_paper_batch_round_id")),
    )
    with op.batch_alter_table("paper_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_batch_round_id"), ["round_id"], unique=False)
    op.create_table(
        "paper_entry",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("clerk", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["paper_batch.id"],
            name=op.f("fk_paper_entry_batch_id_paper_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "clerk", "position", name=op.f("pk_paper_entry")),
    )


def downgrade():
    op.drop_table("paper_entry")
    with op.batch_alter_table("paper_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_batch_round_id"))
    op.drop_table("paper_batch")
    with op.batch_alter_table("paper_issue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_issue_round_id"))
    op.drop_table("paper_issue")
    with op.batch_alter_table("round", schema=None) as batch_op:
        batch_op.drop_column("reconciliation_note")
    with op.batch_alter_table("stratum", schema=None) as batch_op:
        batch_op.drop_column("paper")
    with op.batch_alter_table("code_batch", schema=None) as batch_op:
        batch_op.drop_column("replaces")
        batch_op.drop_column("first_serial")
    with op.batch_alter_table("code", schema=None) as batch_op:
        batch_op.drop_constraint("uq_code_serial_tag", type_="unique")
        batch_op.drop_column("serial_tag")
