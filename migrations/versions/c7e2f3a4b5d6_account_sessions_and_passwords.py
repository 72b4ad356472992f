"""accounts: a session version per account, and a flag for one-time passwords

Revision ID: c7e2f3a4b5d6
Revises: b5c1d2e3f4a5
Create Date: 2026-11-30 14:10:00

``session_version`` is stored in the session at login and checked on every request; bumping
it (logout, password change or reset, deactivation) ends every older session.
``must_change_password`` is set by an admin's reset: the account is sent to the change page
until the one-time password is replaced.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7e2f3a4b5d6'
down_revision = 'b5c1d2e3f4a5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('session_version')
