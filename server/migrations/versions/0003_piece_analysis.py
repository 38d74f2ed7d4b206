"""Piece library metadata on sheet_music: key, analysis, instrument, style period,
grade, generator.

The new columns are nullable; existing pieces are analysed on the server's
next startup (:func:`server.services.library.backfill`), which fills them in.

Revision ID: 0003_piece_analysis
Revises: 0002
Create Date: 2026-11-21

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_piece_analysis"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("sheet_music", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_name", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("analysis", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("instrument", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("style_period", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("grade", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("generator", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_sheet_music_instrument"), ["instrument"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sheet_music_style_period"), ["style_period"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("sheet_music", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sheet_music_style_period"))
        batch_op.drop_index(batch_op.f("ix_sheet_music_instrument"))
        batch_op.drop_column("generator")
        batch_op.drop_column("grade")
        batch_op.drop_column("style_period")
        batch_op.drop_column("instrument")
        batch_op.drop_column("analysis")
        batch_op.drop_column("key_name")
