"""Servers the team tests start for real on loopback: the team server's web app (uvicorn on a
thread of the test) and Redis."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from server.app import uvicorn_options


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Debian's ``redis-server`` on a free loopback port, keeping nothing on disk; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (tests/setup-system.sh installs it)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on http://127.0.0.1:PORT until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options()))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _postgres_binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``), if it is installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


@contextlib.contextmanager
def postgres_server(password: str = "s3cret-Pa55") -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port, its superuser ``archivist`` signing in by
    ``password``; the URL of its ``postgres`` database. PostgreSQL refuses to run as root: run as root
    (as in CI's container), the cluster is made and run by the ``postgres`` account (else ``nobody``)
    in a folder of its own under the system's temporary folder."""
    import os
    import tempfile

    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (apt install postgresql: its initdb and pg_ctl)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="archivist-pg-"))
    if os.geteuid() == 0:
        account = next((name for name in ("postgres", "nobody") if _uid(name) is not None), None)
        if account is None or shutil.which("runuser") is None:
            pytest.skip("running as root with neither a postgres nor a nobody account and runuser to run PostgreSQL")
        as_user = ["runuser", "-u", account, "--"]
        os.chown(folder, _uid(account), -1)
    (folder / "password").write_text(password)
    os.chmod(folder / "password", 0o644)
    port = free_port()
    data = folder / "data"
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "archivist", "--pwfile",
                    str(folder / "password"), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                    "--no-sync"], check=True, stdout=subprocess.DEVNULL)
    options = f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
    subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "-t", "60", "start"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"postgresql://archivist:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(cluster: str) -> str:
    """A new, empty database on the cluster at ``cluster`` (a URL from ``postgres_server``): its URL,
    password and all, for psycopg 3."""
    import uuid

    from sqlalchemy import create_engine, make_url, text

    url = make_url(cluster).set(drivername="postgresql+psycopg")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def postgres_processes(backend: int) -> list[int]:
    """The PostgreSQL server's processes, from one backend's process id (``SELECT pg_backend_pid()``):
    its parent, the postmaster, then the postmaster's children. Pausing them all (SIGSTOP) hangs the
    server as a stopped machine would."""
    postmaster = _parent(backend)
    assert postmaster is not None, f"process {backend} has no parent"
    return [postmaster, *(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                          and _parent(int(p.name)) == postmaster)]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _uid(account: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return None
