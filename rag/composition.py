"""The composition root shared by the CLI and the desktop: settings in, real objects out."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rag.embedding import Embedder
from rag.ingest import ChunkOptions
from rag.knowledge_base import KnowledgeBase
from rag.settings import Settings
from rag.store import VectorStore


def open_store(settings: Settings) -> tuple[VectorStore, Path]:
    """The vector store the settings name, and the folder for its local keyword indexes."""
    data = settings.data_path
    if settings.chroma_host:
        store = VectorStore.server(settings.chroma_host, settings.chroma_port, settings.chroma_ssl, settings.chroma_token)
        tag = hashlib.sha1(store.location.encode()).hexdigest()[:12]
        return store, data / "keyword" / f"server-{tag}"
    return VectorStore.embedded(data / "chroma"), data / "keyword" / "local"


def open_knowledge_base(settings: Settings) -> KnowledgeBase:
    """A knowledge base wired from the settings: store, embedder, chunking."""
    store, keyword_dir = open_store(settings)
    embedder = Embedder(Path(settings.embedding_model).expanduser() if settings.embedding_model else None)
    return KnowledgeBase(store, embedder, keyword_dir, ChunkOptions(settings.chunk_tokens, settings.chunk_overlap))
