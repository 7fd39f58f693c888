"""The window's single door to the knowledge base: every call runs as a background job.

The backend opens the knowledge base (Chroma, the embedder, the model) on a worker after
the window is up, so the window appears before the heavy imports; views talk to it only
through jobs and signals. It holds no business logic of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.ingest_process import ingest_in_child
from desktop.workers import Job, Workers
from engine import ModelStatus
from rag.settings import Settings

log = logging.getLogger(__name__)


def warm_up(kb: Any) -> None:
    """Import and load the heavy parts now, while the window only shows "opening".

    Importing torch holds Python's lock for long stretches; done later, in the middle of
    indexing or asking, it would freeze the window each time. (llama.cpp runs in the engine's
    own process: nothing of it is imported here.)
    """
    kb.embedder.embed(["warm up"])


class Backend(QObject):
    """Owns the knowledge base and the settings; runs everything on ``Workers``."""

    ready = Signal()
    failed = Signal(object)
    model_status = Signal(object)
    collections_changed = Signal()

    def __init__(
        self, settings: Settings, workers: Workers | None = None, open_kb: Callable[[Settings], Any] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.workers = workers or Workers()
        self.kb: Any = None
        self.collection = settings.collection
        self._open_kb = open_kb

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> Job:
        """Build the knowledge base in the background; ``ready`` or ``failed`` follows."""

        def build(job: Job) -> Any:
            if self._open_kb is not None:
                kb = self._open_kb(self.settings)
            else:
                from rag.composition import open_knowledge_base

                kb = open_knowledge_base(self.settings, out_of_process=True)
            if kb.model is not None:
                kb.model.add_listener(self.model_status.emit)
            names = [c.name for c in kb.collections()]
            if self.collection not in names:
                if names:
                    self.collection = names[0]
                else:
                    kb.create_collection(self.collection)
            warm_up(kb)
            return kb

        job = self.workers.start("io", "open knowledge base", build)
        job.done.connect(self._opened)
        job.failed.connect(self.failed.emit)
        return job

    def _opened(self, kb: Any) -> None:
        self.kb = kb
        self.ready.emit()
        if kb.model is not None:
            self.model_status.emit(kb.model.status())

    def reopen(self, settings: Settings) -> Job:
        """Apply new settings: close the current knowledge base and open one from them."""
        old = self.kb
        self.kb = None
        if old is not None and old.model is not None:
            self.workers.start("model", "unload model", lambda _job: old.model.close())
        self.settings = settings
        self.collection = settings.collection
        return self.open()

    def shutdown(self) -> None:
        self.workers.shutdown()
        if self.kb is not None and self.kb.model is not None:
            self.kb.model.close()

    # -- calls --------------------------------------------------------------------------------

    def run(self, pool: str, name: str, fn: Callable[[Job], Any]) -> Job:
        """Run ``fn(job)`` once the knowledge base is open."""
        return self.workers.start(pool, name, fn)

    def ingest(self, paths: Sequence[Path], force: bool = False) -> Job:
        """Index files. With a store server (the app's own, or a team's) a child process does
        the work, so that the window never waits on it; otherwise a worker thread."""
        collection = self.collection
        if self._open_kb is None and self.kb is not None and self.kb.store.location.startswith("http"):
            settings = self.settings

            def in_child(job: Job) -> Any:
                self.kb.check_embedder(collection)
                return ingest_in_child(settings, paths, collection, force, job.report, job.cancel)

            return self.run("ingest", "index", in_child)
        return self.run(
            "ingest", "index",
            lambda job: self.kb.ingest(paths, collection, progress=job.report, cancel=job.cancel, force=force),
        )

    def remove(self, paths: Sequence[Path]) -> Job:
        collection = self.collection
        return self.run("ingest", "remove", lambda _job: self.kb.remove(paths, collection))

    def status(self) -> Job:
        collection = self.collection
        return self.run("io", "status", lambda _job: self.kb.status(collection))

    def ask(self, question: str, options: Any) -> Job:
        collection = self.collection

        def work(job: Job) -> Any:
            last = None
            for event in self.kb.ask(question, collection, options, job.cancel):
                job.emit(event)
                last = event
            return last

        return self.run("model", "ask", work)

    def model_now(self) -> ModelStatus | None:
        """The model's state right now (cheap: no job)."""
        return self.kb.model.status() if self.kb is not None and self.kb.model is not None else None

    def unload_model(self) -> Job:
        return self.run("model", "unload", lambda _job: self.kb.model.unload())
