"""What the knowledge base offers to another process, stated once, on the facade's methods.

``@offered(...)`` marks a ``KnowledgeBase`` method as a call a client may make and says what a
team server must know of it: who may make it, which argument names the collection the rights
are checked on, which arguments name files or folders, whether the audit log keeps it. From
those marks come the dispatch table (``rag.service.dispatch``), the server's policy (``server.app``),
and the check of every call's arguments (``Offered.arguments``): the facade's own type hints,
strictly (a string is not a list of paths, a number is not a flag), inside its dataclasses too,
within the bounds below. A call is checked before anything else looks at it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic
from typing_extensions import NotRequired, TypedDict  # pydantic reads TypedDicts from here on Python 3.11

from rag.errors import BadCall

# Bounds on what one call may carry, whatever its type says: a question or a title is a few
# hundred characters, a path a few hundred bytes, an ingest a few thousand paths.
MAX_TEXT = 20_000  # characters in any one string (a question, a title, a JSON schema's text)
MAX_PATH = 4_096  # characters in a path
MAX_ITEMS = 10_000  # items in any one list or mapping
MAX_DEPTH = 12  # lists and mappings inside each other
# Parameters a transport fills in itself, and those only an in-process caller can pass.
_FILLED = frozenset({"self", "progress", "cancel"})
IN_PROCESS = frozenset({"query_vector"})


class Access(enum.IntEnum):
    """Who may make a call on a team server; each level includes the ones below it (but ADMIN)."""

    ANYONE = 0  # any signed-in user; what comes back is cut to what they may see
    READER = 1
    EDITOR = 2
    OWNER = 3
    ADMIN = 4  # administrators only: the server's own resources (the model, the cache)


@dataclass(frozen=True)
class Offered:
    """One call of the facade, as a client and a server see it."""

    name: str
    access: Access
    collection: str | None  # the argument naming the collection (None: the call names none)
    server_paths: tuple[str, ...] = ()  # arguments naming files or folders on the serving machine
    client_paths: tuple[str, ...] = ()  # arguments naming the caller's own files (their uploads on a server);
    # "options.paths" names a field of an argument
    audited: bool = False  # kept on the audit log (reads that change nothing are not)
    creates: bool = False  # makes the collection it names when there is none
    check: pydantic.TypeAdapter[dict[str, object]] | None = None

    def arguments(self, args: Mapping[str, object]) -> dict[str, object]:
        """``args`` checked against the facade's signature: the same values, typed; ``BadCall``
        saying which argument is wrong and how, for anything else."""
        assert self.check is not None
        if not isinstance(args, Mapping) or not all(isinstance(name, str) for name in args):
            raise BadCall(f"{self.name}: its arguments must be an object of named values")
        _bounded(args, 0, "")
        try:
            return self.check.validate_python(dict(args))
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "its arguments"
            raise BadCall(f"{self.name}: {where}: {first['msg']}") from None


_F = TypeVar("_F", bound=Callable[..., object])


def offered(access: Access, collection: str | None = "collection", *, server_paths: tuple[str, ...] = (),
            client_paths: tuple[str, ...] = (), audited: bool = False, creates: bool = False) -> Callable[[_F], _F]:
    """Mark a facade method as a call clients may make (see the module's docstring)."""

    def mark(function: _F) -> _F:
        function.__offered__ = Offered(  # type: ignore[attr-defined]
            function.__name__, access, collection, server_paths, client_paths, audited, creates)
        return function

    return mark


@functools.cache
def offered_calls(facade: type) -> dict[str, Offered]:
    """Every call ``facade`` offers, by name, each with its argument model built."""
    calls: dict[str, Offered] = {}
    for name, function in inspect.getmembers(facade, inspect.isfunction):
        spec: Offered | None = getattr(function, "__offered__", None)
        if spec is not None:
            calls[name] = _with_model(spec, function)
    return calls


def _with_model(spec: Offered, function: Callable[..., object]) -> Offered:
    hints = typing.get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in _FILLED | IN_PROCESS:
            continue
        hint = hints[parameter.name]
        fields[parameter.name] = hint if parameter.default is inspect.Parameter.empty else NotRequired[hint]
    for named in (spec.collection, *spec.server_paths, *spec.client_paths):
        assert named is None or named.split(".")[0] in fields, f"{spec.name} has no argument {named!r}"
    # Only the arguments given come back: the facade's defaults stay the facade's.
    arguments = TypedDict(f"{spec.name}_arguments", fields)  # type: ignore[misc]
    arguments.__pydantic_config__ = pydantic.ConfigDict(  # type: ignore[attr-defined]
        strict=True, extra="forbid", arbitrary_types_allowed=True, revalidate_instances="always")
    return dataclasses.replace(spec, check=pydantic.TypeAdapter(arguments))


def _bounded(value: object, depth: int, where: str) -> None:
    """``BadCall`` for a value nested, long or large past the bounds above."""
    if depth > MAX_DEPTH:
        raise BadCall(f"{where or 'the arguments'}: nested more than {MAX_DEPTH} deep")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise BadCall(f"{where}: {len(value):,} characters; at most {MAX_TEXT:,} are accepted")
        if "\x00" in value:
            raise BadCall(f"{where}: holds a NUL character")
    elif isinstance(value, Path):
        text = str(value)
        if len(text) > MAX_PATH or "\x00" in text:
            raise BadCall(f"{where}: not a usable path (over {MAX_PATH:,} characters, or a NUL character)")
    elif isinstance(value, Mapping):
        if len(value) > MAX_ITEMS:
            raise BadCall(f"{where}: {len(value):,} entries; at most {MAX_ITEMS:,} are accepted")
        for key, item in value.items():
            _bounded(key, depth + 1, where)
            _bounded(item, depth + 1, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        if len(value) > MAX_ITEMS:
            raise BadCall(f"{where}: {len(value):,} items; at most {MAX_ITEMS:,} are accepted")
        for item in value:
            _bounded(item, depth + 1, where)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            _bounded(getattr(value, name), depth + 1, f"{where}.{name}")


__all__ = ["Access", "MAX_ITEMS", "MAX_PATH", "MAX_TEXT", "Offered", "offered", "offered_calls"]
