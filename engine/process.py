"""The model in a process of its own: a native crash costs one answer, never the caller.

``ProcessEngine`` is a ``LanguageModel`` whose llama.cpp (``LlamaEngine``: harmony,
grammar, KV cache) runs in a child process, the way Ollama keeps a runner apart from its
server. Requests and events cross a pipe as the same typed objects the engine uses in
process; errors cross as the same ``ArchivistError`` subclasses. Idle unload, or running
low on memory, ends the child, so its memory returns to the system exactly; the next
request starts a fresh one. A child that dies mid-answer (segfault, abort, out-of-memory
kill) ends that answer with ``EngineCrashed``, and the next question starts a new child.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import psutil

from engine import crash_log, hardware
from engine.cancel import CancelToken
from engine.errors import ArchivistError, EngineCrashed, GenerationCancelled
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
)
from engine.llama import LlamaSettings, LocalModel

log = logging.getLogger(__name__)

_START_TIMEOUT = 120.0  # importing llama.cpp on a busy machine; a load is not part of it
_STOP_GRACE = 3.0  # after Stop, the child has this long to end the answer before it is killed


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the child reports once started: the model's name and context, and the backends in use."""

    name: str
    context_size: int
    backends: str
    pid: int


class ProcessEngine(LocalModel):
    """A ``LanguageModel`` over a ``LlamaEngine`` that lives in a child process."""

    def __init__(
        self,
        settings: LlamaSettings,
        log_dir: Path | None = None,
        memory_floor: int = 0,
        clock: Callable[[], float] = time.monotonic,
        available_memory: Callable[[], int] = hardware.available_memory,
        watch_thread: bool = True,
    ) -> None:
        super().__init__(settings)
        self.memory_floor = memory_floor
        self._log_dir = log_dir
        self._available_memory = available_memory
        self._lock = threading.RLock()  # one request at a time: the model is single-threaded
        self._send_lock = threading.Lock()
        self._child: _Child | None = None
        self._facts: EngineFacts | None = None
        self._loaded = False
        self._detail = ""
        self._idle = IdleTimer(settings.idle_seconds, lambda: self._end_if_free(ModelState.UNLOADED_IDLE, ""), clock)
        self._stop = threading.Event()
        if watch_thread:
            period = max(1.0, min(10.0, settings.idle_seconds / 4))
            threading.Thread(target=self._watch, args=(period,), name="engine-watch", daemon=True).start()

    # -- the LanguageModel interface ------------------------------------------------------

    @property
    def context_size(self) -> int:
        return self.facts().context_size

    def facts(self) -> EngineFacts:
        """The child's facts (starting it if none ran yet)."""
        if self._facts is None:
            with self._lock:
                self._started()
        assert self._facts is not None
        return self._facts

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (tests send it signals)."""
        child = self._child
        return child.process.pid if child is not None and child.process.is_alive() else None

    def count_tokens(self, text: str) -> int:
        return int(self._call("count", text))

    def prompt_tokens(self, request: GenerationRequest) -> int:
        return int(self._call("prompt_tokens", request))

    def status(self) -> ModelStatus:
        memory = 0
        child = self._child
        if self._loaded and child is not None:
            with contextlib.suppress(psutil.Error):
                memory = psutil.Process(child.process.pid).memory_info().rss
        facts = self._facts
        context = facts.context_size if facts else 0
        detail = self._detail or (f"{context:,} tokens of context; {facts.backends}" if facts else "")
        return ModelStatus(self._state, memory, self.name, context, detail)

    def unload(self) -> None:
        with self._lock:
            self._end(ModelState.NOT_LOADED, "")

    def close(self) -> None:
        self._stop.set()
        self.unload()

    def stream(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[EngineEvent]:
        cancel = cancel or CancelToken()
        with self._lock, self._idle.busy():
            try:
                child = self._started()
            except ArchivistError as exc:
                yield Failed(exc)
                return
            self._send(child, "stream", request)
            forget = cancel.watch(lambda: self._send(child, "cancel", None))
            cancelled_at: float | None = None
            finished = False
            try:
                while True:
                    if cancel.cancelled and cancelled_at is None:
                        cancelled_at = time.monotonic()
                    if cancelled_at is not None and time.monotonic() - cancelled_at > _STOP_GRACE:
                        log.warning("the engine did not stop within %.0fs of Stop; ending it", _STOP_GRACE)
                        child.kill()
                        self._end(ModelState.NOT_LOADED, "")
                        finished = True
                        yield Failed(GenerationCancelled())
                        return
                    try:
                        kind, value = child.receive(0.25)
                    except TimeoutError:
                        continue
                    except EOFError:
                        finished = True
                        yield Failed(self._crashed(child))
                        return
                    event: EngineEvent = Failed(value) if kind == "error" else value
                    finished = isinstance(event, Done | Failed)
                    self._follow(event)
                    yield event
                    if finished:
                        return
            finally:
                forget()
                if not finished:  # the caller stopped reading: end the answer, so that the next starts clean
                    self._abandon(child)
                if self._state in (ModelState.LOADING, ModelState.GENERATING):
                    self._set_state(ModelState.READY if self._loaded else ModelState.NOT_LOADED)

    def _abandon(self, child: _Child) -> None:
        """Stop the child's answer and read what is left of it; end the child if it does not stop."""
        self._send(child, "cancel", None)
        deadline = time.monotonic() + _STOP_GRACE
        while time.monotonic() < deadline:
            try:
                kind, value = child.receive(max(0.0, deadline - time.monotonic()))
            except (EOFError, TimeoutError):
                break
            if kind == "error" or isinstance(value, Done | Failed):
                return
        child.kill()
        self._end(ModelState.NOT_LOADED, "")

    # -- the child's life -----------------------------------------------------------------

    def _started(self) -> _Child:
        """The running child, or a new one (raises what stopped it from starting)."""
        child = self._child
        if child is not None and child.process.is_alive():
            return child
        if child is not None:
            self._child = None
            child.close()
        child = _Child.start(self.settings, self._log_dir)
        try:
            kind, value = child.receive(_START_TIMEOUT)
        except (EOFError, TimeoutError) as exc:
            child.kill()
            child.process.join(5)
            code = child.process.exitcode
            child.close()
            raise EngineCrashed(code) from exc
        if kind == "error":
            child.close()
            raise value
        self._facts = value
        self._child = child
        self._detail = ""
        log.info("engine process %d started: %s", value.pid, value.backends)
        return child

    def _call(self, kind: str, value: object) -> object:
        with self._lock:
            self._idle.touch()  # a process started only to count tokens ends when idle too
            child = self._started()
            self._send(child, kind, value)
            try:
                answer_kind, answer = child.receive(None)
            except EOFError:
                raise self._crashed(child) from None
            if answer_kind == "error":
                raise answer
            return answer

    def _send(self, child: _Child, kind: str, value: object) -> None:
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            child.connection.send((kind, value))

    def _crashed(self, child: _Child) -> EngineCrashed:
        child.process.join(5)
        error = EngineCrashed(child.process.exitcode)
        log.error("engine process %s ended: %s", child.process.pid, error)
        self._child = None
        child.close()
        self._loaded = False
        self._detail = str(error)
        self._set_state(ModelState.NOT_LOADED)
        return error

    def _follow(self, event: EngineEvent) -> None:
        if isinstance(event, Loading):
            self._set_state(ModelState.LOADING)
        elif isinstance(event, ReasoningDelta | AnswerDelta) and self._state is not ModelState.GENERATING:
            self._loaded = True
            self._set_state(ModelState.GENERATING)
        elif isinstance(event, Done):
            self._loaded = True
            self._set_state(ModelState.READY)

    def _end(self, state: ModelState, detail: str) -> None:
        child, self._child = self._child, None
        was_loaded, self._loaded = self._loaded, False
        if child is not None:
            self._send(child, "close", None)
            child.close()
            log.info("engine process ended (%s)", detail or state.value)
        if child is not None or self._state is not ModelState.NOT_LOADED:
            self._detail = detail
            self._set_state(state if was_loaded else ModelState.NOT_LOADED)

    def _end_if_free(self, state: ModelState, detail: str) -> None:
        if self._lock.acquire(blocking=False):
            try:
                if self._child is not None:
                    self._end(state, detail)
            finally:
                self._lock.release()

    def check_memory(self) -> bool:
        """Between answers, end the child when available memory is below ``memory_floor``."""
        if not self.memory_floor or not self._loaded:
            return False
        available = self._available_memory()
        if available >= self.memory_floor:
            return False
        detail = (f"The model was unloaded because available memory fell to {available / 2**30:.1f} GiB "
                  f"(below {self.memory_floor / 2**30:.1f} GiB); it loads again for the next question.")
        self._end_if_free(ModelState.UNLOADED_LOW_MEMORY, detail)
        return self._state is ModelState.UNLOADED_LOW_MEMORY

    def _watch(self, period: float) -> None:
        while not self._stop.wait(period):
            self._idle.check()
            self.check_memory()


class _Child:
    """One engine process and our end of its pipe; owned by a single ``ProcessEngine``."""

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.closed = False

    @classmethod
    def start(cls, settings: LlamaSettings, log_dir: Path | None) -> _Child:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, settings, log_dir), name="archivist-engine", daemon=True)
        process.start()
        theirs.close()  # so that the child's death reads as EOF here
        return cls(process, ours)

    def receive(self, timeout: float | None) -> tuple[str, object]:
        """The next message; ``EOFError`` when the child is gone, ``TimeoutError`` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.connection.poll(0.2):
            if not self.process.is_alive() and not self.connection.poll(0):
                raise EOFError
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
        try:
            return self.connection.recv()
        except (OSError, ConnectionError) as exc:
            raise EOFError from exc

    def kill(self) -> None:
        """End the process now (SIGKILL where signals exist)."""
        if self.process.is_alive():
            self.process.kill()

    def close(self) -> None:
        """Wait a little for the process to end (after "close"), then kill it; release the pipe."""
        if self.closed:
            return
        self.closed = True
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)
        self.connection.close()
        with contextlib.suppress(ValueError):
            self.process.close()


# -- the child's side -------------------------------------------------------------------


def serve(connection: Connection, settings: LlamaSettings, log_dir: Path | None) -> None:
    """The engine process: answer requests from ``connection`` until told to close or orphaned."""
    if log_dir is not None:
        crash_log.enable(log_dir, "engine")
        handler = logging.handlers.RotatingFileHandler(log_dir / "engine.log", maxBytes=2_000_000, backupCount=2,
                                                       encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    from engine import backends
    from engine.llama import LlamaEngine

    try:
        engine = LlamaEngine(settings, idle_thread=False)
        facts = EngineFacts(engine.name, engine.context_size, backends.load().describe(), os.getpid())
    except ArchivistError as exc:
        connection.send(("error", exc))
        return
    connection.send(("facts", facts))
    requests: queue.Queue[tuple[str, object]] = queue.Queue()
    current = CancelToken()

    def read() -> None:
        nonlocal current
        while True:
            try:
                kind, value = connection.recv()
            except (EOFError, OSError):
                kind, value = "close", None  # the parent is gone: end with it
            if kind == "cancel":
                current.cancel()
                continue
            if kind == "stream":
                current = CancelToken()  # made here, so that a Stop right after the request hits it
                value = (value, current)
            requests.put((kind, value))
            if kind == "close":
                return

    threading.Thread(target=read, name="engine-requests", daemon=True).start()
    try:
        while True:
            kind, value = requests.get()
            if kind == "close":
                return
            try:
                if kind == "stream":
                    request, cancel = value  # type: ignore[misc]
                    for event in engine.stream(request, cancel):
                        connection.send(("event", event))
                elif kind == "count":
                    connection.send(("value", engine.count_tokens(value)))  # type: ignore[arg-type]
                elif kind == "prompt_tokens":
                    connection.send(("value", engine.prompt_tokens(value)))  # type: ignore[arg-type]
            except ArchivistError as exc:
                connection.send(("error", exc))
    finally:
        engine.close()
