"""The audit log: one JSON line per action or refusal, appended, never rewritten.

Each line says when, who (or ``?`` when no one could be identified), from which address,
what (``ingest``, ``ask``, ``grant``, ``refused`` ...), on which collection, with what detail,
how it ended, and through which replica of the server (none for an administrator's command). Questions are kept unless the administrator turns that off for privacy.

On one machine the log is a file, ``audit.jsonl`` in the server's home folder; with a database
(``database_url``) it is that database's ``audit`` table, which every replica appends to and which
keeps their lines in one order, the database's (an id each), whatever the replicas' clocks say.
"""

from __future__ import annotations

import json
import os
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sqlalchemy import select

from server.database import Database
from server.database import audit as _table


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    user: str
    action: str
    collection: str = ""
    detail: str = ""
    outcome: str = "ok"  # ok, refused, failed
    address: str = ""
    replica: str = ""

    def line(self) -> str:
        """One line for a terminal: whatever a user sent (a call's name, a title, a question) is shown
        with its line breaks, escape sequences and other invisible characters spelled out, so it
        can neither start a line of its own nor rewrite the terminal."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        where = f" on {shown(self.collection)!r}" if self.collection else ""
        said = f": {shown(self.detail)}" if self.detail else ""
        address = f", {shown(self.address)}" if self.address else ""
        replica = f", via {shown(self.replica)}" if self.replica else ""
        return (f"{when}  {shown(self.user):<12} {shown(self.action)}{where}{said}  "
                f"[{shown(self.outcome)}{address}{replica}]")


def shown(text: str) -> str:
    """``text`` with every control, format and line-separator character written as an escape."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch) not in ("Zl", "Zp")
                   else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def clipped(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis says so): what a user sent, kept to a length
    an audit line or an error message can hold."""
    return text[:limit] + ("…" if len(text) > limit else "")


class AuditLog:
    """Appends entries to a file (``path``; one write per line, flushed and synced: a crash loses
    none) or to the database's ``audit`` table (each entry committed before the call goes on), each
    naming ``replica``, the server's replica that writes them."""

    def __init__(self, where: Path | Database, replica: str = "") -> None:
        self.replica = replica
        self.path: Path | None = where if isinstance(where, Path) else None
        self._db = where if isinstance(where, Database) else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, user: str, action: str, collection: str = "", detail: str = "", outcome: str = "ok",
               address: str = "") -> None:
        entry = Entry(time.time(), user, action, collection, detail, outcome, address, self.replica)
        if self._db is not None:
            with self._db.writing() as conn:
                self._db.append(conn, _table, [asdict(entry)])
            return
        assert self.path is not None
        data = (json.dumps(asdict(entry)) + "\n").encode()  # ASCII: no line separator of Unicode's in a line
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self, user: str | None = None, since: float | None = None) -> Iterator[Entry]:
        """The entries in order, of one user and from a time on when asked."""
        if self._db is not None:
            yield from self._rows(self._db, user, since)
            return
        assert self.path is not None
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            return
        for line in lines:
            try:
                entry = Entry(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a torn last line after a power cut
            if (user is None or entry.user == user) and (since is None or entry.at >= since):
                yield entry

    @staticmethod
    def _rows(db: Database, user: str | None, since: float | None) -> Iterator[Entry]:
        names = [f.name for f in fields(Entry)]
        query = select(*(_table.c[n] for n in names)).order_by(_table.c.id)
        if user is not None:
            query = query.where(_table.c.user == user)
        if since is not None:
            query = query.where(_table.c.at >= since)
        with db.reading() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                yield Entry(*row)
