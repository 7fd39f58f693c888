"""Who may do what: users, their tokens, groups, and each one's role per collection (SQLite).

A token is shown once, when it is made, and kept only as its SHA-256 (a token is 32 random
bytes, so a fast hash is as safe as a slow one and lets a request be checked in microseconds).
A grant gives a user, or a group written ``@name``, one role on one collection; a user's role
is the highest their own grants and their groups' grants reach. An administrator holds every
role on every collection.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import AccessDenied, KnowledgeBaseError, NotSignedIn

TOKEN_PREFIX = "arch_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created REAL NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS members (
    grp TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (grp, user));
CREATE TABLE IF NOT EXISTS grants (
    subject TEXT NOT NULL, collection TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (subject, collection));
"""


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
    """Users, tokens, groups and grants in one SQLite file; safe to use from many threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # token hashes and grants: for the server's account only, whatever the umask
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, *args: object) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- users and tokens -----------------------------------------------------------------

    def add_user(self, name: str, admin: bool = False, expires: float | None = None) -> str:
        """Create ``name`` and return their first token (the only time it is shown)."""
        if not name or name.startswith("@") or name != name.strip():
            raise KnowledgeBaseError(f"{name!r} is not a usable user name (no spaces around it, no leading @).")
        try:
            self._rows("INSERT INTO users (name, admin, created) VALUES (?, ?, ?)", name, int(admin), time.time())
        except sqlite3.IntegrityError:
            raise KnowledgeBaseError(f"There is already a user named {name!r}.") from None
        return self.new_token(name, expires)

    def new_token(self, name: str, expires: float | None = None, replace: bool = False) -> str:
        """A new token for ``name``, valid until ``expires`` (a Unix time) or for ever; ``replace``
        revokes the ones they had."""
        self._known(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            if replace:
                self._db.execute("DELETE FROM tokens WHERE user = ?", (name,))
            self._db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)", (_hash(token), name, time.time(), expires))
        return token

    def remove_user(self, name: str) -> None:
        """Forget ``name``: their tokens stop working at once; their grants and memberships go."""
        self._known(name)
        with self._lock:
            self._db.execute("DELETE FROM users WHERE name = ?", (name,))
            self._db.execute("DELETE FROM grants WHERE subject = ?", (name,))
            self._db.execute("DELETE FROM members WHERE user = ?", (name,))

    def users(self) -> list[tuple[str, bool]]:
        return [(n, bool(a)) for n, a in self._rows("SELECT name, admin FROM users ORDER BY name")]

    def authenticate(self, token: str) -> User:
        """The user a bearer token belongs to; ``NotSignedIn`` for a missing, wrong, revoked or expired one."""
        if not token:
            raise NotSignedIn("no token was sent; ask your administrator for one.")
        rows = self._rows("SELECT user, expires FROM tokens WHERE hash = ?", _hash(token))
        if not rows:
            raise NotSignedIn("the token is not valid (mistyped, revoked, or its user was removed).")
        name, expires = rows[0]
        if expires is not None and expires < time.time():
            raise NotSignedIn(f"the token expired on {time.strftime('%Y-%m-%d %H:%M', time.localtime(expires))}.")
        return self.user(name)

    def user(self, name: str) -> User:
        """``name`` with their groups; a name the proxy vouches for need not be a user here."""
        rows = self._rows("SELECT admin FROM users WHERE name = ?", name)
        groups = frozenset(g for (g,) in self._rows("SELECT grp FROM members WHERE user = ?", name))
        return User(name, bool(rows and rows[0][0]), groups)

    def _known(self, name: str) -> None:
        if not self._rows("SELECT 1 FROM users WHERE name = ?", name):
            raise KnowledgeBaseError(f"There is no user named {name!r}.")

    # -- groups ---------------------------------------------------------------------------

    def join(self, group: str, name: str) -> None:
        self._rows("INSERT OR IGNORE INTO members VALUES (?, ?)", group.removeprefix("@"), name)

    def leave(self, group: str, name: str) -> None:
        self._rows("DELETE FROM members WHERE grp = ? AND user = ?", group.removeprefix("@"), name)

    # -- grants ---------------------------------------------------------------------------

    def grant(self, subject: str, collection: str, role: Role) -> None:
        """Give ``subject`` (a user, or ``@group``) ``role`` on ``collection``, replacing what it had."""
        self._rows("INSERT OR REPLACE INTO grants VALUES (?, ?, ?)", subject, collection, role.name.lower())

    def revoke(self, subject: str, collection: str) -> bool:
        """Take every role on ``collection`` from ``subject``; False when it had none."""
        with self._lock:
            return self._db.execute("DELETE FROM grants WHERE subject = ? AND collection = ?",
                                    (subject, collection)).rowcount > 0

    def grants(self, collection: str | None = None) -> list[tuple[str, str, Role]]:
        """(subject, collection, role) of every grant, or of one collection's."""
        sql, args = "SELECT subject, collection, role FROM grants", ()
        if collection is not None:
            sql, args = sql + " WHERE collection = ?", (collection,)
        return [(s, c, Role.named(r)) for s, c, r in self._rows(sql + " ORDER BY collection, subject", *args)]

    def rename_collection(self, old: str, new: str) -> None:
        """The grants of ``old`` move to ``new``; any left on ``new`` from an earlier collection go."""
        if old == new:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM grants WHERE collection = ?", (new,))
            self._db.execute("UPDATE grants SET collection = ? WHERE collection = ?", (new, old))
            self._db.execute("COMMIT")

    def forget_collection(self, name: str) -> None:
        self._rows("DELETE FROM grants WHERE collection = ?", name)

    def role(self, user: User, collection: str) -> Role | None:
        """The highest role ``user`` holds on ``collection``, or None."""
        if user.admin:
            return Role.OWNER
        subjects = [user.name, *(f"@{g}" for g in user.groups)]
        marks = ",".join("?" * len(subjects))
        rows = self._rows(f"SELECT role FROM grants WHERE collection = ? AND subject IN ({marks})", collection, *subjects)
        return max((Role.named(r) for (r,) in rows), default=None)

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
