"""The audit log: one JSON line per action or refusal, appended, never rewritten.

Each line says when, who (or ``?`` when no one could be identified), from which address,
what (``ingest``, ``ask``, ``grant``, ``refused`` ...), on which collection, with what detail,
and how it ended. Questions are kept unless the administrator turns that off for privacy.
"""

from __future__ import annotations

import json
import os
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    user: str
    action: str
    collection: str = ""
    detail: str = ""
    outcome: str = "ok"  # ok, refused, failed
    address: str = ""

    def line(self) -> str:
        """One line for a terminal: whatever a user sent (a call's name, a title, a question) is shown
        with its line breaks, escape sequences and other invisible characters spelled out, so it
        can neither start a line of its own nor rewrite the terminal."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        where = f" on {shown(self.collection)!r}" if self.collection else ""
        said = f": {shown(self.detail)}" if self.detail else ""
        address = f", {shown(self.address)}" if self.address else ""
        return f"{when}  {shown(self.user):<12} {shown(self.action)}{where}{said}  [{shown(self.outcome)}{address}]"


def shown(text: str) -> str:
    """``text`` with every control, format and line-separator character written as an escape."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch) not in ("Zl", "Zp")
                   else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def clipped(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis says so): what a user sent, kept to a length
    an audit line or an error message can hold."""
    return text[:limit] + ("…" if len(text) > limit else "")


class AuditLog:
    """Appends entries to ``path`` (one write per line, flushed and synced: a crash loses none)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def record(self, user: str, action: str, collection: str = "", detail: str = "", outcome: str = "ok",
               address: str = "") -> None:
        entry = Entry(time.time(), user, action, collection, detail, outcome, address)
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
