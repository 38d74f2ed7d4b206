"""Progress: user_progress, user_achievements, starred_pieces, users.time_zone and an
covering index of practice_logs (user_id, deleted_at, start_time, activity_type,
duration_seconds) and one of the columns the totals and trends read.

Existing users get their progress on their next logbook change (or the first
progress read, which recomputes a missing summary).

Revision ID: 0004_progress
Revises: 0003_piece_analysis
Create Date: 2026-11-21

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_progress"
down_revision: str | Sequence[str] | None = "0003_piece_analysis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.create_table(
        "user_progress",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("xp", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("duets", sa.Integer(), nullable=False),
        sa.Column("total_seconds", sa.Float(), nullable=False),
        sa.Column("pieces", sa.Integer(), nullable=False),
        sa.Column("best_piece_accuracy", sa.Float(), nullable=True),
        sa.Column("last_practice_day", sa.String(length=10), nullable=True),
        sa.Column("run_days", sa.Integer(), nullable=False),
        sa.Column("longest_streak", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_progress_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_progress")),
    )
    op.create_table(
        "user_achievements",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_achievements_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "code", name=op.f("pk_user_achievements")),
    )
    op.create_table(
        "starred_pieces",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("piece_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_starred_pieces_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["piece_id"],
            ["sheet_music.id"],
            name=op.f("fk_starred_pieces_piece_id_sheet_music"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "piece_id", name=op.f("pk_starred_pieces")),
    )
    # Covers the per-day sums of progress and analytics (no table row read).
    op.create_index(
        "ix_practice_logs_live_start",
        "practice_logs",
        ["user_id", "deleted_at", "start_time", "activity_type", "duration_seconds"],
        unique=False,
    )
    # Covers the totals, per-activity/instrument/piece sums and the trends.
    op.create_index(
        "ix_practice_logs_live_stats",
        "practice_logs",
        [
            "user_id",
            "deleted_at",
            "activity_type",
            "instrument",
            "source",
            "piece_id",
            "work_title",
            "start_time",
            "duration_seconds",
            "accuracy_percentage",
            "tempo_practiced",
            "complete",
            "id",
        ],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_practice_logs_live_stats", table_name="practice_logs")
    op.drop_index("ix_practice_logs_live_start", table_name="practice_logs")
    op.drop_table("starred_pieces")
    op.drop_table("user_achievements")
    op.drop_table("user_progress")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
