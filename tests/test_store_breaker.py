"""The store's breaker for a Chroma server that hangs or goes away, against a real `chroma run`:
paused (SIGSTOP) under searches, the calls in flight wait one timeout together, every later call
fails at once with ``StoreUnavailable``, and the store serves again once the server answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from servers import free_port

from rag.documents import Chunk
from rag.errors import StoreUnavailable
from rag.storage.collection import StoredCollection, chunk_row
from rag.storage.vectors import VectorStore

TIMEOUT, RETRY_EVERY = 0.5, 0.2


@contextlib.contextmanager
def chroma_server(folder: Path) -> Iterator[tuple[int, int]]:
    """``chroma run`` on a free loopback port, in a process group of its own (so that a signal reaches
    every process serving); its port and that group's id."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert chroma, "the chromadb package's `chroma` command is missing"
    port = free_port()
    process = subprocess.Popen([chroma, "run", "--path", str(folder), "--port", str(port)], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "chroma run did not start"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield port, process.pid
    finally:
        os.killpg(process.pid, signal.SIGCONT)  # never leave it stopped, even if the test did
        process.terminate()
        process.wait(20)


@contextlib.contextmanager
def paused(group: int) -> Iterator[None]:
    """The server's processes stopped (SIGSTOP) for the block, and always continued after it."""
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def manuals(store: VectorStore) -> StoredCollection:
    """A knowledge base of three chunks, with three-dimensional vectors."""
    collection = store.open(store.create("Manuals", "test-embedder", 3))
    texts = ["Oil every 200 hours.", "Filters every 500 hours.", "Belts every 1000 hours."]
    rows = [chunk_row("manual", "/manual.txt", "h", Chunk(text=t, start=0, end=len(t), index=i, page=None, heading=""))
            for i, t in enumerate(texts)]
    collection.add_chunks([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], np.eye(3, dtype=np.float32))
    return collection


def test_a_paused_chroma_server_costs_the_searches_in_flight_one_timeout_then_nothing(tmp_path: Path):
    """The issue's case: the server stopped under several threads searching. The calls in flight wait
    one read timeout together (without the bounded session they would wait for ever); every later one
    fails at once; the server back, the heartbeat closes the breaker and searches find chunks again."""
    threads, calls = 8, 10
    with chroma_server(tmp_path / "chroma") as (port, group):
        store = VectorStore.server("127.0.0.1", port, timeout=TIMEOUT, retry_every=RETRY_EVERY)
        collection = manuals(store)
        breaker = store.breaker
        assert breaker is not None and not breaker.is_open
        healthy = []
        for i in range(20):
            started = time.perf_counter()
            assert collection.query(unit(1, 0, 0), 1)[0].text == "Oil every 200 hours."
            healthy.append(time.perf_counter() - started)
        attempts = breaker.attempts
        times: list[list[float]] = [[] for _ in range(threads)]
        errors: list[list[BaseException | None]] = [[] for _ in range(threads)]

        def searcher(number: int) -> None:
            for i in range(calls):  # searches, and the chunks they cite read back, as a question does
                started = time.perf_counter()
                try:
                    if i % 2:
                        collection.get(["manual:0", "manual:1"])
                    else:
                        collection.query(unit(1, 0.1 * number, 0), 2)
                except BaseException as exc:  # noqa: BLE001 - recorded, and asserted on by the test's thread
                    errors[number].append(exc)
                else:
                    errors[number].append(None)
                times[number].append(time.perf_counter() - started)

        with paused(group):
            workers = [threading.Thread(target=searcher, args=(n,)) for n in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert breaker.is_open and breaker.opened == 1
        raised = [exc for each in errors for exc in each]
        assert len(raised) == threads * calls
        assert all(isinstance(exc, StoreUnavailable) for exc in raised), raised
        sentence = (f"The vector store is unavailable: the Chroma server at http://127.0.0.1:{port} did not answer; "
                    f"it is tried again every {RETRY_EVERY:g} s")
        assert {str(exc) for exc in raised} == {sentence}
        # Only the calls already waiting when it opened reached the server: one a thread at most.
        assert breaker.attempts - attempts <= threads
        assert breaker.skipped >= threads * calls - threads
        first = [each[0] for each in times]
        later = [t for each in times for t in each[1:]]
        assert max(first) < 2 * TIMEOUT + 1.0  # one timeout together, not one per call in turn
        assert max(later) < 1.0  # generous: a skipped call takes microseconds
        print(f"\nChroma paused: first call waited {statistics.median(first):.3f} s (median; at most {max(first):.3f} s,"
              f" timeout {TIMEOUT} s); later calls took {1000 * statistics.mean(later):.3f} ms each on average"
              f" ({1000 * max(later):.3f} ms at most; a healthy search takes {1000 * statistics.median(healthy):.1f} ms);"
              f" breaker opened {breaker.opened}, attempts {breaker.attempts - attempts}, skipped {breaker.skipped}")

        deadline = time.monotonic() + 20
        while breaker.is_open:  # the heartbeat in the background finds the server answering
            assert time.monotonic() < deadline, "the breaker did not close after the server came back"
            time.sleep(0.05)
        assert collection.query(unit(0, 1, 0), 1)[0].text == "Filters every 500 hours."
        assert [c.text for c in collection.get(["manual:2"])] == ["Belts every 1000 hours."]
        assert breaker.opened == 1
        store.close()


def test_a_server_that_went_away_fails_at_once_after_the_first_call(tmp_path: Path):
    with chroma_server(tmp_path / "chroma") as (port, _group):
        store = VectorStore.server("127.0.0.1", port, timeout=TIMEOUT, retry_every=RETRY_EVERY)
        collection = manuals(store)
    # The server is gone: its port refuses. The first call opens the breaker; the next is not tried.
    breaker = store.breaker
    assert breaker is not None
    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="did not answer; it is tried again every 0.2 s"):
            collection.query(unit(1, 0, 0), 1)
    assert breaker.opened == 1 and breaker.skipped == 1
    store.close()


def test_an_error_from_a_server_that_answers_does_not_open_the_breaker(tmp_path: Path):
    with chroma_server(tmp_path / "chroma") as (port, _group):
        store = VectorStore.server("127.0.0.1", port, timeout=TIMEOUT, retry_every=RETRY_EVERY)
        info = store.create("Manuals", "test-embedder", 3)
        other = VectorStore.server("127.0.0.1", port)
        other.delete("Manuals")  # another client deletes it: the server answers "not found"
        with pytest.raises(StoreUnavailable):
            store.open(info)
        assert store.breaker is not None and not store.breaker.is_open and store.breaker.opened == 0
        other.close()
        store.close()


def test_a_store_on_a_paused_server_fails_to_open_after_one_timeout(tmp_path: Path):
    """chromadb's HttpClient asks the server before its session can be bounded: the store asks first."""
    with chroma_server(tmp_path / "chroma") as (port, group), paused(group):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="connecting to the Chroma server"):
            VectorStore.server("127.0.0.1", port, timeout=TIMEOUT)
        assert time.monotonic() - started < TIMEOUT + 2.0


def test_an_embedded_store_has_no_breaker(tmp_path: Path):
    assert VectorStore.embedded(tmp_path / "chroma").breaker is None
