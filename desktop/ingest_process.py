"""Indexing in a child process, so that the window's process never waits on it.

Parsing PDFs, chunking and tokenising are Python code that holds the interpreter's lock;
in the window's process, threads or not, they stall the event loop for a few hundred
milliseconds at a time (bench/desktop.py measures it). The child opens the same store
through the desktop's private Chroma server, writes the same keyword index file (SQLite
in WAL mode lets both processes use it), and reports progress and the final report over a
pipe; Stop is a message on the same pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.cancel import CancelToken
from rag.errors import KnowledgeBaseError
from rag.settings import Settings


def ingest_in_child(
    settings: Settings, paths: Sequence[Path], collection: str, force: bool,
    progress: Callable[[Any], None], cancel: CancelToken,
) -> Any:
    """``KnowledgeBase.ingest`` run by a child process; returns its ``IngestReport``."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_child, args=(settings, list(paths), collection, force, theirs),
                            name="archivist-ingest", daemon=True)
    child.start()
    theirs.close()
    forget = cancel.watch(lambda: _send(ours, "stop"))
    try:
        while True:
            try:
                kind, value = ours.recv()
            except EOFError as exc:
                child.join(5)
                raise KnowledgeBaseError(
                    f"Indexing stopped unexpectedly (the indexing process exited with {child.exitcode}); "
                    "what was indexed is kept, and indexing again finishes the rest."
                ) from exc
            if kind == "progress":
                progress(value)
            elif kind == "done":
                return value
            elif kind == "failed":
                raise KnowledgeBaseError(value)
    finally:
        forget()
        ours.close()
        child.join(10)
        if child.is_alive():
            child.kill()


def _send(connection: Any, message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        connection.send(message)


def _child(settings: Settings, paths: list[Path], collection: str, force: bool, connection: Any) -> None:
    """The child's side: open the knowledge base without a model, ingest, report."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.nice(10)  # the window's process comes first when cores are scarce
    from engine.errors import ArchivistError
    from rag import logs, offline
    from rag.composition import open_knowledge_base

    offline.enforce()
    logs.configure(settings.log_path, process="ingest")
    cancel = CancelToken()

    def listen() -> None:
        with contextlib.suppress(EOFError, OSError):
            connection.recv()
            cancel.cancel()

    threading.Thread(target=listen, daemon=True).start()
    try:
        kb = open_knowledge_base(settings, with_model=False)
        report = kb.ingest(paths, collection, progress=lambda state: connection.send(("progress", state)),
                           cancel=cancel, force=force)
        connection.send(("done", report))
    except ArchivistError as exc:
        connection.send(("failed", str(exc)))
    finally:
        connection.close()
