"""The server's state in one SQL database, shared by replicas: a real throwaway PostgreSQL (and the
same tests on SQLite), two ``Accounts`` and two ``AuditLog`` on one database as two replicas, the
schema's migrations on a database that holds data, and ``archivist-server migrate`` moving a home
folder's files in once."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from servers import fresh_database, postgres_processes, postgres_server
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError
from test_replicas import serving

from rag.errors import AccessDenied, KnowledgeBaseError, NotSignedIn
from server.accounts import Accounts, Role
from server.audit import AuditLog
from server.cli import main
from server.database import Database, DatabaseError

PASSWORD = "Pa55-never-shown"

# accounts.db as the server's first versions made it, before there were migrations.
FIRST_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created REAL NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS members (
    grp TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (grp, user));
CREATE TABLE IF NOT EXISTS grants (
    subject TEXT NOT NULL, collection TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (subject, collection));
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with postgres_server(PASSWORD) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database: a SQLite file, or a database of its own on the throwaway cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return fresh_database(request.getfixturevalue("cluster"))


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[Database, Database]]:
    """Two replicas' connections to one database at the newest schema."""
    one, two = Database(database_url), Database(database_url)
    one.upgrade()
    yield one, two
    one.close()
    two.close()


def test_a_grant_made_on_one_replica_is_enforced_on_the_other_at_once(replicas: tuple[Database, Database]):
    one, two = Accounts(replicas[0]), Accounts(replicas[1])
    token = one.add_user("bob")
    bob = two.authenticate(token)
    with pytest.raises(AccessDenied, match="bob has no access to the collection 'Handbook'"):
        two.require(bob, "Handbook", Role.READER)
    one.grant("bob", "Handbook", Role.READER)
    two.require(bob, "Handbook", Role.READER)
    with pytest.raises(AccessDenied, match="bob is a reader of 'Handbook'; this needs an editor"):
        two.require(bob, "Handbook", Role.EDITOR)

    two.grant("@staff", "Handbook", Role.EDITOR)
    one.join("staff", "bob")
    one.join("staff", "bob")  # twice: still one membership
    bob = two.authenticate(token)
    assert bob.groups == {"staff"} and one.role(bob, "Handbook") is Role.EDITOR
    assert two.revoke("@staff", "Handbook") and not one.revoke("@staff", "Handbook")
    assert one.role(bob, "Handbook") is Role.READER

    one.grant("bob", "Handbook", Role.OWNER)  # replaces the reader's grant
    two.rename_collection("Handbook", "Guide")
    assert one.grants() == [("bob", "Guide", Role.OWNER)]
    two.forget_collection("Guide")
    assert one.role(bob, "Guide") is None


def test_a_revoked_token_is_refused_by_both_replicas(replicas: tuple[Database, Database]):
    one, two = Accounts(replicas[0]), Accounts(replicas[1])
    first = one.add_user("carol")
    assert two.authenticate(first).name == "carol"
    renewed = two.new_token("carol", replace=True)
    for replica in (one, two):
        with pytest.raises(NotSignedIn, match="not valid"):
            replica.authenticate(first)
        assert replica.authenticate(renewed).name == "carol"
    one.remove_user("carol")
    for replica in (one, two):
        with pytest.raises(NotSignedIn, match="not valid"):
            replica.authenticate(renewed)
    expired = two.add_user("dave", expires=time.time() - 60)
    with pytest.raises(NotSignedIn, match="expired on"):
        one.authenticate(expired)
    with pytest.raises(KnowledgeBaseError, match="already a user named 'dave'"):
        one.add_user("dave")
    assert one.users() == two.users() == [("dave", False)]


def test_the_audit_log_holds_both_replicas_actions_in_order(replicas: tuple[Database, Database]):
    logs = AuditLog(replicas[0]), AuditLog(replicas[1])
    for n in range(6):
        logs[n % 2].record("alice", "ask", "Handbook", f"question {n}")
    assert [e.detail for e in logs[1].entries()] == [f"question {n}" for n in range(6)]

    def worker(number: int) -> None:  # four at once on each replica, each recording five lines in turn
        for line in range(5):
            logs[number % 2].record(f"user{number}", "search", detail=f"{number}.{line}", address="10.0.0.9")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    seen = [list(log.entries()) for log in logs]
    assert seen[0] == seen[1] and len(seen[0]) == 6 + 40  # one order, whichever replica reads it
    for number in range(8):
        assert [e.detail for e in logs[0].entries(user=f"user{number}")] == [f"{number}.{n}" for n in range(5)]
    assert list(logs[1].entries(since=time.time() + 60)) == []


def test_a_migration_runs_on_a_database_that_holds_data(database_url: str):
    database = Database(database_url)
    database.upgrade("0001")  # the first schema, written to as the first versions did
    token = "arch_" + "x" * 43
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (name, admin, created) VALUES ('root', :yes, 1.0), ('alice', :no, 2.0)"),
                     {"yes": True, "no": False})
        conn.execute(text("INSERT INTO tokens (hash, \"user\", created, expires) VALUES (:hash, 'alice', 3.0, NULL)"),
                     {"hash": hashlib.sha256(token.encode()).hexdigest()})
        conn.execute(text("INSERT INTO members (grp, \"user\") VALUES ('staff', 'alice')"))
        conn.execute(text("INSERT INTO grants (subject, collection, role) VALUES ('@staff', 'Handbook', 'editor')"))
    assert database.revision() == "0001"
    with pytest.raises(DatabaseError, match="needs revision .*Run `archivist-server migrate`"):
        database.require_current()

    database.upgrade()
    assert database.revision() == Database.head()
    database.require_current()
    accounts = Accounts(database)
    alice = accounts.authenticate(token)
    assert alice.groups == {"staff"} and accounts.role(alice, "Handbook") is Role.EDITOR
    assert accounts.users() == [("alice", False), ("root", True)]
    AuditLog(database).record("alice", "ask", "Handbook")
    assert [e.user for e in AuditLog(database).entries()] == ["alice"]
    database.upgrade()  # again: nothing to do
    database.close()


def test_replicas_upgrading_one_database_at_once_upgrade_it_once(database_url: str):
    databases = [Database(database_url) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(Database.upgrade, databases))
    with databases[0].engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [Database.head()]
    for database in databases:
        database.close()


def test_an_accounts_file_of_the_first_versions_is_upgraded_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "accounts.db") as conn:
        conn.executescript(FIRST_SCHEMA)
        conn.execute("INSERT INTO users VALUES ('alice', 0, 1.0)")
        conn.execute("INSERT INTO tokens VALUES (?, 'alice', 1.0, NULL)", (hashlib.sha256(b"arch_old").hexdigest(),))
        conn.execute("INSERT INTO grants VALUES ('alice', 'Handbook', 'reader')")
    conn.close()
    assert main(["--home", str(home), "migrate"]) == 0
    said = capsys.readouterr().out
    assert f"{home / 'accounts.db'}: upgraded from no revision (empty, or accounts.db of the first versions) " \
           f"to revision {Database.head()}." in said
    accounts = Accounts(home / "accounts.db")
    alice = accounts.authenticate("arch_old")
    assert accounts.role(alice, "Handbook") is Role.READER
    accounts.close()
    assert main(["--home", str(home), "migrate"]) == 0
    assert f"at revision {Database.head()}, the newest" in capsys.readouterr().out


def test_migrate_moves_a_home_folder_into_the_database_once(database_url: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            caplog: pytest.LogCaptureFixture):
    home = tmp_path / "home"
    accounts = Accounts(home / "accounts.db")  # a server of one machine, as it has been
    tokens = {name: accounts.add_user(name, admin=name == "root") for name in ("root", "alice")}
    accounts.grant("alice", "Handbook", Role.EDITOR)
    accounts.grant("@staff", "Contracts", Role.READER)
    accounts.join("staff", "alice")
    accounts.close()
    audit = AuditLog(home / "audit.jsonl")
    for n in range(3):
        audit.record("alice", "ask", "Handbook", f"old question {n}")
    (home / "server.toml").write_text(f'[server]\ndatabase_url = "{database_url}"\n', encoding="utf-8")

    assert main(["--home", str(home), "users"]) == 1  # an empty database: migrate first
    refused = capsys.readouterr().err
    assert "is empty; this server needs revision" in refused and "archivist-server migrate" in refused

    assert main(["--home", str(home), "migrate"]) == 0
    said = capsys.readouterr().out
    assert f"upgraded from no revision (empty, or accounts.db of the first versions) to revision {Database.head()}" \
        in said
    assert f"Moved from {home / 'accounts.db'}: 2 users, 2 tokens, 1 group membership, 2 grants." in said
    assert f"Moved from {home / 'audit.jsonl'}: 3 audit entries." in said

    assert main(["--home", str(home), "migrate"]) == 0  # again: nothing moves twice
    again = capsys.readouterr().out
    assert again.count("was moved into the database on") == 2 and "Moved from" not in again

    assert main(["--home", str(home), "add-user", "bob"]) == 0
    bob_token = capsys.readouterr().out.splitlines()[-1]
    database = Database(database_url)
    shared = Accounts(database)
    assert shared.authenticate(tokens["alice"]).groups == {"staff"}
    assert shared.authenticate(bob_token).name == "bob"
    assert shared.users() == [("alice", False), ("bob", False), ("root", True)]
    assert shared.grants() == [("@staff", "Contracts", Role.READER), ("alice", "Handbook", Role.EDITOR)]
    assert [e.detail for e in AuditLog(database).entries(user="alice")] == [f"old question {n}" for n in range(3)]
    database.close()
    assert main(["--home", str(home), "audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "old question 0" in lines[0] and "add-user: bob" in lines[-1]
    assert PASSWORD not in said + again + refused + caplog.text


def test_a_password_in_the_url_is_never_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(DatabaseError) as raised:
        Database(f"postgresql://archivist:{PASSWORD}@127.0.0.1:1/archivist").revision()
    assert "Cannot reach the database postgresql+psycopg://archivist:***@127.0.0.1:1/archivist" in str(raised.value)
    with pytest.raises(DatabaseError, match="only") as raised:
        Database(f"mysql://archivist:{PASSWORD}@127.0.0.1/archivist")
    with pytest.raises(DatabaseError, match="not a database URL") as other:
        Database(f"archivist:{PASSWORD}@127.0.0.1")
    (tmp_path / "server.toml").write_text(f'[server]\ndatabase_url = "postgresql://a:{PASSWORD}@127.0.0.1:1/a"\n')
    assert main(["--home", str(tmp_path), "migrate"]) == 1
    shown = capsys.readouterr()
    assert "Cannot reach the database" in shown.err
    assert PASSWORD not in str(raised.value) + str(other.value) + shown.out + shown.err


def test_two_served_replicas_on_one_postgresql_share_grants_tokens_and_the_audit_log(cluster: str, tmp_path: Path,
                                                                                     capsys: pytest.CaptureFixture[str]):
    url = make_url(cluster).set(database="postgres").render_as_string(hide_password=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "server.toml").write_text(f'[server]\ndatabase_url = "{url}"\n', encoding="utf-8")
    assert main(["--home", str(home), "migrate"]) == 0
    tokens = {}
    for name in ("root", "alice"):
        assert main(["--home", str(home), "add-user", name, *(["--admin"] if name == "root" else [])]) == 0
        tokens[name] = capsys.readouterr().out.splitlines()[-1]
    (home / "server.toml").unlink()  # the URL, password and all, from the environment alone
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ARCHIVIST_DATABASE_URL", url)
        with serving(home, "alpha") as alpha, serving(home, "beta") as beta:
            def get(address: str, user: str, path: str) -> httpx.Response:
                return httpx.get(address + path, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=30)

            assert get(beta, "alice", "/v1/grants?collection=Handbook").status_code == 403
            given = httpx.post(f"{alpha}/v1/grant", json={"name": "alice", "collection": "Handbook", "role": "owner"},
                               headers={"Authorization": f"Bearer {tokens['root']}"}, timeout=30)
            assert given.status_code == 200
            assert get(beta, "alice", "/v1/grants?collection=Handbook").json() == [["alice", "owner"]]
            assert main(["--home", str(home), "new-token", "alice"]) == 0
            for replica in (alpha, beta):
                assert get(replica, "alice", "/v1/whoami").status_code == 401
        capsys.readouterr()
        assert main(["--home", str(home), "audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    actions = [line.split()[3].rstrip(":") for line in lines]
    assert actions[:5] == ["add-user", "add-user", "grants", "grant", "new-token"]  # both replicas', in order
    assert "[refused" in lines[2] and "sign-in" in actions[5:] and PASSWORD not in "\n".join(lines)
    assert lines[2].endswith(", via beta]") and lines[3].endswith(", via alpha]")  # which replica did it
    assert "via" not in lines[4]  # an administrator's command, through none
    assert PASSWORD not in "".join(p.read_text() for p in (home / "logs").rglob("*.log"))


def test_a_postgresql_that_hangs_costs_one_wait_then_requests_are_refused_at_once(cluster: str):
    import os
    import signal

    database = Database(fresh_database(cluster), answer_within=1.0)
    database.upgrade()
    accounts = Accounts(database)
    token = accounts.add_user("ann")
    assert accounts.authenticate(token).name == "ann"
    with database.reading() as conn:
        paused = postgres_processes(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(DatabaseError, match="is not answering; it is tried again every 2 s"):
            accounts.authenticate(token)  # waits once: the connection is cut after a second
        assert database.breaker is not None and database.breaker.is_open
        tried = database.breaker.attempts
        with ThreadPoolExecutor(4) as pool:
            refused = list(pool.map(lambda _: _refusal(lambda: accounts.authenticate(token)), range(20)))
        assert all(isinstance(r, DatabaseError) for r in refused)
        assert database.breaker.attempts == tried and database.breaker.skipped >= 20  # none went to the database
        assert PASSWORD not in str(refused[0])
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while database.breaker.is_open:  # tried in the background until it answers
        assert time.monotonic() < deadline, "the breaker did not close once the database answered"
        time.sleep(0.1)
    assert accounts.authenticate(token).name == "ann"
    database.close()


def _refusal(action) -> BaseException | None:
    try:
        action()
    except BaseException as error:  # noqa: BLE001 - returned to be looked at
        return error
    return None


def test_a_refusal_the_database_answers_with_does_not_open_the_breaker(cluster: str):
    """A lock not available, a deadlock, a constraint: the database answered; only a connection lost,
    cut or never made says it does not."""
    database = Database(fresh_database(cluster))
    database.upgrade()
    accounts = Accounts(database)
    accounts.add_user("ann")
    with database.writing() as holder:
        holder.execute(text("SELECT * FROM users WHERE name = 'ann' FOR UPDATE"))
        with pytest.raises(OperationalError, match="lock"), database.writing() as waiter:
            waiter.execute(text("SET LOCAL lock_timeout = '100ms'"))
            waiter.execute(text("SELECT * FROM users WHERE name = 'ann' FOR UPDATE"))
    with pytest.raises(KnowledgeBaseError, match="already a user named 'ann'"):
        accounts.add_user("ann")
    assert database.breaker is not None and not database.breaker.is_open and database.breaker.opened == 0
    assert accounts.users() == [("ann", False)]
    database.close()
