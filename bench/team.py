"""Team mode under load: 20 askers at once against one Chroma server and one inference server.

Both servers run on loopback as a company would run them: `chroma run` for the vectors and
llama-cpp-python's OpenAI-compatible server for the answers (the starter model, so that it
fits this machine; on a GPU server vLLM takes its place). Each asker is a client of its own
(its own Chroma connection, its own engine client) sharing one embedding model, as threads.
For a bounded time every asker asks again as soon as it has its answer; then:

- no errors, no lost answers (every question asked ends in an answer or an error);
- p50/p95 latency and throughput, for search alone and for whole answers;
- the same with the embedded store (one process, one folder) for comparison.

    python bench/team.py [--seconds 60] [--askers 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))

from rag import offline  # noqa: E402

offline.enforce()

from corpus import paragraphs  # noqa: E402
from engine import RemoteEngine, backends  # noqa: E402
from engine.catalog import starter_model_path  # noqa: E402
from rag.ask import Answered, AskFailed, AskOptions  # noqa: E402
from rag.app.chroma_server import LocalChromaServer, _free_port  # noqa: E402
from rag.embedding import Embedder  # noqa: E402
from rag.knowledge_base import KnowledgeBase  # noqa: E402
from rag.store import VectorStore  # noqa: E402

QUESTIONS = [
    "How do I parse command line arguments?", "How can I compress a file with gzip?", "Is there a thread safe queue?",
    "How should a password be hashed?", "How do I read a CSV file with a custom delimiter?", "What is a named tuple?",
    "How can I schedule a function call for later?", "How do I pick a random sample without replacement?",
    "How do I create a temporary directory?", "How are dates formatted in UTC?",
]


def start_inference_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "starter",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192",
         "--interrupt_requests", "False"],  # queue concurrent questions instead of dropping the running one
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, **backends.load().environment()},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"the inference server did not start; see {log}")


def load(askers: int, seconds: float, work: Callable[[int, int], bool]) -> tuple[list[float], int, int, float]:
    """Run ``work(asker, round)`` in ``askers`` threads until ``seconds`` pass; each round
    that has begun is waited for. Returns latencies, errors, lost rounds and wall time."""
    latencies: list[float] = []
    errors = [0]
    started_rounds = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def asker(index: int) -> None:
        round_ = 0
        while time.monotonic() < deadline:
            with lock:
                started_rounds[0] += 1
            began = time.perf_counter()
            ok = work(index, round_)
            took = time.perf_counter() - began
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors[0] += 1
            round_ += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=asker, args=(i,)) for i in range(askers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    wall = time.perf_counter() - began
    lost = started_rounds[0] - len(latencies) - errors[0]
    return latencies, errors[0], lost, wall


def summary(label: str, result: tuple[list[float], int, int, float]) -> float:
    latencies, errors, lost, wall = result
    ordered = sorted(latencies) or [float("nan")]
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    rate = len(latencies) / wall
    print(f"  {label:34} {len(latencies):5} done  {errors} errors  {lost} lost   p50 {statistics.median(ordered) * 1000:8.1f} ms"
          f"   p95 {p95 * 1000:8.1f} ms   {rate:7.2f}/s", flush=True)
    return rate


def scenario(name: str, clients: list[KnowledgeBase], args: argparse.Namespace) -> tuple[float, float]:
    print(f"{name}:")

    def search(asker: int, round_: int) -> bool:
        try:
            return bool(clients[asker].search(QUESTIONS[(asker + round_) % len(QUESTIONS)], "Team", limit=8))
        except Exception as exc:  # noqa: BLE001 - counted and shown
            print("    search error:", exc)
            return False

    def ask(asker: int, round_: int) -> bool:
        question = QUESTIONS[(asker + round_) % len(QUESTIONS)]
        events = list(clients[asker].ask(question, "Team", AskOptions(answer_tokens=32, passages=4, use_cache=False)))
        if isinstance(events[-1], AskFailed):
            print("    ask error:", events[-1].error)
        return isinstance(events[-1], Answered) and bool(events[-1].result.answer.strip())

    searched = summary(f"search, {args.askers} at once", load(args.askers, args.seconds / 3, search))
    answered = summary(f"whole answers, {args.askers} at once", load(args.askers, args.seconds, ask))
    return searched, answered


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the answer load runs")
    parser.add_argument("--askers", type=int, default=20)
    args = parser.parse_args()
    model = starter_model_path()
    assert model is not None, "the starter model is missing; run make test"
    embedder = Embedder()
    texts = paragraphs()[:600]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        corpus.mkdir()
        for i in range(0, len(texts), 20):
            (corpus / f"doc{i // 20:03}.txt").write_text("\n\n".join(texts[i : i + 20]))
        port = _free_port()
        inference = start_inference_server(model, port, root / "inference.log")
        chroma = LocalChromaServer(root / "chroma-server")
        try:
            chroma.start()
            url = f"http://127.0.0.1:{port}/v1"

            def client(store: VectorStore, index: int) -> KnowledgeBase:
                return KnowledgeBase(store, embedder, root / f"keyword-{store.location[:4]}-{index}",
                                     model=RemoteEngine(url, "starter", timeout=900, context=8192))

            print(f"{len(texts)} paragraphs in {len(list(corpus.iterdir()))} files; {args.askers} askers; "
                  f"answers of at most 32 tokens from {model.name} on {os.cpu_count()} cores")
            server_clients = [client(VectorStore.server("127.0.0.1", chroma.port), i) for i in range(args.askers)]
            server_clients[0].ingest([corpus], "Team")
            remote = scenario("Chroma server + inference server", server_clients, args)

            embedded = VectorStore.embedded(root / "embedded")
            embedded_clients = [client(embedded, i) for i in range(args.askers)]
            embedded_clients[0].ingest([corpus], "Team")
            local = scenario("embedded store + inference server (baseline)", embedded_clients, args)
            print(f"server/embedded throughput: search {remote[0] / local[0]:.2f}x, answers {remote[1] / local[1]:.2f}x")
        finally:
            chroma.stop()
            inference.terminate()
            inference.wait(30)


if __name__ == "__main__":
    main()
