"""The lease by which one replica of several watches the followed folders: two replicas' leases on one
real database (a throwaway PostgreSQL, and SQLite), one holding at a time, the other taking over when
the holder stops renewing; and two ``archivist-server serve`` processes, one killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servers import fresh_database, free_port, postgres_server
from sqlalchemy import text

from server.database import Database
from server.lease import FOLLOWED_FOLDERS, Lease, LeasedJob

SECONDS = 2.0  # the tests' lease: long enough for a slow machine to renew in, short enough to wait out


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database at the newest schema: a SQLite file, or a database of its own on the throwaway cluster."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = fresh_database(request.getfixturevalue("cluster"))
    database = Database(url)
    database.upgrade()
    database.close()
    return url


@pytest.fixture
def databases(database_url: str) -> Iterator[list[Database]]:
    """Each replica's own connections to the one database."""
    opened = [Database(database_url) for _ in range(8)]
    yield opened
    for database in opened:
        database.close()


def test_one_replica_at_a_time_holds_the_lease(databases: list[Database]):
    alpha = Lease(databases[0], FOLLOWED_FOLDERS, "alpha", SECONDS)
    beta = Lease(databases[1], FOLLOWED_FOLDERS, "beta", SECONDS)
    assert alpha.take() and alpha.held()
    assert not beta.take() and not beta.held()
    assert alpha.take() and not beta.take()  # renewed, still alpha's
    assert alpha.holder_now() == beta.holder_now() == "alpha"


def test_replicas_asking_at_the_same_moment_get_one_lease(databases: list[Database]):
    leases = [Lease(database, "race", f"replica{n}", 30) for n, database in enumerate(databases)]
    start = threading.Barrier(len(leases))

    def ask(lease: Lease) -> bool:
        start.wait()
        return lease.take()

    for _ in range(5):  # a fresh row each time, then one already there
        with ThreadPoolExecutor(len(leases)) as pool:
            results = list(pool.map(ask, leases))
        assert results.count(True) == 1, results
        holder = leases[0].holder_now()
        assert [lease.held() for lease in leases].count(True) == 1 and holder
        next(lease for lease in leases if lease.holder == holder).release()


def test_a_replica_that_stops_renewing_is_taken_over_after_the_lease_and_cannot_steal_it_back(
        databases: list[Database]):
    alpha = Lease(databases[0], FOLLOWED_FOLDERS, "alpha", SECONDS)
    beta = Lease(databases[1], FOLLOWED_FOLDERS, "beta", SECONDS)
    assert alpha.take()
    last_renewed = time.monotonic()
    while not beta.take():  # alpha is dead (or paused): it renews no more
        assert time.monotonic() - last_renewed < SECONDS + 5, "beta never took the lease over"
        time.sleep(0.05)
    took_after = time.monotonic() - last_renewed
    assert took_after >= SECONDS - 0.2  # not before it ran out (the database's clock against this one)
    assert not alpha.held()  # alpha counts itself out no later than beta could take over
    assert beta.taken_from == "alpha" and beta.holder_now() == "beta"

    for _ in range(int(SECONDS * 2 / 0.25)):  # alpha comes back while beta renews: alpha never gets it
        assert not alpha.take() and beta.take()
        time.sleep(0.25)
    assert alpha.holder_now() == "beta"


def test_a_lease_given_back_is_taken_at_once(databases: list[Database]):
    alpha = Lease(databases[0], FOLLOWED_FOLDERS, "alpha", 30)
    beta = Lease(databases[1], FOLLOWED_FOLDERS, "beta", 30)
    assert alpha.take() and not beta.take()
    alpha.release()
    assert not alpha.held() and beta.take() and beta.holder_now() == "beta"


def test_the_job_runs_on_one_replica_and_moves_when_it_ends(databases: list[Database]):
    running: dict[str, bool] = {}
    jobs = {name: LeasedJob(Lease(databases[n], FOLLOWED_FOLDERS, name, 2 * SECONDS),
                            lambda name=name: running.__setitem__(name, True),
                            lambda name=name: running.__setitem__(name, False), "testing")
            for n, name in enumerate(("alpha", "beta"))}
    jobs["alpha"].begin()
    jobs["beta"].begin()
    try:
        assert running == {"alpha": True} and jobs["alpha"].running and not jobs["beta"].running
        time.sleep(2 * SECONDS)  # renewed, again and again: it stays where it is
        assert running == {"alpha": True}
        jobs["alpha"].end()  # stops, and gives the lease back
        assert running == {"alpha": False}
        deadline = time.monotonic() + 2 * SECONDS  # beta asks every third of a lease
        while not running.get("beta"):
            assert time.monotonic() < deadline, "beta did not take the job over"
            time.sleep(0.02)
        assert not running["alpha"] and jobs["beta"].running
    finally:
        jobs["alpha"].end()
        jobs["beta"].end()
    assert running == {"alpha": False, "beta": False}


def test_a_holder_whose_database_hangs_stops_the_job_when_its_lease_runs_out(databases: list[Database]):
    stopped: list[float] = []
    job = LeasedJob(Lease(databases[0], FOLLOWED_FOLDERS, "alpha", SECONDS), lambda: None,
                    lambda: stopped.append(time.monotonic()), "testing")
    job.begin()
    renewed = time.monotonic()
    try:
        assert job.running
        with databases[1].writing() as conn:  # another connection holds the lease's table: alpha's renewals wait
            if databases[1].is_sqlite:  # BEGIN IMMEDIATE has taken SQLite's one write lock
                conn.execute(text("UPDATE leases SET holder = holder WHERE name = ''"))
            else:
                conn.execute(text("LOCK TABLE leases IN ACCESS EXCLUSIVE MODE"))
            deadline = time.monotonic() + SECONDS + 3
            while job.running:
                assert time.monotonic() < deadline, "the job went on with its lease run out"
                time.sleep(0.02)
            assert stopped and stopped[0] - renewed <= SECONDS + 0.5  # within its lease from its last renewal
    finally:
        job.end()


# -- two real replicas -----------------------------------------------------------------------------


@contextlib.contextmanager
def replica(home: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``archivist-server serve --replica NAME`` in a process of its own, once it serves; ended at the end."""
    port = free_port()
    argv = ["--home", str(home), "serve", "--port", str(port), "--replica", name]
    script = f"import sys; from server.cli import main; sys.exit(main({argv!r}))"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1):
            break
        assert process.poll() is None and time.monotonic() < deadline, f"replica {name} did not start"
        time.sleep(0.1)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(20)


def logged(home: Path, name: str, words: str, within: float, count: int = 1) -> list[str]:
    """The lines of ``name``'s log that hold ``words``, waiting up to ``within`` seconds for ``count`` of them."""
    deadline = time.monotonic() + within
    log = home / "logs" / name / "archivist.log"
    while True:
        lines = [line for line in (log.read_text(encoding="utf-8").splitlines() if log.exists() else [])
                 if words in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_when_the_watching_replica_is_killed_or_hangs_another_takes_the_followed_folders_over(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "server.toml").write_text("[server]\nwatch_lease_seconds = 3\n", encoding="utf-8")
    with replica(home, "alpha") as alpha:
        assert logged(home, "alpha", "took the lease 'followed-folders': watching the followed folders", 0)
        with replica(home, "beta") as beta:
            time.sleep(3)  # beta asks in vain
            assert not logged(home, "beta", "took the lease", 0)
            os.kill(alpha.pid, signal.SIGKILL)
            killed = time.monotonic()
            alpha.wait(10)
            took = logged(home, "beta", "took the lease 'followed-folders' from alpha: watching the followed folders",
                          10)
            assert took and time.monotonic() - killed < 3 + 1 + 2  # a lease, a third of one, and slack

            with replica(home, "alpha"):  # alpha comes back, and waits its turn
                time.sleep(4)
                assert len(logged(home, "alpha", "took the lease", 0)) == 1  # the first life's alone
                os.kill(beta.pid, signal.SIGSTOP)  # beta hangs
                try:
                    assert logged(home, "alpha", "took the lease 'followed-folders' from beta", 3 + 1 + 2)
                finally:
                    os.kill(beta.pid, signal.SIGCONT)
                assert logged(home, "beta", "lost the lease 'followed-folders' (", 3)  # it ran out, or alpha took it
                beta.terminate()
                beta.wait(20)
                assert not logged(home, "beta", "gave back the lease", 0)  # it held none
            assert logged(home, "alpha", "gave back the lease 'followed-folders': no longer watching", 0)
