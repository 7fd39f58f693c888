"""The embedded engine with real llama.cpp: the starter model and the tiny gpt-oss."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine import (
    AnswerDelta,
    CancelToken,
    ChatMessage,
    ContextTooLong,
    Done,
    Failed,
    GenerationCancelled,
    GenerationRequest,
    LlamaEngine,
    LlamaSettings,
    Loading,
    ModelInvalid,
    ModelNotFound,
    ModelState,
    ModelTooLarge,
    ReasoningDelta,
    SchemaInvalid,
    collect,
)

SCHEMAS = {
    "nested": {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
            "active": {"type": "boolean"},
        },
        "required": ["person", "active"],
        "additionalProperties": False,
    },
    "array": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 3}},
        "required": ["tags"],
        "additionalProperties": False,
    },
    "numbers": {
        "type": "object",
        "properties": {"revenue": {"type": "number"}, "margin": {"type": ["number", "null"]}, "quarter": {"enum": ["Q1", "Q2", "Q3", "Q4"]}},
        "required": ["revenue", "margin", "quarter"],
        "additionalProperties": False,
    },
}


def ask(text: str, **kw) -> GenerationRequest:
    return GenerationRequest("You are a helpful assistant. Answer in one short sentence.", [ChatMessage("user", text)], **kw)


@pytest.fixture
def starter(starter_model: Path):
    engine = LlamaEngine(LlamaSettings(starter_model, context_size=4096), idle_thread=False)
    yield engine
    engine.close()


@pytest.fixture
def tiny(tiny_gpt_oss: Path):
    engine = LlamaEngine(LlamaSettings(tiny_gpt_oss, context_size=4096), idle_thread=False)
    yield engine
    engine.close()


def test_starter_streams_real_text_in_order(starter: LlamaEngine):
    result = collect(starter.stream(ask("What is the capital of France?", max_tokens=48, seed=7)))
    assert result.failed is None
    kinds = [type(e) for e in result.events]
    assert kinds[0] is Loading and kinds[-1] is Done
    assert set(kinds[1:-1]) == {AnswerDelta}
    done = result.done
    assert done.text == "".join(result.answer) and len(done.text.split()) >= 2
    assert done.usage.prompt == starter.prompt_tokens(ask("What is the capital of France?")) > 10
    assert 0 < done.usage.completion <= 48
    assert done.timings.load > 0 and done.timings.first_token > 0 and done.timings.tokens_per_second > 0
    again = collect(starter.stream(ask("And of Italy?", max_tokens=8)))
    assert not any(isinstance(e, Loading) for e in again.events)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_starter_structured_output_validates(starter: LlamaEngine, name: str):
    schema = SCHEMAS[name]
    result = collect(starter.stream(ask("Alice is 31, active, likes red; revenue 2.5M in Q3.", schema=schema, max_tokens=200, seed=1)))
    assert result.failed is None, result.failed
    import jsonschema

    jsonschema.validate(result.done.data, schema)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_gpt_oss_reasons_then_answers_in_json(tiny: LlamaEngine, name: str):
    schema = SCHEMAS[name]
    result = collect(tiny.stream(ask("Extract.", schema=schema, max_tokens=400, seed=3, reasoning_effort="low")))
    assert result.failed is None, result.failed
    import jsonschema

    jsonschema.validate(result.done.data, schema)
    assert result.done.usage.reasoning > 0 and result.reasoning
    last_reasoning = max(i for i, e in enumerate(result.events) if isinstance(e, ReasoningDelta))
    first_answer = min(i for i, e in enumerate(result.events) if isinstance(e, AnswerDelta))
    assert last_reasoning < first_answer
    assert result.done.finish == "stop"  # the grammar closed the JSON and an end-of-generation token ended it


def test_gpt_oss_free_generation_respects_the_budget(tiny: LlamaEngine):
    result = collect(tiny.stream(ask("Hello", max_tokens=24, seed=5)))
    assert result.failed is None
    assert result.done.usage.completion <= 24


def test_cancel_from_another_thread_stops_within_two_tokens(tiny: LlamaEngine):
    cancel = CancelToken()
    seen: list[object] = []
    tokens_at_cancel: list[int] = []

    def consume() -> None:
        for event in tiny.stream(ask("Write a very long story.", schema=SCHEMAS["nested"], max_tokens=2000, seed=9), cancel):
            seen.append(event)
            if isinstance(event, ReasoningDelta) and not tokens_at_cancel:
                tokens_at_cancel.append(sum(isinstance(e, ReasoningDelta) for e in seen))
                cancel.cancel()

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert isinstance(seen[-1], Failed) and isinstance(seen[-1].error, GenerationCancelled)
    deltas = sum(isinstance(e, ReasoningDelta) for e in seen)
    assert deltas - tokens_at_cancel[0] <= 2


def test_prompt_too_long_fails_before_any_work(starter_model: Path):
    engine = LlamaEngine(LlamaSettings(starter_model, context_size=2048), idle_thread=False)
    result = collect(engine.stream(ask("word " * 3000, max_tokens=16)))
    assert isinstance(result.failed.error, ContextTooLong)
    assert result.failed.error.limit == 2048 and result.failed.error.tokens > 3000
    assert engine.status().state is ModelState.NOT_LOADED
    assert not any(isinstance(e, Loading) for e in result.events)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}, "'minimum'"),
        ({"type": "object", "properties": {"n": {"type": "strange"}}}, "is not valid under any of the given schemas"),
        ({"type": "string"}, "top level must be an object or an array"),
        ({"type": "object", "properties": {"d": {"type": "string", "format": "email"}}}, "format 'email'"),
    ],
)
def test_bad_schemas_fail_before_generation(starter: LlamaEngine, schema: dict, message: str):
    result = collect(starter.stream(ask("x", schema=schema)))
    assert isinstance(result.failed.error, SchemaInvalid)
    assert message in str(result.failed.error)
    assert starter.status().state is ModelState.NOT_LOADED


def test_follow_up_reuses_the_shared_prefix(starter: LlamaEngine):
    sources = "Sources:\n" + "\n".join(f"[{i}] The pump in hall {i} needs oil every {i * 10} hours." for i in range(1, 40))
    first = GenerationRequest(sources, [ChatMessage("user", "Which pump needs oil most often?")], max_tokens=8)
    follow = GenerationRequest(sources, [ChatMessage("user", "Which pump needs oil least often?")], max_tokens=8)
    one = collect(starter.stream(first)).done
    two = collect(starter.stream(follow)).done
    assert one.usage.cached == 0
    assert two.usage.cached >= one.usage.prompt - 20
    assert two.timings.first_token < one.timings.first_token


def test_idle_unload_frees_memory_and_reloads(starter_model: Path):
    from engine.hardware import resident_memory

    now = [0.0]
    engine = LlamaEngine(LlamaSettings(starter_model, context_size=4096, idle_seconds=600), clock=lambda: now[0], idle_thread=False)
    states: list[ModelState] = []
    engine.add_listener(lambda status: states.append(status.state))
    before = resident_memory()
    collect(engine.stream(ask("Hi", max_tokens=8)))
    loaded = resident_memory()
    assert engine.status().state is ModelState.READY and engine.status().memory_bytes > 50 * 2**20
    now[0] += 599
    assert not engine.idle_timer.check()
    now[0] += 2
    assert engine.idle_timer.check()
    after = resident_memory()
    assert engine.status().state is ModelState.UNLOADED_IDLE and engine.status().memory_bytes == 0
    assert loaded - before > 50 * 2**20, f"loading added only {(loaded - before) >> 20} MiB"
    assert after - before < 0.1 * (loaded - before) + 16 * 2**20, f"after unload {(after - before) >> 20} MiB still held"
    result = collect(engine.stream(ask("Hi again", max_tokens=8)))
    assert isinstance(result.events[0], Loading) and result.done is not None
    assert states[:4] == [ModelState.LOADING, ModelState.READY, ModelState.GENERATING, ModelState.READY]
    assert ModelState.UNLOADED_IDLE in states
    engine.close()


def test_never_unloads_during_generation(starter_model: Path):
    now = [0.0]
    engine = LlamaEngine(LlamaSettings(starter_model, context_size=4096, idle_seconds=1), clock=lambda: now[0], idle_thread=False)
    fired = []
    for event in engine.stream(ask("Count to ten.", max_tokens=16)):
        if isinstance(event, AnswerDelta):
            now[0] += 100
            fired.append(engine.idle_timer.check())
    assert fired and not any(fired)
    assert engine.status().state is ModelState.READY
    engine.unload()
    assert engine.status().state is ModelState.NOT_LOADED
    engine.close()


def test_bad_model_files(tmp_path: Path, starter_model: Path):
    with pytest.raises(ModelNotFound):
        LlamaEngine(LlamaSettings(tmp_path / "missing.gguf"), idle_thread=False)
    text = tmp_path / "notes.gguf"
    text.write_text("these are not weights")
    with pytest.raises(ModelInvalid, match="not a GGUF"):
        LlamaEngine(LlamaSettings(text), idle_thread=False)
    truncated = tmp_path / "half.gguf"
    with starter_model.open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(starter_model.stat().st_size // 2))
    with pytest.raises(ModelInvalid, match="truncated"):
        LlamaEngine(LlamaSettings(truncated), idle_thread=False)
    with pytest.raises(ModelInvalid, match="does not know the model architecture 'frobnicator'"):
        LlamaEngine(LlamaSettings(_header_only_gguf(tmp_path / "odd.gguf", "frobnicator")), idle_thread=False)


def test_model_larger_than_memory_is_refused(tmp_path: Path):
    path = _header_only_gguf(tmp_path / "giant.gguf", "llama", layers=4000, kv_heads=64, head=256, context=10_000_000)
    engine = LlamaEngine(LlamaSettings(path, context_size=1_000_000), idle_thread=False)
    result = collect(engine.stream(ask("hi", max_tokens=4)))
    assert isinstance(result.failed.error, ModelTooLarge)
    assert "GiB" in str(result.failed.error)


def _header_only_gguf(path: Path, arch: str, layers: int = 2, kv_heads: int = 2, head: int = 16, context: int = 4096) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(layers)
    writer.add_context_length(context)
    writer.add_embedding_length(kv_heads * head)
    writer.add_head_count(kv_heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head)
    writer.add_value_length(head)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
