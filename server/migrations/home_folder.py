"""One machine's server state moved into a shared database, once: the home folder's ``accounts.db``
(users, tokens, groups, grants), ``audit.jsonl``, ``conversations/`` (each user's), and the data
folder's ``checkups/`` and ``followed.json``.

Each file is moved in one transaction with a row in ``imported`` that names it (by its full path),
so a second ``archivist-server migrate`` moves nothing, and two run at once move it once. A row the
database already holds (a user of the same name, the same grant) is kept as the database has it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Connection, inspect, select

from rag.answering.checkup import CheckupFiles, Kept
from rag.answering.conversations import Conversation, ConversationFiles, ConversationNotFound
from rag.indexing.following import FollowFile
from server.audit import AuditLog
from server.collection_state import CheckupRows, ConversationRows, FollowRows
from server.database import Database, audit, grants, imported, members, tokens, users

_ACCOUNTS = (users, tokens, members, grants)  # users first: a token names its user
_PLURALS = {"group membership": "group memberships", "audit entry": "audit entries",
            "followed folder": "followed folders"}


@dataclass(frozen=True, slots=True)
class Moved:
    """What became of one file of the home folder: ``counts`` of rows moved now per kind, or the
    time it was moved before (``earlier``), when nothing was moved now; ``damaged``: the files in it
    that could not be read, left where they are."""

    source: Path
    counts: dict[str, int]
    earlier: float | None = None
    damaged: tuple[Path, ...] = ()

    def sentence(self) -> str:
        if self.earlier is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.earlier))
            return f"{self.source} was moved into the database on {when}; not again."
        said = ", ".join(f"{n} {kind if n == 1 else _PLURALS.get(kind, kind + 's')}" for kind, n in self.counts.items())
        left = (f" Left out, as they cannot be read: {', '.join(str(p) for p in self.damaged)}."
                if self.damaged else "")
        return f"Moved from {self.source}: {said or 'nothing (it was empty)'}.{left}"


def move_home_folder(home: Path, into: Database, data: Path | None = None) -> list[Moved]:
    """Move ``home``'s ``accounts.db``, ``audit.jsonl`` and ``conversations/``, and the check-ups and
    followed folders of the data folder ``data`` (default ``home/data``), those there are and not
    moved yet, into ``into`` (at the newest schema). The files themselves are left as they were."""
    data = data or home / "data"
    moved = []
    if (home / "accounts.db").is_file():
        moved.append(_move_accounts(home / "accounts.db", into))
    if (home / "audit.jsonl").is_file():
        moved.append(_move_audit(home / "audit.jsonl", into))
    if (home / "conversations").is_dir():
        moved.append(_move_conversations(home / "conversations", into))
    if (data / "checkups").is_dir():
        moved.append(_move_checkups(data / "checkups", into))
    if (data / "followed.json").is_file():
        moved.append(_move_followed(data / "followed.json", into))
    return moved


def _move_conversations(folder: Path, into: Database) -> Moved:
    """``folder/<owner>/<collection id>/<id>.json``, each with its turns, kept under the same ids."""
    mine = ConversationFiles(folder, by_owner=True)
    found: list[tuple[str, Conversation]] = []
    damaged: list[Path] = []
    for path in sorted(folder.glob("*/*/*.json")):
        owner, collection = path.parent.parent.name, path.parent.name
        try:
            found.append((owner, mine.owned_by(owner).get(collection, path.stem)))
        except ConversationNotFound:
            damaged.append(path)
    with into.writing() as conn:
        if (earlier := _claim(conn, into, folder, len(found))) is not None:
            return Moved(folder, {}, earlier)
        count = ConversationRows(into).put(conn, found)
    return Moved(folder, {"conversation": count}, damaged=tuple(damaged))


def _move_checkups(folder: Path, into: Database) -> Moved:
    files = CheckupFiles(folder)
    kept: dict[str, Kept] = {}
    damaged: list[Path] = []
    for path in sorted(folder.glob("*.json")):
        try:
            kept[path.stem] = files.read(path.stem)
        except OSError:
            damaged.append(path)
    with into.writing() as conn:
        if (earlier := _claim(conn, into, folder, len(kept))) is not None:
            return Moved(folder, {}, earlier)
        count = CheckupRows(into).put(conn, kept)
    return Moved(folder, {"check-up": count}, damaged=tuple(damaged))


def _move_followed(path: Path, into: Database) -> Moved:
    mapping = FollowFile(path).mapping()
    with into.writing() as conn:
        if (earlier := _claim(conn, into, path, sum(map(len, mapping.values())))) is not None:
            return Moved(path, {}, earlier)
        count = FollowRows(into).put(conn, mapping)
    return Moved(path, {"followed folder": count})


def _move_accounts(path: Path, into: Database) -> Moved:
    source = Database.sqlite(path)  # read as it is: these four tables are the same in every revision
    try:
        with source.engine.connect() as conn:
            there = set(inspect(conn).get_table_names())
            rows = {table: [dict(row) for row in conn.execute(select(table)).mappings()] if table.name in there
                    else [] for table in _ACCOUNTS}
    finally:
        source.close()
    names = {users: "user", tokens: "token", members: "group membership", grants: "grant"}
    with into.writing() as conn:
        if (earlier := _claim(conn, into, path, sum(map(len, rows.values())))) is not None:
            return Moved(path, {}, earlier)
        counts = {names[table]: into.upsert(conn, table, rows[table]) for table in _ACCOUNTS}
    return Moved(path, counts)


def _move_audit(path: Path, into: Database) -> Moved:
    entries = [asdict(entry) for entry in AuditLog(path).entries()]
    with into.writing() as conn:
        if (earlier := _claim(conn, into, path, len(entries))) is not None:
            return Moved(path, {}, earlier)
        into.append(conn, audit, entries)  # in the file's order, after the lines already in the database
    return Moved(path, {"audit entry": len(entries)})


def _claim(conn: Connection, into: Database, path: Path, rows: int) -> float | None:
    """Mark ``path`` as moved in this transaction; None when that is new, else when it was moved."""
    source = str(path.resolve())
    if into.upsert(conn, imported, [{"source": source, "at": time.time(), "rows": rows}]):
        return None
    return float(conn.execute(select(imported.c.at).where(imported.c.source == source)).scalar_one())


__all__ = ["Moved", "move_home_folder"]
