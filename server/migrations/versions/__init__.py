"""The schema's revisions, oldest first: ``0001`` is the accounts.db of the server's first versions."""
