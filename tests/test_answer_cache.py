"""The answer cache on its own: keys, near matches with their guard, bounds, counts, damage."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from servers import redis_server

from rag.answering.answer_cache import AnswerCache, compatible, normalise

Opener = Callable[..., AnswerCache]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["disk", "redis"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens caches on one machine's disk, or (a team's server replicas) in one fresh Redis database."""
    made: list[AnswerCache] = []

    def open_cache(**options: object) -> AnswerCache:
        redis = request.getfixturevalue("redis_url") if request.param == "redis" else ""
        made.append(AnswerCache(tmp_path / "c", redis_url=redis, **options))
        return made[-1]

    yield open_cache
    made[0].clear()
    for cache in made:
        cache.close()


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_normalise_folds_case_spacing_punctuation_and_unicode():
    assert normalise("  How OFTEN does the pump need oil?? ") == normalise("how often does the pump need oil")
    assert normalise("Ｑ３ revenue — «total»") == "q3 revenue total"
    assert normalise("Q3 revenue") != normalise("Q2 revenue")


def test_pivot_words_and_numbers_block_near_matches():
    assert compatible("How often does the pump need oil?", "How often should the pump get oil?")
    assert not compatible("When was the treaty signed?", "Where was the treaty signed?")
    assert not compatible("Revenue in 2023?", "Revenue in 2024?")
    assert not compatible("Is smoking allowed?", "Is smoking not allowed?")


def test_exact_and_similar_hits_within_a_scope(opened: Opener):
    cache = opened(similar_threshold=0.9)
    cache.put("How often is oil needed?", "scope-1", {"answer": "Every 200 hours."}, unit(1, 0, 0))
    assert cache.get("how often is OIL needed", "scope-1").kind == "exact"
    assert cache.get("How often is oil needed?", "scope-2") is None  # another fingerprint or model
    hit = cache.get("How frequently is oil needed?", "scope-1", lambda: unit(1, 0.1, 0))
    assert hit.kind == "similar" and hit.payload == {"answer": "Every 200 hours."} and hit.similarity > 0.99
    assert cache.get("Why is oil needed?", "scope-1", lambda: unit(1, 0.05, 0)) is None  # a pivot word changed
    assert cache.get("Something else entirely?", "scope-1", lambda: unit(0, 1, 0)) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (2, 3, 1)
    cache.clear()
    assert cache.get("How often is oil needed?", "scope-1") is None and cache.stats().entries == 0


def test_no_question_is_kept_as_text_and_a_near_match_does_not_show_it(tmp_path: Path, redis_url: str):
    import redis

    asked = "What must Daniel plan by 15 August?"
    for cache in (AnswerCache(tmp_path / "disk"), AnswerCache(tmp_path / "unused", redis_url=redis_url)):
        cache.put(asked, "scope", {"answer": "The move [1]."}, unit(1, 0, 0))
        hit = cache.get("What should Daniel plan by 15 August?", "scope", lambda: unit(1, 0.05, 0))
        assert hit is not None and hit.kind == "similar" and not hasattr(hit, "question")
        assert cache.get("What must Daniel plan by 16 August?", "scope", lambda: unit(1, 0.05, 0)) is None  # a number
        cache.close()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "disk").rglob("*") if p.is_file())
    client = redis.Redis.from_url(redis_url)
    stored += b"".join(client.dump(key) or b"" for key in client.scan_iter("*"))
    assert b"Daniel" not in stored and b"August" not in stored
    client.flushdb()


def test_entries_expire(opened: Opener):
    cache = opened(ttl_days=0.5 / 86400)
    cache.put("q", "s", {"answer": "a"})
    assert cache.get("q", "s") is not None
    time.sleep(0.6)
    assert cache.get("q", "s") is None


def test_size_is_bounded(tmp_path: Path):
    cache = AnswerCache(tmp_path / "c", size_mb=1)
    for i in range(60):
        cache.put(f"question {i}", "s", {"answer": "x" * 50_000})
    assert cache.stats().size_bytes <= 1.2 * 2**20
    assert cache.get("question 59", "s") is not None


def test_unreadable_database_is_replaced(tmp_path: Path):
    folder = tmp_path / "c"
    AnswerCache(folder).put("q", "s", {"answer": "a"})
    (folder / "cache.db").write_bytes(b"garbage" * 1000)
    cache = AnswerCache(folder)
    assert cache.get("q", "s") is None
    cache.put("q", "s", {"answer": "b"})
    assert cache.get("q", "s").payload == {"answer": "b"}


def test_server_replicas_share_one_redis_and_survive_it_going_away(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with redis_server(tmp_path / "redis") as url:
        one, two = AnswerCache(tmp_path / "a", redis_url=url), AnswerCache(tmp_path / "b", redis_url=url)
        one.put("How often is oil needed?", "scope", {"answer": "Every 200 hours."}, unit(1, 0, 0))
        assert two.get("How often is oil needed?", "scope").payload == {"answer": "Every 200 hours."}
        assert two.get("How frequently is oil needed?", "scope", lambda: unit(1, 0.1, 0)).kind == "similar"
        assert one.stats().hits == 2 and one.stats().entries == 1
    # Redis is gone: a miss, a warning in the log (once), never a crash; answers are simply not cached.
    with caplog.at_level(logging.WARNING):
        assert two.get("How often is oil needed?", "scope") is None
        two.put("q", "scope", {"answer": "a"})
        assert two.stats().entries == 0
    assert two.breaker.is_open and two.breaker.opened == 1
    assert sum("did not answer" in r.getMessage() for r in caplog.records) == 1
    one.close()
    two.close()


def test_a_paused_redis_costs_the_questions_in_flight_one_timeout_then_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """The issue's case: Redis stopped (SIGSTOP) under several threads asking. The calls in flight wait
    one socket timeout together; every later one skips Redis at once; Redis back, the cache serves."""
    import redis

    threads, questions = 8, 10
    with redis_server(tmp_path / "redis") as url:
        pid = int(redis.Redis.from_url(url).info("server")["process_id"])
        cache = AnswerCache(tmp_path / "c", redis_url=url, redis_timeout=0.5, redis_retry_every=0.2)
        cache.put("How often is oil needed?", "scope", {"answer": "Every 200 hours."}, unit(1, 0, 0))
        breaker = cache.breaker
        assert breaker is not None and not breaker.is_open
        attempts = breaker.attempts
        times: list[list[float]] = [[] for _ in range(threads)]

        def asker(number: int) -> None:
            for i in range(questions):
                started = time.perf_counter()
                assert cache.get(f"question {number}-{i}?", "scope", lambda: unit(1, 0, 0)) is None
                cache.put(f"question {number}-{i}?", "scope", {"answer": "a"}, unit(0, 1, 0))
                times[number].append(time.perf_counter() - started)

        os.kill(pid, signal.SIGSTOP)
        try:
            with caplog.at_level(logging.WARNING):
                workers = [threading.Thread(target=asker, args=(n,)) for n in range(threads)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
            assert breaker.is_open and breaker.opened == 1
            # Only the calls already waiting when it opened reached Redis: a look-up (or a put) a thread.
            assert breaker.attempts - attempts <= threads
            assert breaker.skipped >= 2 * threads * questions - threads
            assert all(len(each) == questions for each in times)
            assert max(t for each in times for t in each[1:]) < 1.0  # generous: each skip takes microseconds
            assert max(each[0] for each in times) < 2 * 0.5 + 1.0  # one timeout, not one per question in turn
            assert sum("did not answer" in r.getMessage() for r in caplog.records) == 1
        finally:
            os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while breaker.is_open:  # the probe in the background finds Redis answering
            assert time.monotonic() < deadline, "the breaker did not close after Redis came back"
            time.sleep(0.05)
        assert cache.get("How often is oil needed?", "scope").payload == {"answer": "Every 200 hours."}
        assert breaker.opened == 1
        cache.clear()
        cache.close()


def test_an_error_from_a_redis_that_answers_does_not_open_the_breaker(redis_url: str):
    import redis

    cache = AnswerCache(Path("unused"), redis_url=redis_url)
    client = redis.Redis.from_url(redis_url)
    client.lpush("archivist:__misses__", "not a number")  # INCR on a list: Redis answers with an error
    assert cache.get("q", "scope") is None
    cache.put("q", "scope", {"answer": "a"})
    assert not cache.breaker.is_open and cache.breaker.opened == 0
    client.flushdb()
    cache.close()
