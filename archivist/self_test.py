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
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from engine import ProcessEngine
    from rag.knowledge_base import KnowledgeBase


def run(data_dir: Path | None = None, out: TextIO | None = None) -> int:
    """Run every check; returns the exit status."""
    with tempfile.TemporaryDirectory(prefix="archivist-self-test-") as tmp:
        return _SelfTest(data_dir or Path(tmp), out or sys.stdout).run()


class _SelfTest:
    """The checks, in order, each a method returning its line's detail or raising what failed."""

    def __init__(self, folder: Path, out: TextIO) -> None:
        self.folder, self.out = folder, out
        self.started = time.perf_counter()
        self.results: list[bool] = []
        self.model: ProcessEngine | None = None
        self.kb: KnowledgeBase | None = None

    def run(self) -> int:
        # A check that needs what an earlier one failed to set up is skipped, not failed twice.
        needs_the_last = ("index samples", "answer a question", "model load and unload")
        for name, check in (("vocabulary", self.vocabulary), ("knowledge base", self.knowledge_base),
                            ("index samples", self.ingest), ("answer a question", self.answer),
                            ("model load and unload", self.unload), ("text recognition", self.recognition)):
            if self.results and not self.results[-1] and name in needs_the_last:
                print(f"SKIP  {name}: an earlier check failed", file=self.out)
                self.results.append(False)
                continue
            self.check(name, check)
        if self.kb is not None:
            self.kb.close()  # the model's process too
        elif self.model is not None:
            self.model.close()
        ok = all(self.results)
        print(f"{'OK' if ok else 'FAILED'}: {sum(self.results)} of {len(self.results)} checks passed in "
              f"{time.perf_counter() - self.started:.1f}s", file=self.out)
        return 0 if ok else 1

    def check(self, name: str, fn: Callable[[], str]) -> None:
        t = time.perf_counter()
        try:
            detail = fn()
            self.results.append(True)
            print(f"PASS  {name}: {detail} ({time.perf_counter() - t:.1f}s)", file=self.out, flush=True)
        except Exception as exc:  # noqa: BLE001 - the report must name any failure and go on
            self.results.append(False)
            print(f"FAIL  {name}: {exc}", file=self.out, flush=True)
            traceback.print_exc(file=sys.stderr)

    def vocabulary(self) -> str:
        from engine.harmony import encoding, verify_vocabulary

        digest = verify_vocabulary()
        encoding()
        return f"o200k_base sha256 {digest[:12]}…, harmony encoding loads offline"

    def knowledge_base(self) -> str:
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
        self.model = ProcessEngine(LlamaSettings(starter, context_size=4096, label=STARTER_NAME, stand_in=True),
                                   watch_thread=False)
        self.kb = KnowledgeBase(VectorStore.embedded(self.folder / "chroma"), Embedder(), self.folder / "keyword",
                                model=self.model, cache=AnswerCache(self.folder / "cache"))
        return f"store, embedder and {STARTER_NAME} set up; {self.model.facts().backends}"

    def ingest(self) -> str:
        from resources import resource_path

        assert self.kb is not None
        report = self.kb.ingest([resource_path("samples")], "Self-test")
        if report.failures or not report.count("indexed"):
            raise RuntimeError(f"samples not indexed: {[(f.path.name, f.reason) for f in report.failures]}")
        return f"{report.count('indexed')} sample documents, {report.chunks} chunks"

    def answer(self) -> str:
        from rag.answering.ask import AskOptions, collect_answer

        assert self.kb is not None
        t = time.perf_counter()
        result = collect_answer(self.kb.ask("How often does the pump need oil?", "Self-test", AskOptions(answer_tokens=128)))
        if not result.answer.strip() or not result.sources:
            raise RuntimeError("empty answer")
        first_answer = time.perf_counter() - self.started
        return (f"{len(result.sources)} sources, {result.usage.completion} tokens in {time.perf_counter() - t:.1f}s; "
                f"first answer {first_answer:.1f}s after launch")

    def unload(self) -> str:
        from engine import ModelState

        assert self.model is not None
        if self.model.status().state is not ModelState.READY:
            raise RuntimeError(f"model state is {self.model.status().state.value} after answering")
        held = self.model.status().memory_bytes
        self.model.unload()
        if self.model.status().state is not ModelState.NOT_LOADED:
            raise RuntimeError("model still loaded after unload")
        return f"held {held / 2**20:.0f} MB while loaded, released on unload"

    def recognition(self) -> str:
        from PIL import Image, ImageDraw, ImageFont

        from rag.indexing.loaders import ocr

        image = Image.new("L", (1200, 200), 255)
        ImageDraw.Draw(image).text((40, 60), "Scanned invoice 2026", font=ImageFont.load_default(64), fill=0)
        read = " ".join(line.text for line in ocr.recognize(image))
        if "invoice 2026" not in read.lower():
            raise RuntimeError(f"read {read!r} from an image of 'Scanned invoice 2026'")
        return f"read {read!r} from a generated image"
