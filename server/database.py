"""The SQL database that holds the team server's state: users, tokens, groups, grants, the audit log,
the leases by which one replica of several does a job (``server.lease``), and, when it is shared
(``database_url``), each user's conversations, each collection's check-up and the followed folders
(``server.collection_state``).

One schema for two engines. By default it is SQLite, the file ``accounts.db`` in the server's home
folder (one machine; the audit log then stays in ``audit.jsonl`` beside it, see ``server.audit``);
when ``database_url`` is set (``postgresql://user@host/archivist``), it is that database, which
several replicas on several machines share: a grant or a revoked token made through
one replica holds on every other at the next request. The schema's versions are Alembic migrations
shipped in ``server.migrations``; :meth:`Database.upgrade` runs them (``archivist-server migrate``).

A URL's password is never shown: :attr:`Database.shown` is the URL with it masked, for messages and logs.

A PostgreSQL that hangs (a paused machine, a stopped process) costs one wait, not one a request: a
statement it has not answered within ``answer_within`` seconds is cut off (its connection's socket
shut, so the wait ends, and the connection dropped), a new connection waits as long at most, and the
first such failure opens a breaker (``rag.breaker``): from then on each request is refused at once
(``DatabaseError``, which the server answers with 503) while a thread tries the database every 2 s,
until it answers.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    exc,
    insert,
    literal_column,
    text,
)
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from engine import ArchivistError
from rag.breaker import Breaker

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 7_301_150_251  # pg_advisory_xact_lock's key: one `migrate` at a time, whichever replica runs it

metadata = MetaData()
users = Table("users", metadata,
              Column("name", Text, primary_key=True),
              Column("admin", Boolean, nullable=False, server_default="0"),
              Column("created", Double, nullable=False))
tokens = Table("tokens", metadata,
               Column("hash", Text, primary_key=True),  # SHA-256 of the token; the token itself is never kept
               Column("user", Text, ForeignKey("users.name", ondelete="CASCADE"), nullable=False, index=True),
               Column("created", Double, nullable=False),
               Column("expires", Double))
members = Table("members", metadata,
                Column("grp", Text, primary_key=True),
                Column("user", Text, primary_key=True))
grants = Table("grants", metadata,
               Column("subject", Text, primary_key=True),  # a user, or @group
               Column("collection", Text, primary_key=True, index=True),
               Column("role", Text, nullable=False))
audit = Table("audit", metadata,  # ordered by id: the database's order, whichever replica wrote a line
              Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
              Column("at", Double, nullable=False),
              Column("user", Text, nullable=False),
              Column("action", Text, nullable=False),
              Column("collection", Text, nullable=False, server_default=""),
              Column("detail", Text, nullable=False, server_default=""),
              Column("outcome", Text, nullable=False, server_default="ok"),
              Column("address", Text, nullable=False, server_default=""),
              Column("replica", Text, nullable=False, server_default=""),  # since 0004
              Index("audit_user", "user", "id"))
imported = Table("imported", metadata,  # what `migrate` has moved in from a home folder: moved once, never again
                 Column("source", Text, primary_key=True),
                 Column("at", Double, nullable=False),
                 Column("rows", Integer, nullable=False))
leases = Table("leases", metadata,  # a job one replica does at a time (server.lease): who holds it, until when
               Column("name", Text, primary_key=True),
               Column("holder", Text, nullable=False, server_default=""),
               Column("expires", Double, nullable=False, server_default="0"))  # the database's clock, Unix seconds
conversations = Table("conversations", metadata,  # a user's conversation with a collection (by its id)
                      Column("id", Text, primary_key=True),
                      Column("owner", Text, nullable=False),  # server.uploads.user_id of its user
                      Column("collection", Text, nullable=False, index=True),
                      Column("title", Text, nullable=False, server_default=""),
                      Column("created", Double, nullable=False),
                      Column("updated", Double, nullable=False),
                      Index("conversations_owner", "owner", "collection", "updated"))
turns = Table("turns", metadata,  # a conversation's turns in order, each as JSON (rag.answering.conversations.Turn)
              Column("conversation", Text, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
              Column("number", Integer, primary_key=True),
              Column("body", Text, nullable=False))
checkups = Table("checkups", metadata,  # a collection's check-up questions and last runs, as JSON
                 Column("collection", Text, primary_key=True),
                 Column("body", Text, nullable=False))
followed = Table("followed", metadata,  # the folders a collection (by name) follows, in the order followed
                 Column("collection", Text, primary_key=True),
                 Column("folder", Text, primary_key=True),
                 Column("since", Double, nullable=False))


class DatabaseError(ArchivistError):
    """The database cannot be reached, or its schema is not the one this server needs."""


class _NotAnswering(Exception):
    """A connection lost, cut by the watchdog, or never made: what opens the breaker. A refusal the
    database answered with (a deadlock, a lock not available, a constraint) is not one."""


class Database:
    """An engine on one database (a pool of connections, safe from many threads) and its schema's version."""

    def __init__(self, url: str | URL, answer_within: float | None = 5.0) -> None:
        """``answer_within``: seconds a PostgreSQL statement may wait for its answer (None: no limit,
        for ``migrate``'s long transactions)."""
        try:
            self.url = make_url(url)
        except exc.ArgumentError:  # its message quotes the URL, password and all
            raise DatabaseError("database_url is not a database URL (postgresql://USER@HOST/NAME, "
                                "or sqlite:////path/to/file.db).") from None
        if self.url.drivername in ("postgresql", "postgres"):  # libpq's spelling: use psycopg 3
            self.url = self.url.set(drivername="postgresql+psycopg")
        self.shown = self.url.render_as_string(hide_password=True)
        self.breaker: Breaker | None = None
        if self.url.get_backend_name() == "sqlite":
            self.engine = _sqlite_engine(self.url)
        elif self.url.get_backend_name() == "postgresql":
            self.engine = _postgresql_engine(self.url, answer_within)
            self.breaker = Breaker(f"The database {self.shown}", self._ping, (_NotAnswering, exc.TimeoutError))
        else:
            raise DatabaseError(f"{self.shown}: the server keeps its state in PostgreSQL or SQLite only.")

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        """The SQLite file at ``path``, made readable by the server's account alone, whatever the umask."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # token hashes and grants
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        return cls(URL.create("sqlite", database=str(path)))

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def close(self) -> None:
        if self.breaker is not None:
            self.breaker.close()
        self.engine.dispose()

    def _ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except exc.DBAPIError as error:
            raise _NotAnswering(_first_line(error.orig)) from None

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """Refuse at once while the breaker is open; open it when the database does not answer."""
        if self.breaker is None:
            yield
            return
        every = self.breaker.retry_every
        with self.breaker.guard(lambda: DatabaseError(
                f"The database {self.shown} is not answering; it is tried again every {every:g} s.")):
            try:
                yield
            except exc.DBAPIError as error:
                if _not_answering(error):  # its first line alone: the breaker logs it, and the SQL names rows
                    raise _NotAnswering(_first_line(error.orig)) from error
                raise

    # -- the schema's version -----------------------------------------------------------

    def revision(self) -> str | None:
        """The schema's revision in the database; None for one that holds no versioned schema."""
        with self._connected() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head() -> str:
        """The newest revision this version of the server knows."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        assert head is not None, "server/migrations holds no revision"
        return head

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``, in one transaction that one process at a time holds
        (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so that replicas starting
        together upgrade it once."""
        config = _alembic_config()
        with self._connected() as conn:
            conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, revision)

    def require_current(self) -> None:
        """``DatabaseError`` unless the schema is this server's: a shared database is upgraded by
        ``archivist-server migrate``, never behind the administrator's back by a starting replica."""
        have, need = self.revision(), self.head()
        if have != need:
            state = f"at revision {have}" if have else "empty"
            raise DatabaseError(f"The database {self.shown} is {state}; this server needs revision {need}. "
                                "Run `archivist-server migrate` (once, from any one machine).")

    def _connected(self) -> Connection:
        try:
            return self.engine.connect()
        except exc.OperationalError as error:  # psycopg's message names the host, never the password
            raise DatabaseError(f"Cannot reach the database {self.shown}: {_first_line(error.orig)}") from None

    # -- transactions, and statements the two engines spell differently ------------------------

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (each statement its own transaction unless the block begins one)."""
        with self._guarded(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction that will write, committed at the end of the block (rolled back on an error).
        SQLite's takes the write lock at once, waiting its turn, so a transaction that reads first
        never finds, on writing, that another one wrote since."""
        with self._guarded(), self.engine.connect() as conn, \
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE").begin():
            yield conn


    def upsert(self, conn: Connection, table: Table, rows: Iterable[Mapping[str, object]],
               replace: Iterable[str] = ()) -> int:
        """Insert ``rows`` into ``table``; a row whose primary key is taken has its ``replace`` columns
        set (none: it is left as it is). The number of rows inserted or changed."""
        rows, replace = list(rows), list(replace)
        if not rows:
            return 0
        dialect = sqlite_dialect if self.is_sqlite else postgresql_dialect
        statement = dialect.insert(table).values(rows)
        keys = [c.name for c in table.primary_key.columns]
        if replace:
            statement = statement.on_conflict_do_update(index_elements=keys,
                                                        set_={c: statement.excluded[c] for c in replace})
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        return len(conn.execute(statement.returning(*table.primary_key.columns)).all())  # rowcount: -1 on some

    def now(self) -> ColumnElement[float]:
        """The database's own clock, in Unix seconds, as an SQL expression: one clock for every replica,
        whatever the clocks of their machines say (SQLite's is its one machine's)."""
        if self.is_sqlite:
            return literal_column("((julianday('now') - 2440587.5) * 86400.0)", Double)
        return literal_column("CAST(extract(epoch FROM clock_timestamp()) AS double precision)", Double)

    def append(self, conn: Connection, table: Table, rows: list[Mapping[str, object]]) -> None:
        """Insert ``rows`` in their order (each gets the next id)."""
        if rows:
            conn.execute(insert(table), rows)


def _alembic_config() -> Config:
    """Alembic's settings, in code: the migrations ship inside the package; there is no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _postgresql_engine(url: URL, answer_within: float | None) -> Engine:
    """PostgreSQL through psycopg 3: at most 15 connections a replica (5 kept, 10 more at a peak), each
    held for one statement or transaction, so a few replicas stay under PostgreSQL's 100 connections.
    Each connection is pinged as it is taken from the pool (a restarted database costs a reconnection,
    not a failed request), and cut off when it is held longer than ``answer_within``: the server's
    transactions take milliseconds, so one that has waited that long is waiting on a database that
    does not answer (its ping, statements, commit and the rollback as it goes back to the pool alike)."""
    if answer_within is None:
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    engine = create_engine(url, pool_size=5, max_overflow=10,
                           connect_args={"connect_timeout": max(2, round(answer_within / 2))})
    watchdog = _Watchdog(answer_within)

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object) -> None:
        try:
            record.info["watchdog"] = watchdog.arm(dbapi_connection)
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as error:  # psycopg's own: the pool then tries a new connection once
            watchdog.disarm(record.info.pop("watchdog", None))
            raise exc.DisconnectionError(str(error)) from error

    def _given_back(_dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry, *_: object) -> None:
        watchdog.disarm(record.info.pop("watchdog", None))  # before the connection may be closed

    for name in ("checkin", "invalidate", "close", "detach"):
        event.listen(engine, name, _given_back)
    return engine


class _Watchdog:
    """Shuts the socket of a connection held past its deadline: psycopg's wait for an answer then
    ends at once ("server closed the connection unexpectedly") and the pool drops the connection,
    whatever the server does. A paused server's machine still acknowledges every packet, so no
    socket timeout ends such a wait. Each armed connection's socket is held by a descriptor of the
    watchdog's own (a duplicate, closed when disarmed): libpq closing its descriptor, and the number
    being reused for another file meanwhile, never points the watchdog at anything else."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._armed: dict[int, tuple[float, int]] = {}  # key: (deadline, the socket's file descriptor)
        self._next = 0
        self._lock = threading.Lock()
        self._watching = False

    def arm(self, dbapi_connection: DBAPIConnection) -> int | None:
        fd = getattr(getattr(dbapi_connection, "pgconn", None), "socket", None)  # psycopg 3's libpq socket
        if not isinstance(fd, int):
            return None
        fd = os.dup(fd)
        with self._lock:
            self._next += 1
            self._armed[self._next] = (time.monotonic() + self.seconds, fd)
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="database watchdog", daemon=True).start()
            return self._next

    def disarm(self, key: int | None) -> None:
        if key is not None:
            with self._lock:
                armed = self._armed.pop(key, None)
            if armed is not None:
                os.close(armed[1])

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.25, self.seconds / 4))
            with self._lock:
                if not self._armed:
                    self._watching = False
                    return
                now = time.monotonic()
                late = [self._armed.pop(k)[1] for k, (deadline, _) in list(self._armed.items()) if deadline <= now]
            for fd in late:  # the watchdog's own descriptors, no longer armed: closed here
                _cut(fd)


def _cut(fd: int) -> None:
    """Shut the socket ``fd`` holds (for every descriptor of it: libpq's wait ends) and close ``fd``."""
    try:
        with socket.socket(fileno=fd) as cut:
            cut.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # closed by the server meanwhile: nothing left to cut


def _not_answering(error: exc.DBAPIError) -> bool:
    """Whether ``error`` says the database did not answer (a connection lost, cut or never made, a
    server shutting down) rather than refused something (a deadlock, a lock not available, a
    constraint: errors with an SQLSTATE of their own, which leave the database answering)."""
    if error.connection_invalidated:
        return True
    state = getattr(error.orig, "sqlstate", None)
    return isinstance(error, exc.OperationalError) and (state is None or state.startswith(("08", "57P")))


def _sqlite_engine(url: URL) -> Engine:
    """SQLite with real transactions (pysqlite's own are off; ``BEGIN`` is said when SQLAlchemy
    begins one), foreign keys on, and write-ahead logging so readers never wait for a writer."""
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _connected(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        connection.isolation_level = None  # type: ignore[attr-defined]  # pysqlite's own attribute
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # Turning a new file to write-ahead logging needs it alone, and SQLite's busy timeout does not
        # always wait for that: processes opening one new file together each try again for a while.
        deadline = time.monotonic() + 30
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(str(conn.get_execution_options().get("sqlite_begin", "BEGIN")))

    return engine


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "no answer"
