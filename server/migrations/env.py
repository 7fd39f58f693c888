"""Alembic's entry: runs the migrations on the connection ``Database.upgrade`` opened, inside its transaction."""

from alembic import context
from sqlalchemy import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise TypeError("The server's migrations run through `archivist-server migrate`, on a connection it opens.")
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
