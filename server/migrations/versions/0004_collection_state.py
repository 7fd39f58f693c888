"""What a shared database also holds, so that replicas on several machines share it: each user's
conversations and their turns, each collection's check-up, and the followed folders; and which
replica wrote each line of the audit log."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("audit", sa.Column("replica", sa.Text, nullable=False, server_default=""))
    op.create_table("conversations",
                    sa.Column("id", sa.Text, primary_key=True),
                    sa.Column("owner", sa.Text, nullable=False),
                    sa.Column("collection", sa.Text, nullable=False),
                    sa.Column("title", sa.Text, nullable=False, server_default=""),
                    sa.Column("created", sa.Double, nullable=False),
                    sa.Column("updated", sa.Double, nullable=False))
    op.create_index("ix_conversations_collection", "conversations", ["collection"])
    op.create_index("conversations_owner", "conversations", ["owner", "collection", "updated"])
    op.create_table("turns",
                    sa.Column("conversation", sa.Text, sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("number", sa.Integer, primary_key=True),
                    sa.Column("body", sa.Text, nullable=False))
    op.create_table("checkups",
                    sa.Column("collection", sa.Text, primary_key=True),
                    sa.Column("body", sa.Text, nullable=False))
    op.create_table("followed",
                    sa.Column("collection", sa.Text, primary_key=True),
                    sa.Column("folder", sa.Text, primary_key=True),
                    sa.Column("since", sa.Double, nullable=False))


def downgrade() -> None:
    for table in ("followed", "checkups", "turns", "conversations"):
        op.drop_table(table)
    op.drop_column("audit", "replica")
