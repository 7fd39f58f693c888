"""The embedded engine with real llama.cpp: the starter model and the tiny gpt-oss."""

from __future__ import annotations

import re
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


_CLAIM = r"[^\[\]\n]+ \[[1-3]\](?:\[[1-3]\]){0,2}[.。]"


@pytest.mark.parametrize("model", ["starter", "tiny"])
def test_an_answer_under_the_citation_grammar_cites_in_every_sentence(model: str, request: pytest.FixtureRequest):
    """Every sentence ends with the id of a source, one of those given; gpt-oss reasons first."""
    from rag.answering.prompting import NOT_IN_SOURCES, cited_grammar

    engine: LlamaEngine = request.getfixturevalue(model)
    result = collect(engine.stream(ask("How often does the pump need oil?", grammar=cited_grammar([1, 2, 3]), max_tokens=120,
                                       seed=4, temperature=0.2)))
    assert result.failed is None, result.failed
    text = result.done.text
    if result.done.finish == "stop":
        assert text == NOT_IN_SOURCES or re.fullmatch(rf"{_CLAIM}(?: {_CLAIM})*", text), text
    else:  # cut at the limit: what it wrote so far is still one claim after another
        assert re.match(rf"(?:{_CLAIM} )*[^\[\]\n]*", text).end() == len(text.rstrip(" [0123]")), text
    if model == "tiny":
        assert result.done.usage.reasoning > 0


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


def test_gpu_offload_takes_what_the_free_gpu_memory_holds(tiny_gpt_oss: Path):
    import dataclasses

    from engine import gguf_info
    from engine.hardware import plan_gpu_layers

    tiny = gguf_info.read(tiny_gpt_oss)
    assert tiny.layers == 2 and tiny.layer_bytes > 0 and tiny.other_bytes > 2 * 201088 * 64  # embeddings and output
    per_layer = tiny.layer_bytes + tiny.kv_bytes_per_token("f16") * 4096 // tiny.layers
    reserve = 768 << 20
    assert plan_gpu_layers(tiny, None, 4096, "f16") == 0  # no GPU backend
    assert plan_gpu_layers(tiny, 80 << 30, 4096, "f16") == tiny.layers + 1  # all of it, output layer too
    assert plan_gpu_layers(tiny, reserve + tiny.other_bytes + per_layer + per_layer // 2, 4096, "f16") == 1
    assert plan_gpu_layers(tiny, reserve + tiny.other_bytes - 1, 4096, "f16") == 0
    # gpt-oss-20b's shape (24 layers, 8 KV heads of 64) on a stated 8 GiB card, 16k context:
    # each layer is 450 MiB of weights + 32 MiB of KV cache; 1.1 GiB outside the layers.
    big = dataclasses.replace(tiny, layers=24, kv_heads=8, key_length=64, value_length=64,
                              layer_bytes=450 << 20, other_bytes=int(1.1 * 2**30))
    assert big.kv_bytes_per_token("f16") * 16384 // 24 == 32 << 20
    assert plan_gpu_layers(big, 8 << 30, 16384, "f16") == (8192 - 768 - 1126) // (450 + 32) == 13
    assert plan_gpu_layers(big, 24 << 30, 16384, "f16") == 25


def test_a_lora_adapter_changes_the_answer_and_can_be_taken_off(tiny_gpt_oss: Path, tiny_adapter: Path, tmp_path: Path):
    from engine import check_adapter

    assert check_adapter(tiny_adapter).architecture == "gpt-oss"
    with pytest.raises(ModelInvalid, match="not a LoRA adapter"):
        check_adapter(tiny_gpt_oss)
    engine = LlamaEngine(LlamaSettings(tiny_gpt_oss, context_size=2048), idle_thread=False)
    ask = GenerationRequest("Answer.", [ChatMessage("user", "Say something.")], max_tokens=24, temperature=0.0, seed=3)

    def tokens(request: GenerationRequest) -> str:
        result = collect(engine.stream(request))
        assert result.done is not None, result.failed
        return result.done.reasoning + "|" + result.done.text

    try:
        plain = tokens(ask)
        adapted = tokens(dataclasses_replace(ask, adapter=tiny_adapter))
        assert adapted != plain
        assert tokens(ask) == plain  # taken off again: the base model's own answer
        missing = collect(engine.stream(dataclasses_replace(ask, adapter=tmp_path / "gone.gguf")))
        assert missing.failed is not None and "adapter file is missing" in str(missing.failed.error)
    finally:
        engine.close()


def dataclasses_replace(request: GenerationRequest, **changes: object) -> GenerationRequest:
    import dataclasses

    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def test_a_loop_is_told_from_text_that_merely_repeats_itself_now_and_then():
    from engine.interface import looping

    root = Path(__file__).resolve().parents[1]
    for document in (root / "README.md", root / "docs" / "deployment.md", root / "docs" / "architecture.md"):
        text = document.read_text(encoding="utf-8")  # tables, lists, code, a drawing
        assert not any(looping(text[:end]) for end in range(240, len(text), 16)), document.name
    for loop in ("5Lit5paH6K+t" * 40, "The pump needs oil. " * 20, "yes " * 80, "是的" * 150):
        assert looping(loop), loop[:20]


def test_a_runaway_answer_is_stopped_and_marked(starter_engine):
    # The grammar leaves the model no way out of "ab ab ab ...": without the guard it runs to its limit.
    request = GenerationRequest("Answer.", [ChatMessage("user", "Write.")], max_tokens=600, grammar='root ::= "ab " root')
    done = collect(starter_engine.stream(request)).done
    assert done is not None and done.finish == "repetition" and done.usage.completion < 200


def test_the_engine_says_how_far_it_has_read_a_long_prompt(starter_engine):
    from engine import Reading

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "deployment.md").read_text(encoding="utf-8")[:6000]
    request = GenerationRequest("Answer.", [ChatMessage("user", text + "\n\nWhat is this about?")], max_tokens=4)
    first = collect(starter_engine.stream(request))
    reads = [e for e in first.events if isinstance(e, Reading)]
    assert len(reads) >= 3 and reads[-1].done == reads[-1].total - 1 == first.done.usage.prompt - 1
    assert [r.done for r in reads] == sorted(r.done for r in reads) and reads[0].done == first.done.usage.cached
    again = collect(starter_engine.stream(request))  # the whole prompt is in the cache: nothing to read
    assert not [e for e in again.events if isinstance(e, Reading)] and again.done.usage.cached >= again.done.usage.prompt - 1
    short = collect(starter_engine.stream(GenerationRequest("Answer.", [ChatMessage("user", "Hi?")], max_tokens=4)))
    assert not [e for e in short.events if isinstance(e, Reading)]


def test_a_sliding_window_model_starts_from_the_instructions_it_read_before(tiny_gpt_oss: Path, tiny: LlamaEngine):
    """gpt-oss attends to a window of 128 tokens in half its layers. The instructions shared with
    the last question stay in the cache, and what follows reads as if the prompt were read whole."""
    instructions = "Answer from the sources.\n" + "\n".join(
        f"[{i}] The pump in hall {i} needs oil every {i * 10} hours." for i in range(1, 60))
    def question(word: str) -> GenerationRequest:
        asked = " ".join(f"{word} pump {i}?" for i in range(300))  # longer than the window and a batch
        return GenerationRequest(instructions, [ChatMessage("user", asked)], max_tokens=12, temperature=0, seed=3)

    collect(tiny.stream(question("Which")))
    again = collect(tiny.stream(question("Where"))).done
    fresh = LlamaEngine(LlamaSettings(tiny_gpt_oss, context_size=4096), idle_thread=False)
    try:
        whole = collect(fresh.stream(question("Where"))).done
    finally:
        fresh.close()
    shared = tiny.prompt_tokens(GenerationRequest(instructions, [ChatMessage("user", "")]))
    assert whole.usage.cached == 0 and shared - 8 < again.usage.cached < shared, (again.usage, shared)
    assert again.text == whole.text and again.usage.completion == whole.usage.completion
