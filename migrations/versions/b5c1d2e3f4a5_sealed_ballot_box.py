"""sealed ballot box: the round's public key and who keeps the private key

Revision ID: b5c1d2e3f4a5
Revises: a073e0891a4c
Create Date: 2026-11-30 13:00:00

Each open round's sealed ballots (and, under 服务器保管, its wrapped private key) live in a
table of its own, ``ballot_box_<round id>``, created at open and dropped at close by the
application (``evaluation.voting.box``), not here.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5c1d2e3f4a5'
down_revision = 'a073e0891a4c'
branch_labels = None
depends_on = None


def upgrade():
    # A round open before this version keeps its ballots in clear and has no box: it cannot
    # be carried across. Close (or void) it with the version it was opened with, then upgrade.
    open_rounds = op.get_bind().execute(
        sa.text("SELECT id, title FROM round WHERE state = 'open' ORDER BY id")
    ).all()
    if open_rounds:
        names = "、".join(f"{r.id}“{r.title}”" for r in open_rounds)
        raise RuntimeError(
            f"升级中止：测评活动 {names} 正在进行中。新版本的选票在投票箱中加密保存，进行中的活动"
            "无法跨版本继续。请先用当前版本结束（或作废）这些活动，再运行 flask db upgrade；"
            "数据库未作任何改动。"
        )
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('box_custody', sa.String(length=16), nullable=False,
                                      server_default='server'))
        batch_op.add_column(sa.Column('box_public_key', sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_column('box_public_key')
        batch_op.drop_column('box_custody')
