"""One machine's server state moved into a shared database, once: the home folder's ``accounts.db``
(users, tokens, groups, grants) and ``audit.jsonl``.

Each file is moved in one transaction with a row in ``imported`` that names it (by its full path),
so a second ``archivist-server migrate`` moves nothing, and two run at once move it once. A row the
database already holds (a user of the same name, the same grant) is kept as the database has it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import Connection, inspect, select

from server.audit import AuditLog
from server.database import Database, audit, grants, imported, members, tokens, users

_ACCOUNTS = (users, tokens, members, grants)  # users first: a token names its user
_PLURALS = {"group membership": "group memberships", "audit entry": "audit entries"}


@dataclass(frozen=True, slots=True)
class Moved:
    """What became of one file of the home folder: ``counts`` of rows moved now per kind, or the
    time it was moved before (``earlier``), when nothing was moved now."""

    source: Path
    counts: dict[str, int]
    earlier: float | None = None

    def sentence(self) -> str:
        if self.earlier is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.earlier))
            return f"{self.source} was moved into the database on {when}; not again."
        said = ", ".join(f"{n} {kind if n == 1 else _PLURALS.get(kind, kind + 's')}" for kind, n in self.counts.items())
        return f"Moved from {self.source}: {said or 'nothing (it was empty)'}."


def move_home_folder(home: Path, into: Database) -> list[Moved]:
    """Move ``home``'s ``accounts.db`` and ``audit.jsonl``, those there are and not moved yet, into
    ``into`` (at the newest schema). The files themselves are left as they were."""
    moved = []
    if (home / "accounts.db").is_file():
        moved.append(_move_accounts(home / "accounts.db", into))
    if (home / "audit.jsonl").is_file():
        moved.append(_move_audit(home / "audit.jsonl", into))
    return moved


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
