"""strata limited to some subjects (服务对象 rates only the team, say)

Revision ID: e5b7c9d1f3a2
Revises: d4a6b8c0e2f1
Create Date: 2026-11-30 17:00:00

``stratum.rates_all`` is true for a stratum that rates every subject of its round (every
stratum made before this revision, and the default). A stratum limited to some subjects has it
false, and ``stratum_subject`` lists the subjects it rates (none once they were all removed:
opening the round refuses that). Rows go with their stratum or subject.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "e5b7c9d1f3a2"
down_revision = "d4a6b8c0e2f1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stratum", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rates_all", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "stratum_subject",
        sa.Column("stratum_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["stratum_id"], ["stratum.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subject_id"], ["subject.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("stratum_id", "subject_id"),
    )
    with op.batch_alter_table("stratum_subject", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stratum_subject_subject_id"), ["subject_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("stratum_subject", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stratum_subject_subject_id"))
    op.drop_table("stratum_subject")
    with op.batch_alter_table("stratum", schema=None) as batch_op:
        batch_op.drop_column("rates_all")
