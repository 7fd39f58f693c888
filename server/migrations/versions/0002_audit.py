"""The audit log in the database (ordered by id, across replicas), what `migrate` moved in from a
home folder, and the indexes a busy server's lookups of tokens and grants need."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_tokens_user", "tokens", ["user"])
    op.create_index("ix_grants_collection", "grants", ["collection"])
    op.create_table("audit",
                    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                              autoincrement=True),
                    sa.Column("at", sa.Double, nullable=False),
                    sa.Column("user", sa.Text, nullable=False),
                    sa.Column("action", sa.Text, nullable=False),
                    sa.Column("collection", sa.Text, nullable=False, server_default=""),
                    sa.Column("detail", sa.Text, nullable=False, server_default=""),
                    sa.Column("outcome", sa.Text, nullable=False, server_default="ok"),
                    sa.Column("address", sa.Text, nullable=False, server_default=""))
    op.create_index("audit_user", "audit", ["user", "id"])
    op.create_table("imported",
                    sa.Column("source", sa.Text, primary_key=True),
                    sa.Column("at", sa.Double, nullable=False),
                    sa.Column("rows", sa.Integer, nullable=False))


def downgrade() -> None:
    op.drop_table("imported")
    op.drop_index("audit_user", "audit")
    op.drop_table("audit")
    op.drop_index("ix_grants_collection", "grants")
    op.drop_index("ix_tokens_user", "tokens")
