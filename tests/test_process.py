"""The engine in its own process: same events, crashes contained, memory returned, Stop at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from engine import (
    AnswerDelta,
    CancelToken,
    ChatMessage,
    EngineCrashed,
    Failed,
    GenerationCancelled,
    GenerationRequest,
    LlamaSettings,
    Loading,
    ModelInvalid,
    ModelNotFound,
    ModelState,
    ProcessEngine,
    backends,
    collect,
    crash_log,
)

QUESTION = GenerationRequest("Answer briefly.", [ChatMessage("user", "Name three colours.")], max_tokens=48, seed=1)


@pytest.fixture
def engine(starter_model: Path, tmp_path: Path):
    clock = [0.0]
    model = ProcessEngine(LlamaSettings(starter_model, context_size=8192, idle_seconds=60, label="starter"),
                          log_dir=tmp_path / "logs", clock=lambda: clock[0], watch_thread=False)
    model.clock = clock  # type: ignore[attr-defined] - the test moves time forward
    yield model
    model.close()


def _kill(engine: ProcessEngine, how: signal.Signals, when: type) -> list[object]:
    """Ask, and send ``how`` to the engine process at the first event of type ``when``."""
    events = []
    for event in engine.stream(GenerationRequest("Answer at length.", [ChatMessage("user", "Tell a long story.")],
                                                 max_tokens=400)):
        events.append(event)
        if isinstance(event, when) and sum(isinstance(e, when) for e in events) == 1:
            os.kill(engine.pid, how)  # type: ignore[arg-type]
    return events


def test_answers_through_the_engine_process(engine: ProcessEngine):
    result = collect(engine.stream(QUESTION))
    assert result.failed is None and result.done is not None and result.done.text.strip()
    child = engine.pid
    assert child is not None and child != os.getpid()
    assert engine.status().state is ModelState.READY and engine.status().memory_bytes > 50 * 2**20
    described = engine.facts().backends  # "llama.cpp CPU variant zen4 (skipped sapphirerapids: …)"
    assert described.startswith("llama.cpp CPU variant ")
    assert described.split()[3] != "sapphirerapids"  # the AMX variant is never the one loaded
    if "amx_int8" in (backends.cpu_features() or ()):  # and on a CPU with AMX, the window's facts say why
        assert "skipped sapphirerapids: its AMX matrix path crashes" in described


@pytest.mark.parametrize("how", [signal.SIGSEGV, signal.SIGKILL])
@pytest.mark.parametrize("when", [Loading, AnswerDelta], ids=["loading", "answering"])
def test_a_crash_ends_one_answer_and_the_next_question_restarts_it(engine: ProcessEngine, how: signal.Signals,
                                                                   when: type, tmp_path: Path):
    if when is AnswerDelta:
        collect(engine.stream(QUESTION))
    crashed_pid = engine.pid
    events = _kill(engine, how, when)
    failed = events[-1]
    assert isinstance(failed, Failed) and isinstance(failed.error, EngineCrashed)
    assert f"signal {how.value}" in str(failed.error) and "restart for the next question" in str(failed.error)
    assert engine.status().state is ModelState.NOT_LOADED and engine.pid is None
    again = collect(engine.stream(QUESTION))
    assert again.done is not None and engine.pid not in (None, crashed_pid)
    if how is signal.SIGSEGV:  # faulthandler wrote the native crash's report
        reports = crash_log.collect(tmp_path / "logs")
        assert [p.name.split("-")[1] for p in reports] == ["engine"]
        assert "Segmentation fault" in reports[0].read_text()


def test_idle_unload_ends_the_process_and_the_next_question_starts_one(engine: ProcessEngine):
    collect(engine.stream(QUESTION))
    process = psutil.Process(engine.pid)  # type: ignore[arg-type]
    engine.clock[0] += 61  # type: ignore[attr-defined]
    assert engine.idle_timer.check()
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    status = engine.status()
    assert status.state is ModelState.UNLOADED_IDLE and status.memory_bytes == 0 and engine.pid is None
    assert collect(engine.stream(QUESTION)).done is not None


def test_low_memory_unloads_between_answers_and_says_why(starter_model: Path):
    available = [8 * 2**30]
    seen: list[ModelState] = []
    model = ProcessEngine(LlamaSettings(starter_model, context_size=4096), memory_floor=2**30,
                          available_memory=lambda: available[0], watch_thread=False)
    model.add_listener(lambda status: seen.append(status.state))
    try:
        collect(model.stream(QUESTION))
        assert not model.check_memory()  # plenty free: kept
        available[0] = 300 * 2**20
        assert model.check_memory()
        status = model.status()
        assert status.state is ModelState.UNLOADED_LOW_MEMORY and model.pid is None
        assert "available memory fell to 0.3 GiB (below 1.0 GiB)" in status.detail
        assert seen[-1] is ModelState.UNLOADED_LOW_MEMORY
    finally:
        model.close()


def test_stop_during_a_long_prompt_ends_within_a_second(engine: ProcessEngine):
    text = " ".join(f"Line {i}: the pump in hall {i % 7} was serviced on day {i}." for i in range(188))

    def request(tag: str, lines: str = text) -> GenerationRequest:  # a new first line: nothing cached is reused
        return GenerationRequest("Answer briefly.", [ChatMessage("user", f"{tag} {lines}\nWhich hall?")], max_tokens=16)

    tokens = engine.prompt_tokens(request("full"))
    assert 3800 <= tokens <= 4200, tokens
    # How long the whole prompt takes, from a tenth of it (reading slows as it grows: an underestimate).
    collect(engine.stream(request("warm", text[: len(text) // 10])))
    started = time.perf_counter()
    collect(engine.stream(request("tenth", text[: len(text) // 10])))
    whole = (time.perf_counter() - started) * 10
    assert whole > 3.0, f"the prompt takes only ~{whole:.1f}s: too short to tell a real Stop from waiting for it"
    for fraction in (0.1, 0.6):
        cancel = CancelToken()
        cancelled_at: list[float] = []

        def stop() -> None:
            cancelled_at.append(time.perf_counter())
            cancel.cancel()

        timer = threading.Timer(whole * fraction, stop)
        timer.start()
        result = collect(engine.stream(request(f"{fraction}"), cancel))
        ended = time.perf_counter()
        timer.join()
        assert result.failed is not None and isinstance(result.failed.error, GenerationCancelled), result
        assert ended - cancelled_at[0] < 1.0, f"Stop at {fraction:.0%} of the prompt took {ended - cancelled_at[0]:.2f}s"
    assert engine.pid is not None  # stopped by llama.cpp itself, not by ending the process


def test_a_missing_or_broken_model_is_refused_before_any_process(tmp_path: Path):
    with pytest.raises(ModelNotFound):
        ProcessEngine(LlamaSettings(tmp_path / "none.gguf"), watch_thread=False)
    (tmp_path / "bad.gguf").write_bytes(b"GGUF" + b"\0" * 10)
    with pytest.raises(ModelInvalid):
        ProcessEngine(LlamaSettings(tmp_path / "bad.gguf"), watch_thread=False)


def test_an_answer_left_unread_does_not_leak_into_the_next(engine: ProcessEngine):
    for event in engine.stream(GenerationRequest("Answer at length.", [ChatMessage("user", "Tell a long story.")],
                                                 max_tokens=300)):
        if isinstance(event, AnswerDelta):
            break  # the caller walks away in the middle
    pid = engine.pid
    result = collect(engine.stream(QUESTION))
    assert result.done is not None and result.done.usage.completion <= QUESTION.max_tokens
    assert engine.pid == pid  # stopped and drained, not restarted
