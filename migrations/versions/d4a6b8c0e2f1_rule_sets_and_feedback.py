"""rule sets per round, the organiser's words on feedback sheets, accountability sets per unit

Revision ID: d4a6b8c0e2f1
Revises: c7e2f3a4b5d6
Create Date: 2026-11-30 16:00:00

``round.rule_set`` is the snapshot of the grading rule set a round chose (SPEC §4); rounds made
before rule sets keep NULL and are read as 本系统默认规则 with the rules their form snapshots
carry (which were exactly those). ``subject.opinion`` / ``subject.rectification`` are the
评价意见 and 整改要求 an organiser types for a feedback sheet; archiving copies them into the
entry. ``unit.accountability_rules`` names the accountability rule set a unit chose (NULL: its
parent's, and at the root the shipped 000 §五 set).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4a6b8c0e2f1'
down_revision = 'c7e2f3a4b5d6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rule_set', sa.JSON(), nullable=True))
    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opinion', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(
            sa.Column('rectification', sa.Text(), nullable=False, server_default='')
        )
    with op.batch_alter_table('archive_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opinion', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(
            sa.Column('rectification', sa.Text(), nullable=False, server_default='')
        )
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accountability_rules', sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_column('accountability_rules')
    with op.batch_alter_table('archive_entry', schema=None) as batch_op:
        batch_op.drop_column('rectification')
        batch_op.drop_column('opinion')
    with op.batch_alter_table('subject', schema=None) as batch_op:
        batch_op.drop_column('rectification')
        batch_op.drop_column('opinion')
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_column('rule_set')
