"""Re-embedding: a collection's vectors rebuilt with another embedding model, swapped in whole when done."""

from __future__ import annotations

import logging
from collections.abc import Callable

from engine.cancel import CancelToken
from rag.embedding import Embedder
from rag.errors import KnowledgeBaseError, ReembedCancelled
from rag.storage.collection import StoredCollection
from rag.storage.vectors import CollectionInfo, VectorStore

log = logging.getLogger(__name__)


def reembed(
    stored: StoredCollection, store: VectorStore, embedder: Embedder, batch: int,
    progress: Callable[[int, int], None] | None = None, cancel: CancelToken | None = None,
) -> CollectionInfo:
    """Embed every chunk of ``stored`` again with ``embedder``, ``batch`` chunks at a time, into a
    hidden collection that replaces the old one when complete; stopped or failed, the hidden one is
    dropped and the old one was never touched. ``progress`` hears (chunks done, chunks in all)."""
    name = stored.info.name
    if stored.pending_keys():
        raise KnowledgeBaseError(f"{name!r} has files being indexed; let that finish before re-embedding.")
    total = stored.count()
    rebuild = store.start_rebuild(stored.info, embedder.model_id, embedder.dimension)
    done = 0
    try:
        for chunks in stored.all_chunks(batch):
            if cancel is not None and cancel.cancelled:
                raise ReembedCancelled(name)
            rebuild.write(chunks, embedder.submit([c.text for c in chunks]).result())
            done += len(chunks)
            if progress is not None:
                progress(done, total)
        info = rebuild.finish()
    except BaseException:
        rebuild.abandon()
        raise
    log.info("re-embedded %s: %d chunks with %s", name, done, info.embedder)
    return info
