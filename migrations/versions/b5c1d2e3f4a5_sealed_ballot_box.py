"""sealed ballot box: the round's key pair and who keeps the private key

Revision ID: b5c1d2e3f4a5
Revises: a073e0891a4c
Create Date: 2026-11-30 13:00:00

Each open round's sealed ballots live in a table of its own, ``ballot_box_<round id>``, created
at open and dropped at close by the application (``evaluation.voting.box``), not here.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5c1d2e3f4a5'
down_revision = 'a073e0891a4c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('box_custody', sa.String(length=16), nullable=False,
                                      server_default='server'))
        batch_op.add_column(sa.Column('box_public_key', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('box_private_key', sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_column('box_private_key')
        batch_op.drop_column('box_public_key')
        batch_op.drop_column('box_custody')
