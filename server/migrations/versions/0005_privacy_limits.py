"""Privacy: deactivated accounts wait for their purge; a purged host leaves sessions host-less.

``users.deactivated_at`` is set by ``DELETE /api/users/me`` (the purge job
deletes the user ``purge_after_days`` later); ``practice_sessions.host_user_id``
becomes nullable so a shared session survives its host's purge (see
:mod:`server.services.privacy`).

Revision ID: 0005_privacy_limits
Revises: 0004_progress
Create Date: 2026-11-21

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_privacy_limits"
down_revision: str | Sequence[str] | None = "0004_progress"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_users_deactivated_at"), ["deactivated_at"], unique=False
        )
    with op.batch_alter_table("practice_sessions", schema=None) as batch_op:
        batch_op.alter_column("host_user_id", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    # Sessions whose host was purged cannot get one back: they go with the downgrade.
    op.execute("DELETE FROM practice_sessions WHERE host_user_id IS NULL")
    with op.batch_alter_table("practice_sessions", schema=None) as batch_op:
        batch_op.alter_column("host_user_id", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_deactivated_at"))
        batch_op.drop_column("deactivated_at")
