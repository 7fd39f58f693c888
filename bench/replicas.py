"""Two replicas of the team server against one (part 5 of bench/team.py): PostgreSQL holding the
accounts and the audit log (``ARCHIVIST_DATABASE_URL``), Redis shared for the answer cache and the
events (``cache_redis_url``), one Chroma server, and ``archivist-server serve --replica NAME`` twice on
one home folder, all on this machine.

a. Throughput: the same users searching (POST /v1/call "search", each with its bearer token) for
   --seconds against replica A alone and --seconds alternating between A and B, in four runs (one, two,
   two, one): searches/s, p50/p95, errors, the ratio two/one, and how the requests in flight spread
   over A and B. Both replicas run on the same cores, so the ratio is expected near 1.0: a second
   process adds no CPU; it is a measure of the overhead, not of scaling.
b. A grant's propagation: the owner grants a new user reader through A (POST /v1/grant); the time
   until that user's ``list_conversations`` on the collection (a call that needs the reader's right)
   succeeds on B, polled without pause, several times.
c. Failover: the users searching across A and B; B is killed (SIGKILL) halfway. Requests whose first
   attempt failed (what a client without a retry would have lost), split into those in flight on B
   when it died and those refused by it afterwards; and those failed even after the one retry.

The client is a tiny round-robin, no load balancer: each user alternates the replicas' URLs request by
request and, when a request fails at the transport (refused, or the connection dropped mid-request),
retries it once on the other replica. A search changes nothing, so retrying it is safe.

    python bench/replicas.py [--seconds 20] [--users 20] [--paragraphs 200] [--grants 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))
sys.path.append(str(HERE.parent / "tests"))

from rag import offline

offline.enforce()

from corpus import paragraphs
from servers import free_port, postgres_server, redis_server

from rag.service.client import KnowledgeBaseClient
from rag.service.http_channel import HttpChannel
from server.accounts import Accounts, Role
from server.database import Database

COLLECTION = "Team"
SAMPLE_EVERY = 0.25  # seconds between two looks at how the requests in flight spread over the replicas
SEARCHES = [
    "How do I parse command line arguments?", "How can I compress a file with gzip?", "Is there a thread safe queue?",
    "How should a password be hashed?", "How do I read a CSV file with a custom delimiter?", "What is a named tuple?",
    "How can I schedule a function call for later?", "How do I pick a random sample without replacement?",
    "How do I create a temporary directory?", "How are dates formatted in UTC?",
]


@dataclass
class Replica:
    """One ``archivist-server serve --replica NAME`` process and its address."""

    name: str
    url: str
    process: subprocess.Popen[bytes]


@dataclass
class Attempt:
    """One try of a request on one replica: where, when it began, and how it ended."""

    url: str
    began: float
    transport_error: str = ""  # "" when the replica answered (well or not)


@dataclass
class Tally:
    """What a load run saw, shared by its users' threads."""

    took: list[float] = field(default_factory=list)  # seconds, searches answered
    took_on: dict[str, list[float]] = field(default_factory=dict)  # URL -> seconds, searches answered at the first try
    errors: list[str] = field(default_factory=list)  # requests failed after the retry, why
    first_failed: list[Attempt] = field(default_factory=list)  # first attempts lost at the transport
    retried_ok: int = 0
    refused: int = 0  # answered, but with an error or a refusal (not retried)
    in_flight: dict[str, int] = field(default_factory=dict)  # URL -> requests sent and not yet answered
    samples: list[tuple[int, ...]] = field(default_factory=list)  # in_flight per URL, every SAMPLE_EVERY seconds
    lock: threading.Lock = field(default_factory=threading.Lock)


class RoundRobin:
    """A user's client across replicas: the next URL each request, the other once on a transport error."""

    def __init__(self, urls: list[str], token: str, tally: Tally, start: int = 0) -> None:
        self.urls = urls
        self.tally = tally
        self._next = start
        self._http = {url: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
                      for url in urls}

    def search(self, query: str) -> None:
        """One search, counted in the tally: its time, or its error; retried once elsewhere if the
        replica could not be reached or dropped the connection."""
        first = self.urls[self._next % len(self.urls)]
        self._next += 1
        began = time.perf_counter()
        attempt = self._try(first, query)
        if attempt is None:
            self._record(time.perf_counter() - began, "")
            with self.tally.lock:
                self.tally.took_on.setdefault(first, []).append(time.perf_counter() - began)
            return
        with self.tally.lock:
            self.tally.first_failed.append(attempt)
        others = [url for url in self.urls if url != first]
        if not others:
            self._record(0.0, attempt.transport_error)
            return
        again = self._try(others[0], query)
        self._record(time.perf_counter() - began, again.transport_error if again else "")
        if again is None:
            with self.tally.lock:
                self.tally.retried_ok += 1

    def _try(self, url: str, query: str) -> Attempt | None:
        """None when the search came back with a result; else how it failed."""
        body = {"id": uuid.uuid4().hex, "call": "search", "args": {"query": query, "collection": COLLECTION,
                                                                    "limit": 8}}
        with self.tally.lock:  # begun under the lock the kill holds: before it or after it, never across
            attempt = Attempt(url, time.monotonic())
            self.tally.in_flight[url] = self.tally.in_flight.get(url, 0) + 1
        try:
            response = self._http[url].post("/v1/call", json=body)
        except httpx.TransportError as exc:
            attempt.transport_error = f"{type(exc).__name__}: {exc}"
            return attempt
        finally:
            with self.tally.lock:
                self.tally.in_flight[url] -= 1
        if response.status_code != 200:
            raise _Refused(f"HTTP {response.status_code}: {response.text[:200]}")
        for line in response.text.splitlines():
            message = json.loads(line) if line.strip() else {}
            if "error" in message:
                raise _Refused(f"search: {str(message['error'])[:200]}")
            if "result" in message:
                return None
        raise _Refused("search: no result")

    def _record(self, took: float, error: str) -> None:
        with self.tally.lock:
            if error:
                self.tally.errors.append(error)
            else:
                self.tally.took.append(took)

    def close(self) -> None:
        for client in self._http.values():
            client.close()


class _Refused(Exception):
    """The replica answered, but not with a result: counted as an error, not retried."""


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms, from seconds."""
    ordered = sorted(values) or [float("nan")]
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def searching(urls: list[str], tokens: list[str], seconds: float,
              midway: Callable[[Tally], None] | None = None) -> tuple[Tally, float]:
    """Each token's user searching across ``urls`` for ``seconds``; ``midway(tally)`` runs halfway through.
    The tally, and the seconds from the first request to the last answer."""
    tally = Tally()
    clients = [RoundRobin(urls, token, tally, start=i) for i, token in enumerate(tokens)]
    deadline = time.monotonic() + seconds

    def user(index: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            try:
                clients[index].search(SEARCHES[(index + n) % len(SEARCHES)])
            except _Refused as exc:
                with tally.lock:
                    tally.errors.append(str(exc))
                    tally.refused += 1
            n += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    half = time.monotonic() + seconds / 2
    while (now := time.monotonic()) < deadline:  # how the users spread over the replicas, while they search
        if midway is not None and now >= half:
            midway(tally)
            midway = None
        with tally.lock:
            tally.samples.append(tuple(tally.in_flight.get(url, 0) for url in urls))
        time.sleep(SAMPLE_EVERY)
    for t in threads:
        t.join(seconds + 120)
    wall = time.perf_counter() - began
    for client in clients:
        client.close()
    return tally, wall


def spread(tally: Tally, users: int) -> str:
    """How the users' requests in flight were spread over two replicas, sampled while they searched."""
    samples = tally.samples or [(0, 0)]
    lopsided = sum(1 for s in samples if sum(s) and max(s) == sum(s)) / len(samples)
    return (f"in flight on A / B (sampled every {SAMPLE_EVERY} s, {len(samples)} samples): mean "
            f"{statistics.mean(s[0] for s in samples):.1f} / {statistics.mean(s[1] for s in samples):.1f} of {users} "
            f"users; every request in flight on one replica in {lopsided:.0%} of samples")


def throughput(replicas: list[Replica], tokens: list[str], seconds: float) -> None:
    """One replica against two, in four runs of ``seconds / 2`` (one, two, two, one), so that a drift in
    what else this machine runs weighs on both alike; each way's runs pooled."""
    print(f"a. {len(tokens)} users searching for {seconds:.0f} s each way (POST /v1/call search, limit 8), in runs "
          f"of {seconds / 2:.0f} s in the order one, two, two, one:", flush=True)
    ways = {"one replica (A)": [replicas[0].url], "two replicas (A, B)": [r.url for r in replicas]}
    pooled: dict[str, tuple[Tally, float]] = {}
    for label in (*ways, *reversed(ways)):
        tally, wall = searching(ways[label], tokens, seconds / 2)
        print(f"    run: {label:20} {len(tally.took) / wall:6.1f} searches/s", flush=True)
        if label in pooled:
            before, walls = pooled[label]
            tally.took += before.took
            tally.errors += before.errors
            tally.first_failed += before.first_failed
            tally.samples += before.samples
            for url, took in before.took_on.items():
                tally.took_on.setdefault(url, []).extend(took)
            wall += walls
        pooled[label] = tally, wall
    rates = []
    for label, (tally, wall) in pooled.items():
        p50, p95 = percentiles(tally.took)
        rates.append((len(tally.took) / wall, p95))
        print(f"  {label:20} {rates[-1][0]:6.1f} searches/s  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
              f"({len(tally.took)} searches, {len(tally.errors)} errors, {len(tally.first_failed)} retried)",
              flush=True)
        if len(ways[label]) > 1:
            print("    each replica: " + ";  ".join(
                f"{r.name} p50 {percentiles(tally.took_on.get(r.url, []))[0]:.1f} ms  p95 "
                f"{percentiles(tally.took_on.get(r.url, []))[1]:.1f} ms ({len(tally.took_on.get(r.url, []))})"
                for r in replicas), flush=True)
            print(f"    {spread(tally, len(tokens))}", flush=True)
        for reason in dict.fromkeys(tally.errors):
            print(f"    error: {reason}", flush=True)
    print(f"  two / one: searches/s x{rates[1][0] / max(1e-9, rates[0][0]):.2f}, p95 x"
          f"{rates[1][1] / max(1e-9, rates[0][1]):.2f} (expected near 1.0: both replicas share this machine's "
          f"{os.cpu_count()} cores, so a second process adds no CPU)", flush=True)


def propagation(replicas: list[Replica], owner: str, database: Database, repeats: int) -> None:
    """Grant through A, then poll a reader's call on B until it succeeds."""
    accounts = Accounts(database)
    names = [f"grantee{n:02}" for n in range(repeats)]
    tokens = [accounts.add_user(name) for name in names]
    waited: list[float] = []
    polls: list[int] = []
    body = {"id": "conversations", "call": "list_conversations", "args": {"collection": COLLECTION}}
    with httpx.Client(timeout=30) as http:
        for token, name in zip(tokens, names):
            headers = {"Authorization": f"Bearer {token}"}
            before = http.post(f"{replicas[1].url}/v1/call", json=body, headers=headers)
            assert before.status_code == 403, f"{name} before the grant: {before.status_code} {before.text[:200]}"
            began = time.perf_counter()
            given = http.post(f"{replicas[0].url}/v1/grant", json={"name": name, "collection": COLLECTION,
                                                                   "role": "reader"},
                              headers={"Authorization": f"Bearer {owner}"})
            assert given.status_code == 200, given.text
            granted = time.perf_counter()
            tries = 0
            while True:
                tries += 1
                answer = http.post(f"{replicas[1].url}/v1/call", json=body, headers=headers)
                if _allowed(answer):
                    break
                assert time.perf_counter() - began < 30, f"the grant did not hold on B within 30 s: {answer.text}"
            waited.append((time.perf_counter() - granted) * 1000)
            polls.append(tries)
    print(f"b. a grant through A holding on B, {repeats} times (a new user each time; POST /v1/grant as the owner, "
          f"then list_conversations on B until it is allowed): after A answered the grant, B allowed the call in "
          f"p50 {statistics.median(waited):.1f} ms, max {max(waited):.1f} ms; polls needed: "
          f"{', '.join(map(str, polls))} (1 = the first call on B after the grant was allowed)", flush=True)


def _allowed(response: httpx.Response) -> bool:
    """Whether a call came back with its result (not refused, not an error)."""
    return response.status_code == 200 and any("result" in json.loads(line) for line in response.text.splitlines()
                                               if line.strip())


def failover(replicas: list[Replica], tokens: list[str], seconds: float) -> None:
    """The users across A and B, B killed halfway; what failed, and why."""
    victim = replicas[1]
    killed: list[tuple[int, int, float]] = []  # (requests in flight on B, on A, when)

    def kill(tally: Tally) -> None:
        with tally.lock:  # no request starts or ends on B between the count and the kill
            victim.process.send_signal(signal.SIGKILL)
            killed.append((tally.in_flight.get(victim.url, 0), tally.in_flight.get(replicas[0].url, 0),
                           time.monotonic()))

    tally, _ = searching([r.url for r in replicas], tokens, seconds, kill)
    tally.samples = tally.samples[: int(seconds / 2 / SAMPLE_EVERY)]
    victim.process.wait(10)
    in_flight, on_a, at = killed[0]
    cut = [a for a in tally.first_failed if a.url == victim.url and a.began < at]
    refused = [a for a in tally.first_failed if a.url == victim.url and a.began >= at]
    other = [a for a in tally.first_failed if a.url != victim.url]
    p50, p95 = percentiles(tally.took)
    print(f"c. failover: {len(tokens)} users searching across A and B for {seconds:.0f} s, B killed (SIGKILL) at "
          f"{seconds / 2:.0f} s with {in_flight} requests in flight on it ({on_a} on A);\n"
          f"  before the kill, {spread(tally, len(tokens))}\n"
          f"  first attempts lost at the transport (what a client without a retry loses): {len(tally.first_failed)}: "
          f"{len(cut)} in flight on B when it died (target: only those), {len(refused)} sent to B after it died "
          f"(refused: this round-robin never drops a dead replica, so it sends B every other request), "
          f"{len(other)} on A;  answered with an error: {tally.refused}\n"
          f"  with the one retry on the other replica: {len(tally.errors)} failed, {tally.retried_ok} saved by the "
          f"retry;  {len(tally.took)} searches answered, p50 {p50:.1f} ms  p95 {p95:.1f} ms", flush=True)
    for reason in dict.fromkeys(a.transport_error for a in tally.first_failed):
        print(f"    first attempt failed: {reason}", flush=True)
    for reason in dict.fromkeys(tally.errors):
        print(f"    error: {reason}", flush=True)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"{url} did not start; see {log}")


@contextlib.contextmanager
def started(command: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running, its output in ``log``, until the block ends (then ended, if still running)."""
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def measure(seconds: float = 20.0, users: int = 20, texts: int = 200, grants: int = 10) -> None:
    """Start the servers, load a collection through A, and run parts a, b and c."""
    root = Path(tempfile.mkdtemp(prefix="archivist-replicas-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            database_url = stack.enter_context(postgres_server())
            redis_url = stack.enter_context(redis_server(root / "redis"))
            database = Database(database_url)
            stack.callback(database.close)
            database.upgrade()
            accounts = Accounts(database)
            tokens = [accounts.add_user(f"user{i:02}", admin=i == 0) for i in range(users)]
            for i in range(1, users):
                accounts.grant(f"user{i:02}", COLLECTION, Role.READER)
            env = dict(os.environ, ARCHIVIST_DATABASE_URL=database_url)
            chroma_port = free_port()
            chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
            assert chroma, "chroma is not installed in this environment"
            chroma_process = stack.enter_context(started(
                [chroma, "run", "--path", str(root / "chroma"), "--port", str(chroma_port)], root / "chroma.log", env))
            wait_for(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", chroma_process, root / "chroma.log")
            home = root / "server"
            home.mkdir()
            (home / "server.toml").write_text(
                f'chroma_host = "127.0.0.1"\nchroma_port = {chroma_port}\ncache_redis_url = "{redis_url}"\n'
                "[server]\nwatches_folders = false\n")
            replicas = []
            for name in ("A", "B"):
                port = free_port()
                log = root / f"replica-{name}.log"
                process = stack.enter_context(started(
                    [sys.executable, "-m", "server.cli", "--home", str(home), "serve", "--port", str(port),
                     "--replica", name], log, env))
                replicas.append(Replica(name, f"http://127.0.0.1:{port}", process))
            for replica in replicas:
                wait_for(f"{replica.url}/v1/health", replica.process, root / f"replica-{replica.name}.log")

            corpus = root / "corpus"
            corpus.mkdir()
            chosen = paragraphs()[:texts]
            for i in range(0, len(chosen), 20):
                (corpus / f"doc{i // 20:03}.txt").write_text("\n\n".join(chosen[i : i + 20]))
            began = time.perf_counter()
            owner = KnowledgeBaseClient(HttpChannel(replicas[0].url, tokens[0]))
            owner.ingest([corpus], COLLECTION)
            owner.close()
            print(f"5. replicas: PostgreSQL (accounts, audit log), Redis (cache, events), one Chroma server, "
                  f"replicas A and B on one home folder; {len(chosen)} paragraphs ingested through A in "
                  f"{time.perf_counter() - began:.0f} s; {users} users; {os.cpu_count()} cores, all on this machine; "
                  f"the client alternates replicas per request and retries a transport failure once on the other",
                  flush=True)
            warm, _ = searching([r.url for r in replicas], tokens[:2], 3.0)  # each replica's embedder and indexes
            assert not warm.errors, warm.errors
            throughput(replicas, tokens, seconds)
            propagation(replicas, tokens[0], database, grants)
            failover(replicas, tokens, seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each load runs")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--paragraphs", type=int, default=200, help="paragraphs in the collection searched")
    parser.add_argument("--grants", type=int, default=10, help="grants timed in part b")
    args = parser.parse_args()
    measure(args.seconds, args.users, args.paragraphs, args.grants)


if __name__ == "__main__":
    main()
