"""Notation and attribution on sheet_music: the piece's MusicXML score, its state, and
where a bundled piece comes from.

``musicxml_data`` is the score (uncompressed MusicXML): a MusicXML import's
original, or the MIDI file converted at import. ``notation`` says how it was
made (``{"source": "original" | "converted", "warnings": [...]}``) or why it
could not be (``{"error": ...}``); NULL means not tried yet: existing pieces
are converted in the background when the server starts
(:func:`server.services.notation.backfill`). ``attribution`` names the source
of a bundled piece (the starter library, ``source_type`` ``public_domain``).

Revision ID: 0006_notation_starter
Revises: 0005_privacy_limits
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_notation_starter"
down_revision: str | Sequence[str] | None = "0005_privacy_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sheet_music", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribution", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("musicxml_data", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("notation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sheet_music", schema=None) as batch_op:
        batch_op.drop_column("notation")
        batch_op.drop_column("musicxml_data")
        batch_op.drop_column("attribution")
