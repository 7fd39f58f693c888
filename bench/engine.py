"""Engine figures on one model and settings, each against a baseline from the same run.

1. Decode speed through the engine against raw llama-cpp-python generation of the same
   tokens (same model, context, sampler and seed). Target: ratio at least 0.95.
2. Time to first token of a follow-up sharing a 2,000-token prefix, against cold. Target:
   at least 5x faster.
3. Resident memory before load, loaded, and after idle unload. Target: back within 10%.
4. The same with both models Archivist holds: the language model and the embedding model,
   loaded together, then both unloaded by their idle timers.

    python bench/engine.py [--model PATH] [--gpu-layers N] [--tokens N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import ChatMessage, GenerationRequest, LlamaEngine, LlamaSettings, collect  # noqa: E402
from engine.catalog import starter_model_path  # noqa: E402
from engine.hardware import resident_memory  # noqa: E402

STORY = "Write a long, detailed story about a lighthouse keeper and a storm. Do not stop early."


def raw_decode_speed(engine: LlamaEngine, prompt: list[int], tokens: int, temperature: float, seed: int) -> tuple[float, int]:
    """Tokens/s of llama-cpp-python's own generate loop (same model, context, sampler), first token excluded."""
    from llama_cpp import Llama

    from engine.llama import sampling

    llm = Llama(str(engine.settings.model_path), n_ctx=engine.context_size, n_gpu_layers=engine._gpu_layers,
                n_threads=engine._threads, n_threads_batch=engine._threads, verbose=False)
    llm.set_seed(seed)
    count, first = 0, 0.0
    for _ in llm.generate(prompt, **sampling(engine.info.is_gpt_oss, temperature)):
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count >= tokens:
            break
    elapsed = time.perf_counter() - first
    llm.close()
    return (count - 1) / elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=starter_model_path())
    parser.add_argument("--gpu-layers", type=int, default=-1)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    now = [0.0]
    engine = LlamaEngine(
        LlamaSettings(args.model, context_size=args.context, gpu_layers=args.gpu_layers, idle_seconds=600),
        clock=lambda: now[0], idle_thread=False,
    )
    print(f"model: {args.model.name} ({engine.info.architecture}), context {engine.context_size}, "
          f"{engine.status().detail}")

    # 1. decode speed, engine vs raw, alternating runs so neither gets the warmer machine
    request = GenerationRequest("You are a storyteller.", [ChatMessage("user", STORY)], max_tokens=args.tokens,
                                temperature=0.7, seed=42)
    prompt = engine._format.render(request)
    ours, theirs = [], []
    for _ in range(args.repeat):
        engine.unload()
        done = collect(engine.stream(request)).done
        if done.usage.completion >= 2:
            ours.append(done.timings.tokens_per_second)
        rate, count = raw_decode_speed(engine, prompt, done.usage.completion, 0.7, 42)
        theirs.append(rate)
    print(f"decode tokens/s   engine {statistics.median(ours):8.1f}   raw llama-cpp-python {statistics.median(theirs):8.1f}"
          f"   ratio {statistics.median(ours) / statistics.median(theirs):.3f}  (target >= 0.95; median of {args.repeat}, "
          f"{done.usage.completion} tokens)")

    # 2. time to first token: cold 2,000-token prefix, then a follow-up sharing it
    sources = "Sources:\n" + "\n".join(
        f"[{i}] Maintenance note {i}: the pump in hall {i % 17} needs oil every {10 + i} hours and a new filter "
        f"after {200 + i} hours of running." for i in range(1, 400)
    )
    words = engine.count_tokens(sources)
    while words > 2000:
        sources = sources[: int(len(sources) * 2000 / words)]
        words = engine.count_tokens(sources)
    cold_times, warm_times = [], []
    for trial in range(args.repeat):
        engine.unload()
        question = f"Which pump needs oil most often? (run {trial})"
        cold = collect(engine.stream(GenerationRequest(sources, [ChatMessage("user", question)], max_tokens=4))).done
        warm = collect(engine.stream(GenerationRequest(sources, [ChatMessage("user", "And which needs a filter first?")],
                                                       max_tokens=4))).done
        cold_times.append(cold.timings.first_token)
        warm_times.append(warm.timings.first_token)
    cold_t, warm_t = statistics.median(cold_times), statistics.median(warm_times)
    print(f"first token, {cold.usage.prompt}-token prompt ({words} of shared sources): cold {cold_t * 1000:.0f} ms, "
          f"follow-up {warm_t * 1000:.0f} ms ({warm.usage.cached} cached)   speed-up {cold_t / warm_t:.1f}x  (target >= 5x)")

    # 3. memory: before load (code imported, tokenizer ready), loaded, after the idle timer unloads it
    engine.unload()
    hello = GenerationRequest("Hi", [ChatMessage("user", "Hello")], max_tokens=8)
    engine.prompt_tokens(hello)
    rss_before = resident_memory()
    collect(engine.stream(hello))
    rss_loaded = resident_memory()
    now[0] += 601
    engine.idle_timer.check()
    rss_after = resident_memory()
    print(f"resident memory   before load {rss_before / 2**20:7.0f} MiB   loaded {rss_loaded / 2**20:7.0f} MiB   "
          f"after idle unload {rss_after / 2**20:7.0f} MiB   ({(rss_after - rss_before) / rss_before:+.1%} against before; "
          f"target: at most +10%) state: {engine.status().state.value}")

    # 4. both models: the embedding model's weights idle out too
    from rag import offline
    from rag.embedding import Embedder

    offline.enforce()
    embedder = Embedder(idle_seconds=600, clock=lambda: now[0])
    embedder.token_offsets("warm the tokenizer")
    import sentence_transformers  # noqa: F401 - the code stays imported; only weights can go
    engine.unload()
    rss_before = resident_memory()
    embedder.embed(["the pump needs oil every 200 hours"] * 64)
    collect(engine.stream(hello))
    rss_loaded = resident_memory()
    weights = embedder.status().memory_bytes
    now[0] += 601
    engine.idle_timer.check()
    embedder.idle.check()
    rss_after = resident_memory()
    print(f"both models       before load {rss_before / 2**20:7.0f} MiB   loaded {rss_loaded / 2**20:7.0f} MiB   "
          f"after idle unload {rss_after / 2**20:7.0f} MiB   ({(rss_after - rss_before) / rss_before:+.1%} against before); "
          f"embedder weights {weights / 2**20:.0f} MiB, states: {engine.status().state.value}, "
          f"{embedder.status().state.value}")


if __name__ == "__main__":
    main()
