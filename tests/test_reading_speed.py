"""The prompt is sized to the machine: sources fit what the model reads before the first word is due."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from samples import PROSE

from engine import Timings, Usage
from rag.answering.ask import AskOptions, Retrieved
from rag.answering.reading_speed import FLOOR, READ_SHARE, UNMEASURED, ReadingSpeeds
from rag.knowledge_base import KnowledgeBase


def test_the_budget_is_what_the_model_reads_in_the_time_less_what_its_cache_does_not_hold(tmp_path: Path):
    speeds = ReadingSpeeds(tmp_path / "speeds.json")
    # The prompt without sources: 300 tokens of instructions, then a question of 20.
    first = speeds.budget("m", 5.0, fixed_tokens=320)
    assert not first.measured and first.tokens == max(FLOOR, int(UNMEASURED * 5 * READ_SHARE) - 300 - 20)
    # 1,000 tokens read in 4 s, 300 of them held by the model's cache from the last prompt: 175 tokens/s.
    speeds.learn("m", Usage(prompt=1_000, cached=300), Timings(first_token=4.0))
    after = speeds.budget("m", 5.0, fixed_tokens=320)
    assert after.measured and after.speed == 175.0 and after.tokens == int(875 * READ_SHARE) - 0 - 20  # prefix cached
    assert speeds.budget("m", 60.0, 320).tokens == int(175 * 60 * READ_SHARE) - 20  # a long wait: more sources
    assert speeds.budget("m", 0.5, 320).tokens == FLOOR  # never fewer than the best sources


def test_the_pace_is_kept_follows_the_machine_and_survives_a_damaged_file(tmp_path: Path):
    path = tmp_path / "speeds.json"
    speeds = ReadingSpeeds(path)
    speeds.learn("m", Usage(prompt=1_000), Timings(first_token=10.0))  # 100 tokens/s
    speeds.learn("m", Usage(prompt=1_000), Timings(first_token=5.0))  # now 200: halfway there
    speeds.learn("m", Usage(prompt=1_000, cached=990), Timings(first_token=0.01))  # too little read to time
    assert ReadingSpeeds(path).speed("m") == 150.0
    path.write_text("{not json")
    assert ReadingSpeeds(path).speed("m") is None  # measured again, nothing fails
    path.write_text(json.dumps({"m": "fast"}))
    assert ReadingSpeeds(path).speed("m") is None


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """The eval corpus's sixty short documents (an imaginary town), and one that answers."""
    root = tmp_path / "docs"
    root.mkdir()
    corpus = json.loads((Path(__file__).resolve().parents[1] / "bench" / "eval" / "en.json").read_text(encoding="utf-8"))
    for key, text in corpus["documents"].items():
        (root / f"{key}.txt").write_text(text, encoding="utf-8")
    (root / "pump.txt").write_text("The pump in hall 3 needs oil every 200 hours. " + PROSE[0] + "\n")
    return root


def test_a_tight_time_sends_fewer_sources_and_says_why(asking_kb: KnowledgeBase, docs: Path):
    asking_kb.ingest([docs], "Docs")
    question = "How often does the pump need oil?"

    def retrieved(**options: object) -> Retrieved:
        events = list(asking_kb.ask(question, "Docs", AskOptions(use_cache=False, answer_tokens=16, **options)))
        return next(e for e in events if isinstance(e, Retrieved))

    whole = retrieved(starts_within=0.0)  # the context window alone bounds the sources
    assert whole.speed == 0.0 and len(whole.sources) == whole.found
    assert asking_kb.speeds.speed("starter") is not None  # learnt from that answer
    asking_kb.speeds._speeds["starter"] = 40.0  # a model that reads slowly here: 0.5 s is 20 tokens
    tight = retrieved(starts_within=0.5)
    assert tight.speed == 40.0 and tight.starts_within == 0.5
    assert 1 <= len(tight.sources) < whole.found and tight.found == whole.found
    assert tight.sources[0].chunk_ids == whole.sources[0].chunk_ids  # the best source comes first either way
