"""resumable sessions, study links, tasks, trap pairs, viewing conditions

Only added columns and indexes (no table is rebuilt, so SQLite never drops a table that
votes refer to): a study's link slug, task, completion code and return URL; a rater's
platform id and link parameters; a pair's kind; how often an assignment was shown; the
viewing conditions reported with a vote. Existing golden pairs become kind 'golden'.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 06:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('study', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('slug', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('task', sa.String(length=10), server_default='quality', nullable=False))
        batch_op.add_column(sa.Column('completion_code', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('redirect_url', sa.Text(), nullable=True))
        batch_op.create_index('uq_study_slug', ['slug'], unique=True)

    with op.batch_alter_table('pair', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='test', nullable=False))
    op.execute("UPDATE pair SET kind = 'golden' WHERE is_golden")

    with op.batch_alter_table('rater', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('platform_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('platform', sa.JSON(), nullable=True))
        batch_op.create_index('uq_rater_study_platform', ['study_id', 'platform_id'], unique=True)

    with op.batch_alter_table('assignment', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('shown_count', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('vote', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('viewport_w', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('viewport_h', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('device_pixel_ratio', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('view_ms', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('view_mode', sa.String(length=10), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops columns in place (no table rebuild).
    with op.batch_alter_table('vote', schema=None, recreate='never') as batch_op:
        for column in ('view_mode', 'view_ms', 'device_pixel_ratio', 'viewport_h', 'viewport_w'):
            batch_op.drop_column(column)
    with op.batch_alter_table('assignment', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('shown_count')
    with op.batch_alter_table('rater', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('uq_rater_study_platform')
        batch_op.drop_column('platform')
        batch_op.drop_column('platform_id')
    with op.batch_alter_table('pair', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('kind')
    with op.batch_alter_table('study', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('uq_study_slug')
        batch_op.drop_column('redirect_url')
        batch_op.drop_column('completion_code')
        batch_op.drop_column('task')
        batch_op.drop_column('slug')
