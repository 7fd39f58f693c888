"""``archivist-server``: one knowledge base for a team, each member seeing only what they were given.

``accounts`` (users, tokens, groups, grants), ``audit`` (the append-only log), ``app`` (the
FastAPI app that serves ``rag.service.dispatch``'s protocol on behalf of a signed-in user) and ``cli``
(the command that runs and administers it).
"""
