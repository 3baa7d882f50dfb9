"""study.rater_login: raters sign in with Hugging Face (or not), per study

Adds one column (no table rebuild); existing studies become 'none', which is how every
study created before the option behaved (a random token, or the link's platform id).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('study', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('rater_login', sa.String(length=12), server_default='none', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('study', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('rater_login')
