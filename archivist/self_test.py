"""``archivist --self-test``: check an installation without a display and report plainly.

Indexes the bundled samples into a throw-away folder, answers one question with the
starter model, checks the harmony vocabulary's hash and the model's load and unload, and
prints one line per check. Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path


def run(data_dir: Path | None = None, out=None) -> int:
    """Run every check; returns the exit status."""
    out = out or sys.stdout
    started = time.perf_counter()
    results: list[bool] = []
    state: dict = {}

    def check(name: str, fn: Callable[[], str]) -> None:
        t = time.perf_counter()
        try:
            detail = fn()
            results.append(True)
            print(f"PASS  {name}: {detail} ({time.perf_counter() - t:.1f}s)", file=out, flush=True)
        except Exception as exc:  # noqa: BLE001 - the report must name any failure and go on
            results.append(False)
            print(f"FAIL  {name}: {exc}", file=out, flush=True)
            traceback.print_exc(file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="archivist-self-test-") as tmp:
        folder = data_dir or Path(tmp)

        def vocabulary() -> str:
            from engine.harmony import encoding, verify_vocabulary

            digest = verify_vocabulary()
            encoding()
            return f"o200k_base sha256 {digest[:12]}…, harmony encoding loads offline"

        def knowledge_base() -> str:
            from engine import LlamaSettings, ProcessEngine
            from engine.catalog import STARTER_NAME, starter_model_path
            from rag.answering.answer_cache import AnswerCache
            from rag.embedding import Embedder
            from rag.knowledge_base import KnowledgeBase
            from rag.storage.vectors import VectorStore

            starter = starter_model_path()
            if starter is None:
                raise RuntimeError("the starter model is missing from this installation")
            # The model as the app runs it: llama.cpp in an engine process of its own.
            state["model"] = model = ProcessEngine(LlamaSettings(starter, context_size=4096, label=STARTER_NAME),
                                                   watch_thread=False)
            state["kb"] = KnowledgeBase(VectorStore.embedded(folder / "chroma"), Embedder(), folder / "keyword",
                                        model=state["model"], cache=AnswerCache(folder / "cache"))
            return f"store, embedder and {STARTER_NAME} set up; {model.facts().backends}"

        def ingest() -> str:
            from resources import resource_path

            report = state["kb"].ingest([resource_path("samples")], "Self-test")
            if report.failures or not report.count("indexed"):
                raise RuntimeError(f"samples not indexed: {[(f.path.name, f.reason) for f in report.failures]}")
            return f"{report.count('indexed')} sample documents, {report.chunks} chunks"

        def answer() -> str:
            from rag.answering.ask import AskOptions, collect_answer

            t = time.perf_counter()
            result = collect_answer(state["kb"].ask("How often does the pump need oil?", "Self-test",
                                                    AskOptions(answer_tokens=128)))
            if not result.answer.strip() or not result.sources:
                raise RuntimeError("empty answer")
            state["first_answer"] = time.perf_counter() - started
            return (f"{len(result.sources)} sources, {result.usage.completion} tokens in {time.perf_counter() - t:.1f}s; "
                    f"first answer {state['first_answer']:.1f}s after launch")

        def recognition() -> str:
            from PIL import Image, ImageDraw, ImageFont

            from rag.indexing.loaders import ocr

            image = Image.new("L", (1200, 200), 255)
            ImageDraw.Draw(image).text((40, 60), "Scanned invoice 2026", font=ImageFont.load_default(64), fill=0)
            read = " ".join(line.text for line in ocr.recognize(image))
            if "invoice 2026" not in read.lower():
                raise RuntimeError(f"read {read!r} from an image of 'Scanned invoice 2026'")
            return f"read {read!r} from a generated image"

        def unload() -> str:
            from engine import ModelState

            model = state["model"]
            if model.status().state is not ModelState.READY:
                raise RuntimeError(f"model state is {model.status().state.value} after answering")
            held = model.status().memory_bytes
            model.unload()
            if model.status().state is not ModelState.NOT_LOADED:
                raise RuntimeError("model still loaded after unload")
            return f"held {held / 2**20:.0f} MB while loaded, released on unload"

        for name, fn in (("vocabulary", vocabulary), ("knowledge base", knowledge_base), ("index samples", ingest),
                         ("answer a question", answer), ("model load and unload", unload), ("text recognition", recognition)):
            if len(results) and not results[-1] and name in ("index samples", "answer a question", "model load and unload"):
                print(f"SKIP  {name}: an earlier check failed", file=out)
                results.append(False)
                continue
            check(name, fn)
        if "kb" in state:
            state["kb"].close()  # the model's process too
        elif "model" in state:
            state["model"].close()
    ok = all(results)
    print(f"{'OK' if ok else 'FAILED'}: {sum(results)} of {len(results)} checks passed in {time.perf_counter() - started:.1f}s",
          file=out)
    return 0 if ok else 1
