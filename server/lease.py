"""Leases: a job that one replica of several does at a time (watching the followed folders), held in
the database they share and taken over by another replica when its holder stops renewing it: it died,
hangs, or cannot reach the database.

Two replicas never both hold a lease in the database: taking or renewing one is a single
``UPDATE leases SET holder = me, expires = now + lease WHERE name = :name AND (holder = me OR expires < now)``.
PostgreSQL locks the row, and an UPDATE that waited on the lock tests its condition again on the row
the first one wrote (so it finds a live lease and changes nothing); SQLite writes one at a time.

Time: ``expires`` is on the database's own clock (PostgreSQL's ``clock_timestamp()``; SQLite's is its
one machine's), so the replicas' machines need not agree on the time. The holder does not compare
with that clock: it counts its lease from the moment before it asked, on its own monotonic clock, so
it stops doing the job no later than the database lets another replica take it over (as long as the
database's clock does not jump forward by a lease's length).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from server.database import Database, DatabaseError, leases

log = logging.getLogger(__name__)

FOLLOWED_FOLDERS = "followed-folders"  # the lease of the replica that watches the followed folders


class Lease:
    """One named lease in ``database``, as the replica ``holder`` sees it: it takes or renews it for
    ``seconds`` at a time (:meth:`take`), and knows until when it may count on it (:meth:`held`)."""

    def __init__(self, database: Database, name: str, holder: str, seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not holder:
            raise ValueError("a lease's holder has a name")
        self.name, self.holder, self.seconds = name, holder, seconds
        self.taken_from = ""  # the replica that held it before the last time this one took it ("" if none)
        self._db = database
        self._clock = clock
        self._until: float | None = None  # on self._clock: held until then, at the latest

    def take(self) -> bool:
        """Take the lease, or renew it, for ``seconds`` more; False while another replica holds it.
        Raises ``SQLAlchemyError`` or ``DatabaseError`` when the database cannot be asked."""
        asked = self._clock()
        now = self._db.now()
        held_before, before = self.held(), ""
        with self._db.writing() as conn:
            if not held_before:  # who held it, for the log
                before = conn.execute(select(leases.c.holder).where(leases.c.name == self.name)).scalar() or ""
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == self.name, (leases.c.holder == self.holder) | (leases.c.expires < now))
                .values(holder=self.holder, expires=now + self.seconds)).rowcount == 1
            if not taken:  # the first time anyone asks for this lease: its row, held by this replica
                taken = self._db.upsert(conn, leases, [{"name": self.name, "holder": self.holder,
                                                         "expires": now + self.seconds}]) == 1
        if taken and not held_before:
            self.taken_from = before if before != self.holder else ""
        self._until = asked + self.seconds if taken else None
        return taken

    def held(self) -> bool:
        """Whether this replica may count on holding the lease now (the database may say so a little longer)."""
        return self._until is not None and self._clock() < self._until

    def left(self) -> float:
        """Seconds this replica may still count on the lease (0 when it does not hold it)."""
        return max(0.0, self._until - self._clock()) if self._until is not None else 0.0

    def release(self) -> None:
        """Give the lease back at once, so that another replica need not wait for it to run out."""
        self._until = None
        with self._db.writing() as conn:
            conn.execute(update(leases).where(leases.c.name == self.name, leases.c.holder == self.holder)
                         .values(expires=0.0))

    def holder_now(self) -> str:
        """The replica that holds the lease now, in the database's eyes; "" when none does."""
        with self._db.reading() as conn:
            row = conn.execute(select(leases.c.holder).where(leases.c.name == self.name,
                                                              leases.c.expires >= self._db.now())).first()
        return row.holder if row is not None else ""


class LeasedJob:
    """Does a job on this replica while it holds ``lease``: a thread takes or renews the lease every
    third of its length, calls ``start`` when it gets it and ``stop`` when it loses it (another replica
    took it), and a timer stops the job when the lease runs out here unrenewed, even while a renewal
    hangs on the database. ``what`` names the job in the log."""

    def __init__(self, lease: Lease, start: Callable[[], None], stop: Callable[[], None], what: str) -> None:
        self.lease = lease
        self._start, self._stop, self._what = start, stop, what
        self._running = False
        self._failing = False  # the database did not answer the last time: said once, not every round
        self._lock = threading.Lock()  # the job starts and stops on the keeping thread or on the timer, one at a time
        self._expiry: threading.Timer | None = None
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{lease.name}", daemon=True)

    @property
    def running(self) -> bool:
        """Whether this replica does the job now."""
        return self._running

    def begin(self) -> None:
        """Try for the lease now (a replica alone starts its job at once), then keep trying on a thread."""
        self._round()
        self._thread.start()

    def end(self) -> None:
        """Stop trying; stop the job if this replica does it, then give the lease back to the others."""
        self._ended.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            if self._expiry is not None:
                self._expiry.cancel()
            if not self._running:
                return
            self._running = False
            self._call(self._stop, "stop")
        try:
            self.lease.release()
        except (SQLAlchemyError, DatabaseError) as exc:  # it runs out on its own
            log.warning("could not give back the lease %r (%s); it runs out in %.0f s",
                        self.lease.name, _first_line(exc), self.lease.seconds)
            return
        log.info("gave back the lease %r: no longer %s", self.lease.name, self._what)

    def _keep(self) -> None:
        while not self._ended.wait(self.lease.seconds / 3):
            self._round()

    def _round(self) -> None:
        try:
            held = self.lease.take() and self.lease.held()  # a renewal that took a whole lease to answer counts for nothing
            if self._failing:
                log.info("the lease %r can be renewed again", self.lease.name)
            self._failing = False
        except (SQLAlchemyError, DatabaseError) as exc:
            if not self._failing:
                log.warning("cannot take or renew the lease %r (%s); trying again every %.0f s",
                            self.lease.name, _first_line(exc), self.lease.seconds / 3)
            self._failing = True
            held = self.lease.held()  # still counted on until it runs out here (the timer sees to that)
        with self._lock:
            if held and not self._ended.is_set():
                self._arm()
            if held and not self._running:
                came = f" from {self.lease.taken_from}" if self.lease.taken_from else ""
                log.info("took the lease %r%s: %s", self.lease.name, came, self._what)
                self._running = True
                self._call(self._start, "start")
            elif not held and self._running:
                self._lost("another replica took it" if not self._failing else "could not renew it in time")

    def _arm(self) -> None:
        """(Re)set the timer to the moment the lease runs out here."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = threading.Timer(self.lease.left() + 0.01, self._ran_out)
        self._expiry.daemon = True
        self._expiry.start()

    def _ran_out(self) -> None:
        with self._lock:
            if self._running and not self.lease.held():
                self._lost("could not renew it in time")

    def _lost(self, why: str) -> None:
        log.warning("lost the lease %r (%s): no longer %s", self.lease.name, why, self._what)
        self._running = False
        self._call(self._stop, "stop")

    def _call(self, step: Callable[[], None], verb: str) -> None:
        try:
            step()
        except Exception:  # the job's failure must not end the thread that keeps the lease; it is logged
            log.exception("%s: failed to %s", self._what, verb)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["FOLLOWED_FOLDERS", "Lease", "LeasedJob"]
