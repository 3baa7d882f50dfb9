"""stimulus.source_kind: natural or AI-generated, for per-kind correlations

Adds one column (no table rebuild); existing stimuli become 'natural', which is what every
study imported before the tag existed holds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stimulus', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('source_kind', sa.String(length=10), server_default='natural', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('stimulus', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('source_kind')
