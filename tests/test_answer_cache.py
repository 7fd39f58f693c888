"""The answer cache on its own: keys, near matches with their guard, bounds, counts, damage."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rag.answer_cache import AnswerCache, compatible, normalise


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


def test_exact_and_similar_hits_within_a_scope(tmp_path: Path):
    cache = AnswerCache(tmp_path / "c", similar_threshold=0.9)
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


def test_entries_expire(tmp_path: Path):
    cache = AnswerCache(tmp_path / "c", ttl_days=0.5 / 86400)
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
