"""Who may do what: users, their tokens, groups, and each one's role per collection (``server.database``).

A token is shown once, when it is made, and kept only as its SHA-256 (a token is 32 random
bytes, so a fast hash is as safe as a slow one and lets a request be checked in microseconds).
A grant gives a user, or a group written ``@name``, one role on one collection; a user's role
is the highest their own grants and their groups' grants reach. An administrator holds every
role on every collection.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, exc, insert, select, update

from rag.errors import AccessDenied, KnowledgeBaseError, NotSignedIn
from server.database import Database
from server.database import grants as _grants
from server.database import members as _members
from server.database import tokens as _tokens
from server.database import users as _users

TOKEN_PREFIX = "arch_"


class Role(enum.IntEnum):
    """What a user may do with a collection; each role includes the ones below it."""

    READER = 1  # search, ask, extract, read sources, conversations
    EDITOR = 2  # also ingest, remove, follow folders, re-embed, edit the check-up
    OWNER = 3  # also grant, rename, delete, set an adapter

    @property
    def article(self) -> str:
        """"a reader", "an editor", "an owner"."""
        word = self.name.lower()
        return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise KnowledgeBaseError(f"{name!r} is not a role; use reader, editor or owner.") from None


@dataclass(frozen=True, slots=True)
class User:
    """Someone signed in: by a token of theirs, or by name from the intranet's trusted proxy."""

    name: str
    admin: bool = False
    groups: frozenset[str] = frozenset()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users, tokens, groups and grants in the server's database; safe to use from many threads, and
    from many replicas on one shared database (nothing is cached: each question asks the database)."""

    def __init__(self, where: Path | Database) -> None:
        """``where``: the database, or the path of a SQLite file of one machine's server (made or
        upgraded to this version's schema on the spot, as before there were migrations)."""
        if isinstance(where, Path):
            self._db, self._owned = Database.sqlite(where), True
            self._db.upgrade()
        else:
            self._db, self._owned = where, False

    def close(self) -> None:
        if self._owned:
            self._db.close()

    def _connect(self) -> AbstractContextManager[Connection]:
        return self._db.reading()

    # -- users and tokens -----------------------------------------------------------------

    def add_user(self, name: str, admin: bool = False, expires: float | None = None) -> str:
        """Create ``name`` and return their first token (the only time it is shown)."""
        if not name or name.startswith("@") or name != name.strip():
            raise KnowledgeBaseError(f"{name!r} is not a usable user name (no spaces around it, no leading @).")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._db.writing() as conn:
                conn.execute(insert(_users).values(name=name, admin=admin, created=time.time()))
                conn.execute(insert(_tokens).values(hash=_hash(token), user=name, created=time.time(), expires=expires))
        except exc.IntegrityError:
            raise KnowledgeBaseError(f"There is already a user named {name!r}.") from None
        return token

    def new_token(self, name: str, expires: float | None = None, replace: bool = False) -> str:
        """A new token for ``name``, valid until ``expires`` (a Unix time) or for ever; ``replace``
        revokes the ones they had."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db.writing() as conn:
            self._known(conn, name)
            if replace:
                conn.execute(delete(_tokens).where(_tokens.c.user == name))
            conn.execute(insert(_tokens).values(hash=_hash(token), user=name, created=time.time(), expires=expires))
        return token

    def remove_user(self, name: str) -> None:
        """Forget ``name``: their tokens stop working at once; their grants and memberships go."""
        with self._db.writing() as conn:
            self._known(conn, name)
            conn.execute(delete(_tokens).where(_tokens.c.user == name))
            conn.execute(delete(_users).where(_users.c.name == name))
            conn.execute(delete(_grants).where(_grants.c.subject == name))
            conn.execute(delete(_members).where(_members.c.user == name))

    def users(self) -> list[tuple[str, bool]]:
        with self._connect() as conn:
            return [(n, bool(a)) for n, a in conn.execute(select(_users.c.name, _users.c.admin).order_by(_users.c.name))]

    def authenticate(self, token: str) -> User:
        """The user a bearer token belongs to; ``NotSignedIn`` for a missing, wrong, revoked or expired one."""
        if not token:
            raise NotSignedIn("no token was sent; ask your administrator for one.")
        with self._connect() as conn:
            row = conn.execute(select(_tokens.c.user, _tokens.c.expires).where(_tokens.c.hash == _hash(token))).first()
            if row is None:
                raise NotSignedIn("the token is not valid (mistyped, revoked, or its user was removed).")
            name, expires = row
            if expires is not None and expires < time.time():
                raise NotSignedIn(f"the token expired on {time.strftime('%Y-%m-%d %H:%M', time.localtime(expires))}.")
            return self._user(conn, name)

    def user(self, name: str) -> User:
        """``name`` with their groups; a name the proxy vouches for need not be a user here."""
        with self._connect() as conn:
            return self._user(conn, name)

    @staticmethod
    def _user(conn: Connection, name: str) -> User:
        admin = conn.execute(select(_users.c.admin).where(_users.c.name == name)).scalar()
        groups = frozenset(conn.execute(select(_members.c.grp).where(_members.c.user == name)).scalars())
        return User(name, bool(admin), groups)

    @staticmethod
    def _known(conn: Connection, name: str) -> None:
        if conn.execute(select(_users.c.name).where(_users.c.name == name)).first() is None:
            raise KnowledgeBaseError(f"There is no user named {name!r}.")

    # -- groups ---------------------------------------------------------------------------

    def join(self, group: str, name: str) -> None:
        with self._db.writing() as conn:
            self._db.upsert(conn, _members, [{"grp": group.removeprefix("@"), "user": name}])

    def leave(self, group: str, name: str) -> None:
        with self._db.writing() as conn:
            conn.execute(delete(_members).where(_members.c.grp == group.removeprefix("@"), _members.c.user == name))

    # -- grants ---------------------------------------------------------------------------

    def grant(self, subject: str, collection: str, role: Role) -> None:
        """Give ``subject`` (a user, or ``@group``) ``role`` on ``collection``, replacing what it had."""
        with self._db.writing() as conn:
            self._db.upsert(conn, _grants, [{"subject": subject, "collection": collection, "role": role.name.lower()}],
                            replace=["role"])

    def revoke(self, subject: str, collection: str) -> bool:
        """Take every role on ``collection`` from ``subject``; False when it had none."""
        with self._db.writing() as conn:
            gone = conn.execute(delete(_grants).where(_grants.c.subject == subject, _grants.c.collection == collection))
            return gone.rowcount > 0

    def grants(self, collection: str | None = None) -> list[tuple[str, str, Role]]:
        """(subject, collection, role) of every grant, or of one collection's."""
        query = select(_grants.c.subject, _grants.c.collection, _grants.c.role)
        if collection is not None:
            query = query.where(_grants.c.collection == collection)
        with self._connect() as conn:
            rows = conn.execute(query.order_by(_grants.c.collection, _grants.c.subject)).all()
        return [(s, c, Role.named(r)) for s, c, r in rows]

    def rename_collection(self, old: str, new: str) -> None:
        """The grants of ``old`` move to ``new``; any left on ``new`` from an earlier collection go."""
        if old == new:
            return
        with self._db.writing() as conn:
            conn.execute(delete(_grants).where(_grants.c.collection == new))
            conn.execute(update(_grants).where(_grants.c.collection == old).values(collection=new))

    def forget_collection(self, name: str) -> None:
        with self._db.writing() as conn:
            conn.execute(delete(_grants).where(_grants.c.collection == name))

    def role(self, user: User, collection: str) -> Role | None:
        """The highest role ``user`` holds on ``collection``, or None."""
        if user.admin:
            return Role.OWNER
        subjects = [user.name, *(f"@{g}" for g in user.groups)]
        query = select(_grants.c.role).where(_grants.c.collection == collection, _grants.c.subject.in_(subjects))
        with self._connect() as conn:
            held = conn.execute(query).scalars().all()
        return max((Role.named(r) for r in held), default=None)

    def require(self, user: User, collection: str, role: Role) -> None:
        """``AccessDenied`` unless ``user`` holds ``role`` (or more) on ``collection``."""
        held = self.role(user, collection)
        if held is None:
            raise AccessDenied(f"{user.name} has no access to the collection {collection!r}.")
        if held < role:
            raise AccessDenied(f"{user.name} is {held.article} of {collection!r}; this needs {role.article}.")

    def readable(self, user: User, collections: Iterable[str]) -> list[str]:
        """The names among ``collections`` that ``user`` may at least read."""
        return [c for c in collections if self.role(user, c) is not None]
