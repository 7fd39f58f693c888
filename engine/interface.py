"""The one small interface every language model behind Archivist speaks.

A model turns a ``GenerationRequest`` (instructions, conversation, optional JSON schema)
into a stream of events: ``Loading`` when it must load first, ``ReasoningDelta`` and
``AnswerDelta`` as text arrives, then exactly one ``Done`` or ``Failed``. Callers never see
llama.cpp, harmony or HTTP types; errors arrive as ``Failed(error)`` with an
``ArchivistError`` a person can read.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from engine.cancel import CancelToken
from engine.errors import ArchivistError


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One earlier turn of the conversation (earlier reasoning is never sent back)."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What to generate: instructions (the developer message), the turns, and the shape."""

    instructions: str
    messages: Sequence[ChatMessage]
    reasoning_effort: Literal["low", "medium", "high"] = "low"
    max_tokens: int = 1024
    schema: dict[str, Any] | None = None
    schema_name: str = "result"
    schema_description: str = ""
    grammar: str | None = None  # GBNF the answer's text must follow (a free-text answer; ``schema`` wins)
    temperature: float | None = None
    seed: int | None = None
    adapter: Path | None = None  # a LoRA adapter (GGUF) applied to this answer, e.g. a collection's domain adapter


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens spent: ``cached`` prompt tokens were reused from the previous call's KV cache."""

    prompt: int = 0
    cached: int = 0
    completion: int = 0
    reasoning: int = 0


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds spent loading the model, until the first token, and in all; and decode speed."""

    load: float = 0.0
    first_token: float = 0.0
    total: float = 0.0
    tokens_per_second: float = 0.0


@dataclass(frozen=True, slots=True)
class Loading:
    """The model is being loaded before it can answer."""

    model: str


@dataclass(frozen=True, slots=True)
class Reading:
    """The model is reading its prompt: ``done`` of ``total`` tokens (those its cache held count
    as done). On a CPU this is most of the wait for the first word."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """More of the model's reasoning (gpt-oss's analysis channel)."""

    text: str


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """More of the answer (the final channel)."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The answer is complete. ``data`` holds the validated object in structured mode."""

    text: str
    reasoning: str
    usage: Usage
    timings: Timings
    data: Any = None
    # "length": cut at the token limit; "repetition": stopped because it went round in a loop.
    finish: Literal["stop", "length", "repetition"] = "stop"


def looping(text: str, longest: int = 200, span: int = 240) -> bool:
    """Whether ``text`` ends in a loop: the same run of up to ``longest`` characters over and over,
    ``span`` characters of it at least and three times at least (a sentence written again and
    again, a line of base64-like noise repeated). Text that only repeats a word or a table's
    rule now and then never spans that far exactly."""
    for period in range(1, longest + 1):
        length = max(span, 3 * period)
        if len(text) < length:
            return False
        tail = text[-length:]
        if tail[:-period] == tail[period:]:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Failed:
    """Generation ended without an answer; ``error`` says why in plain words."""

    error: ArchivistError


EngineEvent = Loading | Reading | ReasoningDelta | AnswerDelta | Done | Failed


class ModelState(enum.Enum):
    """Where a model stands, as shown in the status bar."""

    NOT_LOADED = "not loaded"
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"
    UNLOADED_IDLE = "unloaded after idle"
    UNLOADED_LOW_MEMORY = "unloaded: memory ran low"


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """A model's state and the memory its weights and cache hold (0 when not loaded)."""

    state: ModelState
    memory_bytes: int = 0
    name: str = ""
    context_size: int = 0
    detail: str = ""


StateListener = Callable[[ModelStatus], None]


@runtime_checkable
class LanguageModel(Protocol):
    """A model that turns a conversation into a stream of events."""

    @property
    def name(self) -> str: ...

    @property
    def stand_in(self) -> bool:
        """Whether this is a small stand-in for a real model (the bundled starter), too weak to
        trust alone: its answers come below the best source sentence, quoted, with a note to
        check each sentence. A capability of the model, so nothing compares names."""
        ...

    @property
    def context_size(self) -> int:
        """Tokens the context holds: prompt and answer together."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's own tokenizer."""
        ...

    def prompt_tokens(self, request: GenerationRequest) -> int:
        """Tokens the rendered prompt of ``request`` takes (without the answer)."""
        ...

    def stream(self, request: GenerationRequest, cancel: CancelToken | None = None) -> Iterator[EngineEvent]:
        """Generate, yielding events; ends with exactly one ``Done`` or ``Failed``."""
        ...

    def status(self) -> ModelStatus: ...

    def unload(self) -> None:
        """Free the weights now (waits for a generation in progress to finish)."""
        ...

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener`` (from any thread) whenever the state changes."""
        ...

    def close(self) -> None:
        """Unload and stop any timer or process the model keeps; the object is not used again."""
        ...


@dataclass(slots=True)
class Collected:
    """Everything a stream produced, for callers that do not stream (tests, the CLI's extract)."""

    reasoning: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)
    done: Done | None = None
    failed: Failed | None = None


def errors_as_failed(events: Iterator[EngineEvent]) -> Iterator[EngineEvent]:
    """``events``, except that an ``ArchivistError`` raised while making them ends the stream as ``Failed``."""
    try:
        yield from events
    except ArchivistError as exc:
        yield Failed(exc)


def collect(events: Iterator[EngineEvent]) -> Collected:
    """Drain a stream into a ``Collected``."""
    out = Collected()
    for event in events:
        out.events.append(event)
        if isinstance(event, ReasoningDelta):
            out.reasoning.append(event.text)
        elif isinstance(event, AnswerDelta):
            out.answer.append(event.text)
        elif isinstance(event, Done):
            out.done = event
        elif isinstance(event, Failed):
            out.failed = event
    return out
