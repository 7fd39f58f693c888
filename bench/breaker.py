"""What a paused Redis adds to each question, with the answer cache's breaker.

Debian's ``redis-server`` on loopback holds a team's shared answer cache. Several threads ask
questions at once: each question looks its answer up in the cache, misses, and stores the answer,
as a replica does (the model's own time left out). The same questions run with Redis answering and
then with Redis paused (SIGSTOP, as a hung host or a full disk stalls it); the print-out shows the
time a question spends in the cache in both, the first paused questions apart from the rest, and
how many calls the breaker let through to Redis and how many it skipped.

    python bench/breaker.py [--threads 8] [--questions 20] [--timeout 2]
    python bench/breaker.py --postgresql [--threads 8] [--questions 20]

``--postgresql``: the same for the team server's shared database, where every request checks its
token (``Accounts.authenticate``): a throwaway PostgreSQL cluster (Debian's), paused the same way.
A request cannot go on without its token checked, so with the breaker open it is refused at once
(503) instead of answered without the cache.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Cache(Protocol):
    def get(self, question: str, scope: str, vector: Callable[[], np.ndarray] | None = None) -> object: ...
    def put(self, question: str, scope: str, payload: dict[str, object], vector: np.ndarray | None = None) -> None: ...


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[tuple[str, int]]:
    """A ``redis-server`` on a free loopback port: its URL and process id."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(folder)], stdout=subprocess.DEVNULL)
    for _ in range(400):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(10)


def in_threads(threads: int, calls: int, call: Callable[[int, int], object]) -> list[list[float]]:
    """``call(thread, i)`` made ``calls`` times on each of ``threads`` threads at once: each thread's
    calls' seconds, in order."""
    times: list[list[float]] = [[] for _ in range(threads)]

    def run(number: int) -> None:
        for i in range(calls):
            started = time.perf_counter()
            call(number, i)
            times[number].append(time.perf_counter() - started)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return times


def ask_all(cache: Cache, threads: int, questions: int, tag: str) -> list[list[float]]:
    """Each thread's questions' seconds in the cache (look-up, then storing the answer), in order."""
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)

    def ask(number: int, i: int) -> None:
        question = f"{tag} question {number}-{i}?"
        cache.get(question, "scope", lambda: vector)
        cache.put(question, "scope", {"answer": "x" * 2000}, vector)

    return in_threads(threads, questions, ask)


def figures(healthy: list[list[float]], paused: list[list[float]], wall: float) -> dict[str, float]:
    """Seconds per call answering (median, 95th percentile), then paused: first of each thread, the
    rest's mean, 95th percentile and worst; and the whole paused run."""
    answering = sorted(t for each in healthy for t in each)
    firsts = [each[0] for each in paused]
    rest = sorted(t for each in paused for t in each[1:])
    return {
        "healthy median": statistics.median(answering), "healthy p95": answering[int(0.95 * (len(answering) - 1))],
        "paused first (mean)": statistics.fmean(firsts), "paused first (worst)": max(firsts),
        "paused after first (mean)": statistics.fmean(rest), "paused after first (p95)": rest[int(0.95 * (len(rest) - 1))],
        "paused after first (worst)": rest[-1], "paused run, wall": wall,
    }


def measure(open_cache: Callable[[str], Cache], threads: int, questions: int) -> dict[str, float]:
    """``figures`` of the questions' time in the cache with Redis answering, then paused."""
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as (url, pid):
        cache = open_cache(url)
        healthy = ask_all(cache, threads, questions, "healthy")
        os.kill(pid, signal.SIGSTOP)
        started = time.perf_counter()
        paused = ask_all(cache, threads, questions, "paused")
        wall = time.perf_counter() - started
        os.kill(pid, signal.SIGCONT)
        return figures(healthy, paused, wall)


def measure_postgresql(threads: int, questions: int) -> None:
    """``figures`` of a token check with PostgreSQL answering, then paused (its postmaster and backends)."""
    sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
    from servers import postgres_processes, postgres_server

    from server.accounts import Accounts
    from server.database import Database, DatabaseError

    with postgres_server() as url:
        database = Database(url)  # the server's: a connection held 5 s is cut
        database.upgrade()
        accounts = Accounts(database)
        token = accounts.add_user("ann")

        def check(_number: int, _i: int) -> None:
            with contextlib.suppress(DatabaseError):
                accounts.authenticate(token)

        healthy = in_threads(threads, questions, check)
        with database.reading() as conn:
            paused = postgres_processes(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        assert database.breaker is not None
        before = database.breaker.attempts
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        started = time.perf_counter()
        stalled = in_threads(threads, questions, check)
        wall = time.perf_counter() - started
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        print(f"{threads} threads x {questions} token checks, PostgreSQL {len(paused)} processes paused")
        for name, seconds in figures(healthy, stalled, wall).items():
            print(f"  {name:<28} {seconds * 1000:10.3f} ms")
        print(f"  breaker opened {database.breaker.opened}x; while paused, {database.breaker.attempts - before} checks "
              f"went to PostgreSQL and {database.breaker.skipped} were refused at once")
        deadline = time.monotonic() + 30
        while database.breaker.is_open and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"  answering again after resuming: {not database.breaker.is_open}")
        database.close()


def main() -> None:
    from rag.answering.answer_cache import AnswerCache

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--questions", type=int, default=20, help="questions per thread")
    parser.add_argument("--timeout", type=float, default=2.0, help="Redis socket timeout, seconds (the server's: 2)")
    parser.add_argument("--postgresql", action="store_true", help="the shared database's breaker instead of Redis's")
    args = parser.parse_args()
    if args.postgresql:
        measure_postgresql(args.threads, args.questions)
        return
    opened: list[AnswerCache] = []

    def open_cache(url: str) -> AnswerCache:
        opened.append(AnswerCache(Path(tempfile.gettempdir()), redis_url=url, redis_timeout=args.timeout))
        return opened[-1]

    figures = measure(open_cache, args.threads, args.questions)
    breaker = opened[0].breaker
    assert breaker is not None
    print(f"{args.threads} threads x {args.questions} questions, Redis socket timeout {args.timeout:g} s")
    for name, seconds in figures.items():
        print(f"  {name:<28} {seconds * 1000:10.3f} ms")
    healthy = 2 * args.threads * args.questions  # a look-up and a put a question, all to Redis
    print(f"  breaker opened {breaker.opened}x; while Redis was paused, {breaker.attempts - healthy} calls went to "
          f"Redis and {breaker.skipped} skipped it")
    opened[0].close()


if __name__ == "__main__":
    main()
