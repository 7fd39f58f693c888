"""Harmony rendering and parsing: offline vocabulary, the golden prompt, llama.cpp agreeing on tokens."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from engine import harmony
from engine.interface import AnswerDelta, ChatMessage, GenerationRequest, ReasoningDelta

GOLDEN = Path(__file__).parent / "golden" / "harmony_prompt.txt"

REQUEST = GenerationRequest(
    instructions="Answer only from the sources.",
    messages=[
        ChatMessage("user", "What does the pump need?"),
        ChatMessage("assistant", "Oil every 200 hours [1]."),
        ChatMessage("user", "And the filter? 中文也可以。"),
    ],
    reasoning_effort="medium",
)


def test_vocabulary_hash_is_checked(tmp_path: Path):
    assert harmony.verify_vocabulary() == harmony.VOCAB_SHA256
    broken = tmp_path / "vocab"
    shutil.copytree(harmony.vocabulary_dir(), broken)
    with (broken / harmony.VOCAB_FILE).open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(harmony.VocabularyError, match="expected 446a95"):
        harmony.verify_vocabulary(broken)


def test_prompt_matches_golden_file():
    tokens = harmony.render(REQUEST, today=dt.date(2026, 11, 22))
    text = harmony.encoding().decode(tokens)
    assert text == GOLDEN.read_text(encoding="utf-8")
    assert text.endswith("<|start|>assistant")
    assert "Reasoning: medium" in text and "Current date: 2026-11-22" in text


def test_structured_request_offers_the_response_format():
    request = GenerationRequest("Extract.", [ChatMessage("user", "x")], schema={"type": "object"}, schema_name="facts")
    text = harmony.encoding().decode(harmony.render(request))
    assert "# Response Formats\n\n## facts\n\n{\"type\":\"object\"}" in text


def test_llama_cpp_tokenizes_like_harmony(tiny_gpt_oss: Path):
    from llama_cpp import Llama

    vocab = Llama(str(tiny_gpt_oss), vocab_only=True, verbose=False)
    tokens = harmony.render(REQUEST)
    text = harmony.encoding().decode(tokens)
    assert vocab.tokenize(text.encode(), add_bos=False, special=True) == tokens
    for word in ["naïve café", "数据库检索", "  indented\n\tcode()", "🎉 emoji"]:
        assert vocab.tokenize(word.encode(), add_bos=False, special=False) == harmony.encode(word)
    assert vocab.n_vocab() == 201088


def test_channels_are_told_apart(tiny_gpt_oss: Path):
    from llama_cpp import Llama

    from engine.decoding import Generation

    completion = (
        "<|channel|>analysis<|message|>The user asks about filters.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Replace it yearly [2].<|return|>"
    )
    tokens = harmony.encode(completion)
    run = Generation(Llama(str(tiny_gpt_oss), vocab_only=True, verbose=False), frozenset(), REQUEST, None, 0.0)  # type: ignore[arg-type]
    events = list(run.sort_channels(tokens[:-1]))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert reasoning == "The user asks about filters."
    assert answer == "Replace it yearly [2]."
    first_answer = next(i for i, e in enumerate(events) if isinstance(e, AnswerDelta))
    assert all(isinstance(e, ReasoningDelta) for e in events[:first_answer])
