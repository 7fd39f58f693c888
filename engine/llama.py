"""The embedded engine: a GGUF model run in-process by llama.cpp (llama-cpp-python).

Loads lazily on the first request, keeps the KV cache between calls (a follow-up that
shares a prompt prefix pays only for its new tokens), and unloads after an idle time.
All generation goes through one lock: the model is single-threaded. This module owns the
model's life (load, unload, idle timer, memory checks, state); the token-by-token decoding
of an answer is engine/decoding.py's.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine import backends, gguf_info, hardware
from engine.cancel import CancelToken
from engine.decoding import Generation, grammar_for
from engine.errors import ContextTooLong, GenerationFailed, ModelInvalid, ModelTooLarge
from engine.idle import IdleTimer
from engine.interface import EngineEvent, GenerationRequest, Loading, ModelState, ModelStatus, errors_as_failed
from engine.prompt_formats import ChatTemplateFormat, HarmonyFormat, PromptFormat
from engine.status import StateReporter

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)


_MIN_CONTEXT = 2048
_MEMORY_MARGIN = 1 << 30  # left free for the OS, the app and the embedder


@dataclass(frozen=True, slots=True)
class LlamaSettings:
    """How to run a GGUF file. ``context_size`` 0 sizes it to free memory; ``gpu_layers`` -1 is automatic."""

    model_path: Path
    context_size: int = 0
    gpu_layers: int = -1
    kv_cache_type: str = "f16"
    threads: int | None = None
    idle_seconds: float = 600.0
    label: str = ""  # the name shown for the model; its file's own name when empty
    stand_in: bool = False  # a small stand-in for a real model (the bundled starter): see LanguageModel.stand_in


def plan_context(info: gguf_info.GGUFInfo, requested: int, kv_type: str, offloaded: bool) -> int:
    """The context size to use: the request (capped at the trained length), or what memory allows."""
    trained = max(info.context_length, _MIN_CONTEXT)
    if requested > 0:
        return min(requested, trained)
    free = hardware.available_memory() - (0 if offloaded else info.file_size) - _MEMORY_MARGIN
    fits = free // max(1, info.kv_bytes_per_token(kv_type))
    return int(max(_MIN_CONTEXT, min(trained, fits // 1024 * 1024)))


class LocalModel(StateReporter):
    """What both ways of running a GGUF here share (in this process, ``LlamaEngine``; in a child,
    ``ProcessEngine``): its settings, its header (read at once: a missing or broken file is refused
    here), its name, whether it is a stand-in, and the timer that frees it when idle."""

    _idle: IdleTimer

    def __init__(self, settings: LlamaSettings) -> None:
        super().__init__(ModelState.NOT_LOADED)
        self.settings = settings
        self.info = gguf_info.read(settings.model_path)

    @property
    def name(self) -> str:
        return self.settings.label or self.info.name

    @property
    def stand_in(self) -> bool:
        return self.settings.stand_in

    @property
    def idle_timer(self) -> IdleTimer:
        """The timer that frees the model when idle (tests drive it with their own clock)."""
        return self._idle


class LlamaEngine(LocalModel):
    """A ``LanguageModel`` over llama.cpp; gpt-oss through harmony, anything else through its template."""

    def __init__(self, settings: LlamaSettings, clock: Callable[[], float] = time.monotonic, idle_thread: bool = True) -> None:
        super().__init__(settings)
        self.backends = backends.load()
        self._threads = settings.threads or hardware.cpu_threads()
        self._n_ctx = plan_context(self.info, settings.context_size, settings.kv_cache_type, offloaded=False)
        self._gpu_layers = hardware.gpu_layers(settings.gpu_layers, self.info, self._n_ctx, settings.kv_cache_type)
        self._format: PromptFormat = HarmonyFormat() if self.info.is_gpt_oss else ChatTemplateFormat(self.info, self._vocabulary)
        self._llm: Llama | None = None
        self._vocab_only: Llama | None = None
        self._eog: frozenset[int] = frozenset()
        self._abort: Callable[[object], bool] | None = None  # llama.cpp's abort callback, kept alive here
        self._cancel: CancelToken | None = None  # the running answer's, read by the abort callback
        self._adapters: dict[Path, object] = {}  # LoRA adapters loaded into the model (llama.cpp handles), by file
        self._adapter: Path | None = None  # the one applied to the context now
        self._lock = threading.RLock()
        self._rss_before = 0
        self._idle = IdleTimer(settings.idle_seconds, self._unload_when_idle, clock)
        if idle_thread:
            self._idle.start()

    # -- the LanguageModel interface ------------------------------------------------------

    @property
    def context_size(self) -> int:
        return self._n_ctx

    def count_tokens(self, text: str) -> int:
        return self._format.count(text)

    def prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.render(request))

    def render(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids, as the model reads them."""
        return self._format.render(request)

    def status(self) -> ModelStatus:
        memory = max(0, hardware.resident_memory() - self._rss_before) if self._llm is not None else 0
        where = f"{self._gpu_layers} layers on the GPU" if self._gpu_layers else "CPU"
        detail = f"{self._n_ctx:,} tokens of context, {where}; {self.backends.describe()}"
        return ModelStatus(self._state, memory, self.name, self._n_ctx, detail)

    def unload(self) -> None:
        with self._lock:
            self._release(ModelState.NOT_LOADED)

    def close(self) -> None:
        """Unload and stop the idle timer."""
        self._idle.stop()
        self.unload()

    def stream(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[EngineEvent]:
        return errors_as_failed(self._stream(request, cancel or CancelToken()))

    # -- generation -----------------------------------------------------------------------

    def _stream(self, request: GenerationRequest, cancel: CancelToken) -> Iterator[EngineEvent]:
        """Load if need be, then decode (engine/decoding.py) with the model marked as generating."""
        grammar = grammar_for(request)
        if self._llm is None:
            self._check_memory()
        prompt = self._format.render(request)
        if len(prompt) + request.max_tokens > self._n_ctx:
            raise ContextTooLong(len(prompt) + request.max_tokens, self._n_ctx)
        with self._lock, self._idle.busy():
            started = time.perf_counter()
            load_seconds = 0.0
            if self._llm is None:
                yield Loading(self.name)
                load_seconds = self._load()
            llm = self._llm
            assert llm is not None
            self._apply_adapter(llm, request.adapter)
            self._set_state(ModelState.GENERATING)
            self._cancel = cancel
            try:
                run = Generation(llm, self._eog, request, cancel, started + load_seconds)
                yield from run.events(prompt, grammar, self._format.harmony)
            finally:
                self._cancel = None
                self._set_state(ModelState.READY)
            yield run.done(len(prompt), load_seconds)

    # -- loading --------------------------------------------------------------------------

    def _vocabulary(self) -> Llama:
        """The model's tokenizer alone (no weights), for counting before the model loads."""
        with self._lock:
            if self._llm is not None:
                return self._llm
            if self._vocab_only is None:
                backends.load()
                from llama_cpp import Llama

                backends.quiet_logs()
                try:
                    self._vocab_only = Llama(str(self.settings.model_path), vocab_only=True, verbose=False)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ModelInvalid(self.settings.model_path, f"llama.cpp could not read its vocabulary ({exc})") from exc
            return self._vocab_only

    def _check_memory(self) -> None:
        needed = self.info.kv_bytes_per_token(self.settings.kv_cache_type) * self._n_ctx
        if self._gpu_layers == 0:
            needed += self.info.file_size
        available = hardware.available_memory()
        if needed > available:
            raise ModelTooLarge(self.settings.model_path, needed, available)

    def _load(self) -> float:
        started = time.perf_counter()
        self._set_state(ModelState.LOADING)
        try:
            self._check_memory()
        except ModelTooLarge:
            self._set_state(ModelState.NOT_LOADED)
            raise
        import llama_cpp

        backends.quiet_logs()
        kv_type = {"q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}.get(self.settings.kv_cache_type)
        self._rss_before = hardware.resident_memory()
        try:
            llm = llama_cpp.Llama(
                str(self.settings.model_path),
                n_ctx=self._n_ctx,
                n_gpu_layers=self._gpu_layers,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                type_k=kv_type,
                type_v=kv_type,
                flash_attn=kv_type is not None,
                # A sliding-window model (gpt-oss) keeps every position of its window layers, as
                # _check_memory counts them: else the cache forgets all but the last window, and the
                # next question could not start from the instructions it shares with the last one.
                swa_full=True,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            self._set_state(ModelState.NOT_LOADED)
            raise ModelInvalid(self.settings.model_path, f"llama.cpp could not load it ({exc})") from exc
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._eog = frozenset(t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t))

        # Stop must not wait for a long prompt: llama.cpp asks this between graph nodes.
        @llama_cpp.ggml_abort_callback
        def abort(_data: object) -> bool:
            cancel = self._cancel
            return cancel is not None and cancel.cancelled

        self._abort = abort
        llama_cpp.llama_set_abort_callback(llm.ctx, abort, None)
        self._llm = llm
        self._vocab_only = None
        self._set_state(ModelState.READY)
        seconds = time.perf_counter() - started
        log.info("loaded %s in %.1fs (context %d, gpu layers %d)", self.settings.model_path.name, seconds, self._n_ctx, self._gpu_layers)
        return seconds

    def _apply_adapter(self, llm: Llama, adapter: Path | None) -> None:
        """Switch the LoRA adapter on the context; the KV cache was computed without it, so it goes."""
        if adapter == self._adapter:
            return
        import llama_cpp

        if adapter is not None and adapter not in self._adapters:
            if not adapter.is_file():
                raise ModelInvalid(adapter, "the collection's adapter file is missing")
            handle = llama_cpp.llama_adapter_lora_init(llm.model, str(adapter).encode())
            if not handle:
                raise ModelInvalid(adapter, f"llama.cpp could not apply it as a LoRA adapter of {self.name}")
            self._adapters[adapter] = handle
        if adapter is None:
            status = llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
        else:
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[adapter])
            scales = (ctypes.c_float * 1)(1.0)
            status = llama_cpp.llama_set_adapters_lora(llm.ctx, handles, 1, scales)
        if status != 0:
            raise GenerationFailed(f"llama.cpp refused the adapter {adapter} (status {status})")
        llm.reset()
        self._adapter = adapter
        log.info("adapter now %s", adapter or "none")

    def _release(self, state: ModelState) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
            self._adapters.clear()  # freed with the model
            self._adapter = None
            import gc

            gc.collect()
            hardware.trim_heap()
            log.info("unloaded %s (%s)", self.settings.model_path.name, state.value)
            self._set_state(state)

    def _unload_when_idle(self) -> None:
        if self._lock.acquire(blocking=False):
            try:
                self._release(ModelState.UNLOADED_IDLE)
            finally:
                self._lock.release()
