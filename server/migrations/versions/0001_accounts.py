"""The accounts of the server's first versions: users, tokens, groups' members, grants.

Those versions made these four tables in ``accounts.db`` without a version; a table already there
is kept as it is (its columns are these), so an existing install's file upgrades in place.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "users" not in have:
        op.create_table("users",
                        sa.Column("name", sa.Text, primary_key=True),
                        sa.Column("admin", sa.Boolean, nullable=False, server_default="0"),
                        sa.Column("created", sa.Double, nullable=False))
    if "tokens" not in have:
        op.create_table("tokens",
                        sa.Column("hash", sa.Text, primary_key=True),
                        sa.Column("user", sa.Text, sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
                        sa.Column("created", sa.Double, nullable=False),
                        sa.Column("expires", sa.Double))
    if "members" not in have:
        op.create_table("members",
                        sa.Column("grp", sa.Text, primary_key=True),
                        sa.Column("user", sa.Text, primary_key=True))
    if "grants" not in have:
        op.create_table("grants",
                        sa.Column("subject", sa.Text, primary_key=True),
                        sa.Column("collection", sa.Text, primary_key=True),
                        sa.Column("role", sa.Text, nullable=False))


def downgrade() -> None:
    for table in ("grants", "members", "tokens", "users"):
        op.drop_table(table)
