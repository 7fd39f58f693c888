"""The composition root shared by the CLI and the desktop: settings in, real objects out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from archivist.settings import Settings
from engine import LanguageModel, LlamaSettings, ModelNotFound, ProcessEngine, RemoteEngine
from engine.catalog import LANGUAGE_MODELS, STARTER_NAME, installed_model, starter_model_path
from rag.answering.answer_cache import AnswerCache
from rag.answering.checkup import CheckupFiles, CheckupStore
from rag.answering.conversations import ConversationFiles, ConversationStore
from rag.embedding import Embedder
from rag.indexing.following import FollowFile, FollowList
from rag.indexing.ingest import ChunkOptions
from rag.knowledge_base import KnowledgeBase
from rag.service.client import KnowledgeBaseClient
from rag.storage.vectors import VectorStore


def open_store(settings: Settings) -> tuple[VectorStore, Path]:
    """The vector store the settings name, and the folder for its local keyword indexes."""
    data = settings.data_path
    if settings.chroma_host:
        store = VectorStore.server(settings.chroma_host, settings.chroma_port, settings.chroma_ssl, settings.chroma_token)
        tag = hashlib.sha1(store.location.encode()).hexdigest()[:12]
        return store, data / "keyword" / f"server-{tag}"
    return VectorStore.embedded(data / "chroma"), data / "keyword" / "local"


def models_dir(settings: Settings) -> Path:
    """Where downloaded models go (inside the data folder)."""
    return settings.data_path / "models"


@dataclass(frozen=True, slots=True)
class FoundModel:
    """A GGUF to run, the name to show for it, and whether it is a small stand-in (the starter)."""

    path: Path
    label: str = ""
    stand_in: bool = False


def find_model(settings: Settings) -> FoundModel:
    """The GGUF to use: the chosen file, else a catalog model found in the administrator's
    folder or our models folder, else the bundled starter model."""
    if settings.model_path:
        return FoundModel(Path(settings.model_path).expanduser())
    folders = [Path(settings.model_folder).expanduser()] if settings.model_folder else []
    for folder in [*folders, models_dir(settings)]:
        for model in LANGUAGE_MODELS:
            if path := installed_model(folder, model):
                return FoundModel(path, model.title)
    starter = starter_model_path()
    if starter is None:
        raise ModelNotFound(models_dir(settings) / LANGUAGE_MODELS[0].entry_file)
    return FoundModel(starter, STARTER_NAME, stand_in=True)


def open_model(settings: Settings) -> LanguageModel:
    """The language model the settings name: a team's inference server, else a local GGUF run
    by llama.cpp in an engine process of its own (started on first use; only the header is read now)."""
    if settings.remote_base_url:
        return RemoteEngine(settings.remote_base_url, settings.remote_model, settings.remote_api_key,
                            context=settings.context_size)
    found = find_model(settings)
    return ProcessEngine(
        LlamaSettings(
            found.path, context_size=settings.context_size, gpu_layers=settings.gpu_layers,
            kv_cache_type=settings.kv_cache_type, idle_seconds=settings.idle_minutes * 60, label=found.label,
            stand_in=found.stand_in,
        ),
        log_dir=settings.log_path,
        memory_floor=int(settings.memory_floor_gb * 2**30),
    )


def open_cache(settings: Settings) -> AnswerCache | None:
    """The answer cache, unless turned off."""
    if not settings.cache_enabled:
        return None
    from rag.answering.answer_cache import SIMILAR_THRESHOLD

    threshold = SIMILAR_THRESHOLD if settings.cache_similar else None
    return AnswerCache(settings.data_path / "answer-cache", settings.cache_size_mb, settings.cache_ttl_days, threshold,
                       settings.cache_redis_url)


def team_server(settings: Settings, url: str = "") -> KnowledgeBaseClient | None:
    """The team's ``archivist-server`` as a knowledge base, when one is named (``url``, else
    ``ARCHIVIST_SERVER``, else the settings), signed in with the user's token."""
    from archivist.credentials import load_token
    from rag.service.http_channel import HttpChannel

    url = url.rstrip("/") or settings.team_url
    return KnowledgeBaseClient(HttpChannel(url, load_token(url))) if url else None


def open_knowledge_base(settings: Settings, with_model: bool = True, confine_folders: bool = False,
                        kept: KeptState | None = None) -> KnowledgeBase:
    """A knowledge base wired from the settings: store, embedder, chunking, model, cache
    (``confine_folders``: a server's, whose folders must not lead out through links; ``kept``:
    where conversations, check-ups and followed folders are kept, else files in the data folder)."""
    store, keyword_dir = open_store(settings)
    embedder = Embedder(Path(settings.embedding_model).expanduser() if settings.embedding_model else None,
                        idle_seconds=settings.idle_minutes * 60)
    kept = kept or KeptState(ConversationFiles(settings.data_path / "conversations"),
                             CheckupFiles(settings.data_path / "checkups"), FollowFile(_followed_file(settings)))
    return KnowledgeBase(
        store, embedder, keyword_dir, ChunkOptions(settings.chunk_tokens, settings.chunk_overlap, settings.recognize_text),
        model=open_model(settings) if with_model else None,
        cache=open_cache(settings),
        conversations=kept.conversations,
        checkups=kept.checkups,
        following=kept.following,
        confine_folders=confine_folders,
    )


@dataclass(frozen=True, slots=True)
class KeptState:
    """Where a knowledge base keeps what is neither documents nor indexes: one machine's files, or a
    team server's shared database."""

    conversations: ConversationStore
    checkups: CheckupStore
    following: FollowList


def _followed_file(settings: Settings) -> Path:
    """Where the followed folders are kept; those the settings file held before 0.3 move there once."""
    path = settings.data_path / "followed.json"
    if settings.watched_folders and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings.watched_folders, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
