"""The client: ``KnowledgeBaseClient`` makes every call the facade offers over a ``Channel``.

Its methods are not written here: each is made from the facade's own method (``@offered`` in
``rag.knowledge_base``), with its name, signature and docstring, so a caller cannot tell the
client from an in-process ``KnowledgeBase`` and a type checker sees the facade's types.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine import CancelToken, ModelStatus
from rag.calls import IN_PROCESS, Offered
from rag.knowledge_base import KnowledgeBase
from rag.service.dispatch import OFFERED

Notice = Callable[[object], None]


@dataclass(frozen=True)
class ServerEvent:
    """Something changed on a team server: ``kind`` "documents" (of ``collection``, or the list of
    collections), "conversations" (the user's own, in ``collection``) or "model"; or "connected", said
    each time the stream (re)opens, since what changed while it was closed went unheard."""

    kind: str
    collection: str = ""


@runtime_checkable
class Pushing(Protocol):
    """A channel whose other end says what changes as it happens (a team server's ``/v1/events``)."""

    def listen(self, heard: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Call ``heard`` (on a thread of the channel's) with each event until the returned function is called."""
        ...


class Channel(Protocol):
    """A transport to a ``Service``: the pipe to the knowledge-base process, or HTTP."""

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        """Send one call; yield its events; return its result (or raise its error)."""
        ...

    def add_listener(self, listener: Notice) -> None:
        """Call ``listener`` with every notice (the model's state, the service stopping)."""
        ...

    def close(self) -> None: ...


if TYPE_CHECKING:
    _Calls = KnowledgeBase  # a checker sees the facade's calls, with their arguments and results
else:
    _Calls = object


class KnowledgeBaseClient(_Calls):
    """A ``KnowledgeBase`` in another process or on another machine: every offered call, each
    blocking until its answer arrives (call them off the GUI thread)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def add_listener(self, listener: Callable[[ModelStatus], None]) -> None:
        self.channel.add_listener(lambda notice: listener(notice) if isinstance(notice, ModelStatus) else None)

    def listen(self, heard: Callable[[str, str], None]) -> Callable[[], None] | None:
        """Call ``heard(kind, collection)`` (on another thread) as things change on the other end, until
        the returned function is called; None when the channel cannot say (a process of one's own: its
        changes are found by asking ``revision``)."""
        if not isinstance(self.channel, Pushing):
            return None
        return self.channel.listen(lambda event: heard(event.kind, event.collection))

    def close(self) -> None:
        self.channel.close()


def _remote(spec: Offered, facade_method: Callable[..., object]) -> Callable[..., object]:
    """The client's method for one offered call: the facade's signature, sent over the channel."""
    whole = inspect.signature(facade_method)  # less what only an in-process caller may pass
    signature = whole.replace(parameters=[p for p in whole.parameters.values() if p.name not in IN_PROCESS])
    hints = typing.get_type_hints(facade_method)
    paths = {name for name, hint in hints.items() if name != "return" and Path in _types_in(hint)}

    def arguments(self: KnowledgeBaseClient, args: tuple[object, ...], kwargs: dict[str, object]) -> tuple[
            dict[str, Any], Callable[[object], None] | None, CancelToken | None]:
        values = signature.bind(self, *args, **kwargs).arguments  # only what was given: defaults stay the facade's
        del values["self"]
        progress, cancel = values.pop("progress", None), values.pop("cancel", None)
        for name in paths & values.keys():
            values[name] = _as_paths(values[name])
        return values, progress, cancel  # type: ignore[return-value]

    if _types_in(hints.get("return")) & {Iterator, Generator}:
        def method(self: KnowledgeBaseClient, *args: object, **kwargs: object) -> Iterator[object]:
            values, _, cancel = arguments(self, args, kwargs)
            yield from self.channel.exchange(spec.name, values, cancel)
    else:
        def method(self: KnowledgeBaseClient, *args: object, **kwargs: object) -> object:  # type: ignore[misc]
            values, progress, cancel = arguments(self, args, kwargs)
            stream = self.channel.exchange(spec.name, values, cancel)
            while True:
                try:
                    event = next(stream)
                except StopIteration as finished:
                    return finished.value
                if progress is not None:
                    progress(event)

    method.__name__ = method.__qualname__ = spec.name
    method.__doc__ = facade_method.__doc__
    method.__signature__ = signature  # type: ignore[attr-defined]
    return method


def _types_in(hint: object) -> set[object]:
    """Every type a hint names, unions and generics opened (``Sequence[Path] | None`` -> Sequence, Path, None)."""
    if isinstance(hint, list):  # a Callable's parameters
        return set().union(*map(_types_in, hint))
    found = {typing.get_origin(hint) or hint}
    for argument in typing.get_args(hint):
        found |= _types_in(argument)
    return found


def _as_paths(value: object) -> object:
    """A path given as text becomes a ``Path``, alone or in a list (the call's check wants Paths)."""
    if isinstance(value, str):
        return Path(value)
    if isinstance(value, list | tuple):
        return [Path(item) if isinstance(item, str) else item for item in value]
    return value


for _spec in OFFERED.values():
    setattr(KnowledgeBaseClient, _spec.name, _remote(_spec, getattr(KnowledgeBase, _spec.name)))
