"""The server database's schema, version by version (Alembic), and the move of a home folder's data into it.

``env.py`` and ``versions/`` are Alembic's script folder, run in code by ``server.database.Database.upgrade``
(there is no alembic.ini to find). A new revision is a new file in ``versions/``: the next number as its
``revision``, the newest one's as its ``down_revision``; a released revision is never edited.
"""
