"""The embedded engine: a GGUF model run in-process by llama.cpp (llama-cpp-python).

Loads lazily on the first request, keeps the KV cache between calls (a follow-up that
shares a prompt prefix pays only for its new tokens), and unloads after an idle time.
All generation goes through one lock: the model is single-threaded.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine import backends, gguf_info, harmony, hardware, schema
from engine.cancel import CancelToken
from engine.errors import ArchivistError, ContextTooLong, GenerationCancelled, GenerationFailed, ModelInvalid, ModelTooLarge
from engine.idle import IdleTimer
from engine.interface import (
    AnswerDelta,
    Done,
    EngineEvent,
    Failed,
    GenerationRequest,
    Loading,
    ModelState,
    ModelStatus,
    ReasoningDelta,
    StateListener,
    Timings,
    Usage,
)
from engine.prompt_formats import ChatTemplateFormat, HarmonyFormat, PromptFormat, TextDecoder

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
    label: str = ""


def plan_context(info: gguf_info.GGUFInfo, requested: int, kv_type: str, offloaded: bool) -> int:
    """The context size to use: the request (capped at the trained length), or what memory allows."""
    trained = max(info.context_length, _MIN_CONTEXT)
    if requested > 0:
        return min(requested, trained)
    free = hardware.available_memory() - (0 if offloaded else info.file_size) - _MEMORY_MARGIN
    fits = free // max(1, info.kv_bytes_per_token(kv_type))
    return int(max(_MIN_CONTEXT, min(trained, fits // 1024 * 1024)))


class LlamaEngine:
    """A ``LanguageModel`` over llama.cpp; gpt-oss through harmony, anything else through its template."""

    def __init__(self, settings: LlamaSettings, clock: Callable[[], float] = time.monotonic, idle_thread: bool = True) -> None:
        self.settings = settings
        self.info = gguf_info.read(settings.model_path)
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
        self._state = ModelState.NOT_LOADED
        self._rss_before = 0
        self._listeners: list[StateListener] = []
        self._idle = IdleTimer(settings.idle_seconds, self._unload_when_idle, clock)
        if idle_thread:
            self._idle.start()

    # -- the LanguageModel interface ------------------------------------------------------

    @property
    def name(self) -> str:
        return self.settings.label or self.info.name

    @property
    def context_size(self) -> int:
        return self._n_ctx

    @property
    def idle_timer(self) -> IdleTimer:
        """The timer that unloads the model (tests drive it with their own clock)."""
        return self._idle

    def count_tokens(self, text: str) -> int:
        return self._format.count(text)

    def prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.render(request))

    def render(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids, as the model reads them."""
        return self._format.render(request)

    def add_listener(self, listener: StateListener) -> None:
        self._listeners.append(listener)

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
        cancel = cancel or CancelToken()
        try:
            yield from self._stream(request, cancel)
        except ArchivistError as exc:
            yield Failed(exc)

    # -- generation -----------------------------------------------------------------------

    def _stream(self, request: GenerationRequest, cancel: CancelToken) -> Iterator[EngineEvent]:
        grammar_text = request.grammar
        if request.schema is not None:
            schema.check(request.schema)
            grammar_text = schema.grammar_text(request.schema)
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
                run = _Run(llm, self._eog, request, cancel, started + load_seconds)
                if request.seed is not None:
                    llm.set_seed(request.seed)
                if self._format.harmony:
                    yield from run.harmony(prompt, grammar_text)
                else:
                    yield from run.plain(prompt, grammar_text)
            finally:
                self._cancel = None
                self._set_state(ModelState.READY)
            data = None
            if request.schema is not None:
                if run.finish == "length":
                    raise GenerationFailed(
                        f"the structured answer reached its {request.max_tokens}-token limit before it was complete; "
                        "ask for less, or allow a longer answer"
                    )
                data = schema.validate(request.schema, run.answer_text)
            total = time.perf_counter() - started
            decode = max(1e-9, total - load_seconds - run.first_token)
            yield Done(
                text=run.answer_text,
                reasoning=run.reasoning_text,
                usage=Usage(prompt=len(prompt), cached=run.cached, completion=run.generated, reasoning=run.reasoning_tokens),
                timings=Timings(load_seconds, run.first_token, total, max(0, run.generated - 1) / decode),
                data=data,
                finish=run.finish,
            )

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

    def _set_state(self, state: ModelState) -> None:
        self._state = state
        status = self.status()
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):
                listener(status)


class _Run:
    """One generation: drives llama.cpp token by token and sorts text into reasoning and answer."""

    def __init__(self, llm: Llama, eog: frozenset[int], request: GenerationRequest, cancel: CancelToken, started: float) -> None:
        self.llm = llm
        self.eog = eog
        self.request = request
        self.cancel = cancel
        self.started = started
        self.first_token = 0.0
        self.generated = 0
        self.reasoning_tokens = 0
        self.cached = 0
        self.finish: str = "stop"
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.harmony_defaults = False

    @property
    def answer_text(self) -> str:
        return "".join(self.answer)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    def _tokens(self, prompt: list[int], budget: int, grammar_text: str | None, stops: frozenset[int]) -> Iterator[int]:
        """Sample up to ``budget`` tokens after ``prompt``, stopping on ``stops`` and on cancel."""
        from llama_cpp import LlamaGrammar

        if not self.generated and not self.cached:
            self.cached = _common_prefix(list(self.llm._input_ids[: self.llm.n_tokens]), prompt)
        grammar = LlamaGrammar.from_string(grammar_text, verbose=False) if grammar_text else None
        sampled = 0
        try:
            for token in self.llm.generate(prompt, grammar=grammar, **sampling(self.harmony_defaults, self.request.temperature)):
                if self.cancel.cancelled:
                    raise GenerationCancelled()
                if not self.first_token:
                    self.first_token = time.perf_counter() - self.started
                if token in stops:
                    return
                self.generated += 1
                sampled += 1
                yield token
                if sampled >= budget:
                    self.finish = "length"
                    return
        except (RuntimeError, ValueError) as exc:
            if self.cancel.cancelled:  # llama.cpp aborted the prompt at our request
                raise GenerationCancelled() from exc
            raise GenerationFailed(str(exc)) from exc

    def plain(self, prompt: list[int], grammar_text: str | None) -> Iterator[EngineEvent]:
        """A model without channels: every token is the answer."""
        decoder = TextDecoder(lambda ids: self.llm.detokenize(ids, special=False))
        for token in self._tokens(prompt, self.request.max_tokens, grammar_text, self.eog):
            if text := decoder.feed(token):
                self.answer.append(text)
                yield AnswerDelta(text)
        if tail := decoder.flush():
            self.answer.append(tail)
            yield AnswerDelta(tail)

    def harmony(self, prompt: list[int], grammar_text: str | None) -> Iterator[EngineEvent]:
        """gpt-oss: reasoning on the analysis channel, the answer on the final one."""
        self.harmony_defaults = True
        if grammar_text is None:
            yield from self._harmony_free(prompt)
        else:
            header = harmony.FINAL_JSON_HEADER if self.request.schema is not None else harmony.FINAL_HEADER
            yield from self._harmony_constrained(prompt, grammar_text, header)

    def _harmony_free(self, prompt: list[int]) -> Iterator[EngineEvent]:
        # gpt-oss always reasons first; opening the analysis channel ourselves keeps the parser
        # in message content from the first sampled token.
        opening = harmony.encode(harmony.ANALYSIS_HEADER)
        tokens = self._tokens(prompt + opening, self.request.max_tokens, None, self.eog)
        yield from self.sort_channels(itertools.chain(opening, tokens), skip=len(opening))

    def sort_channels(self, tokens: Iterable[int], skip: int = 0) -> Iterator[EngineEvent]:
        """Harmony completion tokens to events: analysis and commentary are reasoning, final is the answer.

        The first ``skip`` tokens are ours (a header we wrote), parsed but not counted.
        """
        parser = harmony.CompletionParser()
        for index, token in enumerate(tokens):
            piece = parser.feed(token)
            if index < skip:
                continue
            if piece is None:
                continue
            if piece.channel == "final":
                self.answer.append(piece.text)
                yield AnswerDelta(piece.text)
            else:
                self.reasoning_tokens += 1
                self.reasoning.append(piece.text)
                yield ReasoningDelta(piece.text)

    def _harmony_constrained(self, prompt: list[int], grammar_text: str, header: str) -> Iterator[EngineEvent]:
        """Reason freely on the analysis channel, then write the final channel (opened by
        ``header``: as JSON, or as text) under the grammar."""
        opening = harmony.encode(harmony.ANALYSIS_HEADER)
        budget = min(harmony.REASONING_BUDGET[self.request.reasoning_effort], self.request.max_tokens // 2)
        ends = self.eog | {harmony.END} | _special_ids()
        decoder = TextDecoder(lambda ids: self.llm.detokenize(ids, special=False))
        thought: list[int] = []
        for token in self._tokens(prompt + opening, budget, None, ends):
            thought.append(token)
            self.reasoning_tokens += 1
            if text := decoder.feed(token):
                self.reasoning.append(text)
                yield ReasoningDelta(text)
        self.finish = "stop"
        answer_prompt = prompt + opening + thought + [harmony.END] + harmony.encode(header)
        decoder = TextDecoder(lambda ids: self.llm.detokenize(ids, special=False))
        remaining = self.request.max_tokens - len(thought)
        for token in self._tokens(answer_prompt, remaining, grammar_text, self.eog):
            if text := decoder.feed(token):
                self.answer.append(text)
                yield AnswerDelta(text)
        if tail := decoder.flush():
            self.answer.append(tail)
            yield AnswerDelta(tail)


def sampling(harmony_model: bool, temperature: float | None) -> dict[str, float | int]:
    """Sampler settings: gpt-oss's recommended ones (temperature 1, no truncation, no penalties), or common defaults."""
    if harmony_model:
        return {"temp": 1.0 if temperature is None else temperature, "top_p": 1.0, "top_k": 0, "min_p": 0.0}
    # Small models loop ("4 days. 4 days. ..."); a mild repetition penalty keeps them moving.
    return {"temp": 0.7 if temperature is None else temperature, "top_p": 0.95, "top_k": 40, "min_p": 0.0,
            "repeat_penalty": 1.1}


def _special_ids() -> frozenset[int]:
    """Every harmony control token: any of them ends the reasoning we let the model write."""
    return frozenset(range(199998, 201088))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
