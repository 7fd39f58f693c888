"""Engine figures as the app runs it (llama.cpp in its engine process), each against a baseline of the same run.

1. Decode speed through the engine process against raw llama-cpp-python generating the
   same number of tokens in this process: same model, context, threads, batch, sampler and
   seed, each loaded alone. Target: ratio at least 0.95.
2. First token of a follow-up question in the app's own prompt layout, asked through
   ``KnowledgeBase.ask`` in a conversation, against the very same follow-up asked cold (the
   engine restarted). Target: at least 5x faster.
3. Stop while a 4,000-token prompt is read: seconds from Stop to the end of the answer, at
   several points of the prompt. Target: under 1 s.
4. Memory of the whole app (this process and its children) before the model loads, loaded,
   and after the idle timer ended the engine process. Target: back within 2% of before.
5. Which llama.cpp CPU variant runs.

    python bench/engine.py [--model PATH] [--gpu-layers N] [--tokens N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from engine import (  # noqa: E402
    AnswerDelta,
    CancelToken,
    ChatMessage,
    Done,
    GenerationRequest,
    LlamaSettings,
    ProcessEngine,
    ReasoningDelta,
    collect,
)
from engine.catalog import starter_model_path  # noqa: E402
from engine.hardware import cpu_threads  # noqa: E402

STORY = "Write a long, detailed story about a lighthouse keeper and a storm. Do not stop early."
NOTES = [
    ("pump.txt", "Pump P-100 in hall 3. The bearings need oil every 200 operating hours. Use only ISO VG 46 "
                 "hydraulic oil. The inlet filter is replaced every 1,000 hours or when the pressure drop exceeds "
                 "0.8 bar. Before any service, lock out the motor and close valve V-12."),
    ("compressor.txt", "Compressor C-7 in hall 5 runs at 8 bar. Drain the condensate daily. The air filter is "
                       "cleaned weekly and replaced every 2,000 hours. Oil: ISO VG 68 compressor oil, changed every "
                       "4,000 hours. A safety valve test is due every six months."),
    ("conveyor.txt", "Conveyor belt B-2 moves 40 crates a minute. Check belt tension monthly; the belt is replaced "
                     "after 15,000 hours. Rollers are greased every 500 hours with lithium grease. The emergency "
                     "stop cord must be tested at the start of every shift."),
]


def app_memory() -> int:
    """Resident memory of this process and every process under it."""
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def through_engine(engine: ProcessEngine, request: GenerationRequest) -> tuple[float, Done]:
    """Tokens/s as the caller receives them (first token excluded), and the final event."""
    first = 0.0
    done = None
    for event in engine.stream(request):
        if isinstance(event, AnswerDelta | ReasoningDelta) and not first:
            first = time.perf_counter()
        elif isinstance(event, Done):
            done = event
    assert done is not None, "the engine failed"
    return max(0, done.usage.completion - 1) / (time.perf_counter() - first), done


def raw_decode_speed(settings: LlamaSettings, context: int, prompt: list[int], tokens: int, harmony: bool,
                     seed: int) -> float:
    """Tokens/s of llama-cpp-python's own generate loop in this process, first token excluded."""
    from engine import backends
    from engine.decoding import sampling

    backends.load()
    from llama_cpp import Llama

    llm = Llama(str(settings.model_path), n_ctx=context, n_gpu_layers=max(0, settings.gpu_layers),
                n_threads=cpu_threads(), n_threads_batch=cpu_threads(), verbose=False)
    llm.set_seed(seed)
    count, first = 0, 0.0
    for _ in llm.generate(prompt, **sampling(harmony, 0.7)):
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count >= tokens:
            break
    elapsed = time.perf_counter() - first
    llm.close()
    return (count - 1) / elapsed


def decode(args: argparse.Namespace, settings: LlamaSettings) -> None:
    ours, theirs = [], []
    request = GenerationRequest("You are a storyteller.", [ChatMessage("user", STORY)], max_tokens=args.tokens,
                                temperature=0.7, seed=42)
    from engine import LlamaEngine

    prompt = LlamaEngine(settings, idle_thread=False).render(request)  # the same prompt ids (no weights loaded)
    for trial in range(args.repeat):  # each loaded alone; the order alternates so that neither gets the calmer machine
        for side in ("engine", "raw") if trial % 2 == 0 else ("raw", "engine"):
            if side == "engine":
                engine = ProcessEngine(settings, watch_thread=False)
                rate, done = through_engine(engine, request)
                context, harmony_model, tokens = engine.context_size, engine.info.is_gpt_oss, done.usage.completion
                engine.close()
                ours.append(rate)
            else:
                theirs.append(raw_decode_speed(settings, args.context, prompt, args.tokens, False, 42))  # same count, same seed
    assert context == args.context and not harmony_model, (context, harmony_model)
    print(f"decode tokens/s   engine process {statistics.median(ours):7.1f}   raw llama-cpp-python "
          f"{statistics.median(theirs):7.1f}   ratio {statistics.median(ours) / statistics.median(theirs):.3f}  "
          f"(target >= 0.95; median of {args.repeat} alternating runs of {tokens} tokens, {cpu_threads()} threads; "
          f"engine {min(ours):.0f}-{max(ours):.0f}, raw {min(theirs):.0f}-{max(theirs):.0f})")


def follow_up(args: argparse.Namespace, settings: LlamaSettings) -> None:
    from rag import offline
    from rag.answering.ask import Answered, AskOptions
    from rag.embedding import Embedder
    from rag.knowledge_base import KnowledgeBase
    from rag.storage.vectors import VectorStore

    offline.enforce()
    warm_times, cold_times, prompts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, text in NOTES:
            (folder / "docs").mkdir(exist_ok=True)
            (folder / "docs" / name).write_text((text + "\n\n") * 6)
        engine = ProcessEngine(settings, watch_thread=False)
        kb = KnowledgeBase(VectorStore.embedded(folder / "chroma"), Embedder(), folder / "keyword", model=engine)
        kb.ingest([folder / "docs"], "Bench")

        def ask(question: str, conversation: str) -> Answered:
            events = list(kb.ask(question, "Bench", AskOptions(conversation=conversation, answer_tokens=96, use_cache=False)))
            assert isinstance(events[-1], Answered), events[-1]
            return events[-1]

        collection = kb._find("Bench").id
        for trial in range(args.repeat):
            warm = kb.new_conversation("Bench")
            ask(f"How often do the pump's bearings need oil? ({trial})", warm.id)
            second = ask("And which oil?", warm.id).result
            # The same follow-up, cold: a copy of the first turn, and the engine process restarted.
            cold = kb.new_conversation("Bench")
            kb.conversations.append(collection, cold.id, kb.conversations.get(collection, warm.id).turns[0])
            engine.unload()
            again = ask("And which oil?", cold.id).result
            assert again.usage.prompt == second.usage.prompt, (again.usage, second.usage)
            warm_times.append(second.timings.first_token)
            cold_times.append(again.timings.first_token)
            prompts.append((second.usage.prompt, second.usage.cached))
        engine.close()
    warm_t, cold_t = statistics.median(warm_times), statistics.median(cold_times)
    prompt, cached = prompts[len(prompts) // 2]
    print(f"follow-up first token through KnowledgeBase.ask, {prompt}-token prompt ({cached} reused): "
          f"cold {cold_t * 1000:.0f} ms, follow-up {warm_t * 1000:.0f} ms   speed-up {cold_t / warm_t:.1f}x  (target >= 5x)")


def stop_latency(settings: LlamaSettings) -> None:
    engine = ProcessEngine(settings, watch_thread=False)
    text = " ".join(f"Line {i}: the pump in hall {i % 7} was serviced on day {i}." for i in range(188))

    def request(tag: str) -> GenerationRequest:
        return GenerationRequest("Answer briefly.", [ChatMessage("user", f"{tag} {text}\nWhich hall?")], max_tokens=16)

    tokens = engine.prompt_tokens(request("full"))
    collect(engine.stream(GenerationRequest("Hi", [ChatMessage("user", "Hello")], max_tokens=4)))
    started = time.perf_counter()
    collect(engine.stream(request("full")))
    full = time.perf_counter() - started
    latencies = []
    for fraction in (0.05, 0.25, 0.5, 0.75, 0.9):
        cancel = CancelToken()
        at: list[float] = []
        timer = threading.Timer(full * fraction, lambda: (at.append(time.perf_counter()), cancel.cancel()))
        timer.start()
        collect(engine.stream(request(f"{fraction}"), cancel))
        latencies.append(time.perf_counter() - at[0])
        timer.join()
    engine.close()
    print(f"Stop during a {tokens}-token prompt ({full:.1f} s to read and answer): "
          + ", ".join(f"{f:.0%} in: {t * 1000:.0f} ms" for f, t in zip((0.05, 0.25, 0.5, 0.75, 0.9), latencies))
          + f"   worst {max(latencies) * 1000:.0f} ms  (target < 1000 ms)")


def memory(settings: LlamaSettings) -> None:
    now = [0.0]
    engine = ProcessEngine(settings, clock=lambda: now[0], watch_thread=False)
    hello = GenerationRequest("Hi", [ChatMessage("user", "Hello")], max_tokens=8)

    def cycle() -> tuple[int, int, int]:
        before = app_memory()
        collect(engine.stream(hello))
        loaded = app_memory()
        now[0] += settings.idle_seconds + 1
        engine.idle_timer.check()
        time.sleep(0.5)
        return before, loaded, app_memory()

    first = cycle()  # the first answer also imports, once, what this process needs to talk to the engine
    before, loaded, after = cycle()
    print(f"app memory        before load {before / 2**20:7.0f} MiB   loaded {loaded / 2**20:7.0f} MiB   after idle "
          f"unload {after / 2**20:7.0f} MiB   ({(after - before) / before:+.1%} against before; target within 2%) "
          f"state: {engine.status().state.value}; the first cycle: {first[0] / 2**20:.0f} -> {first[2] / 2**20:.0f} MiB")
    print(f"backends          {engine.facts().backends}")
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=starter_model_path())
    parser.add_argument("--gpu-layers", type=int, default=-1)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    settings = LlamaSettings(args.model, context_size=args.context, gpu_layers=args.gpu_layers, idle_seconds=600)
    print(f"model: {args.model.name}, context {args.context}, {os.cpu_count()} CPUs")
    memory(settings)  # first: nothing else loaded in this process yet
    decode(args, settings)
    follow_up(args, settings)
    stop_latency(settings)


if __name__ == "__main__":
    main()
