"""Leases: a job that one replica of several does at a time (watching the followed folders), and
which replica holds it until when, in the database's own clock (seconds since 1970)."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table("leases",
                    sa.Column("name", sa.Text, primary_key=True),
                    sa.Column("holder", sa.Text, nullable=False, server_default=""),
                    sa.Column("expires", sa.Double, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_table("leases")
