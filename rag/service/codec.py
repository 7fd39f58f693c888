"""One vocabulary on every wire: the facade's messages, results and errors to and from JSON.

The pipe to the window, the HTTP transport and ``archivist-cli --format json`` all use it.
A message is a frozen dataclass of ``rag`` or ``engine``; on the wire it is a JSON object
whose ``$type`` names it. Errors travel as ``$error`` with their fields, so an
``ArchivistError`` raised in another process arrives as the same typed error with the same
sentence. Only the types of the modules listed here can be decoded: a message names a
type, it never names code to run.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import ArchivistError, _rebuild
from rag.errors import ServiceError

VERSION = 1

# The modules whose dataclasses, enums and errors cross a boundary.
_MODULES = (
    "engine.interface", "engine.errors", "engine.catalog",
    "rag.errors", "rag.answering.ask", "rag.storage.vectors", "rag.storage.collection", "rag.storage.manifest",
    "rag.indexing.ingest", "rag.documents", "rag.answering.sources", "rag.answering.citations", "rag.answering.claims",
    "rag.answering.conversations", "rag.answering.checkup", "rag.answering.field_sources", "rag.answering.answer_cache", "rag.answering.schemas",
    "rag.answering.retrieval", "rag.indexing.following", "rag.knowledge_base", "engine.download",
)


@cache
def registry() -> dict[str, type]:
    """Every type that may cross, by name; two types of one name would be ambiguous, so that fails."""
    found: dict[str, type] = {}
    for name in _MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != name:
                continue
            if dataclasses.is_dataclass(value) or issubclass(value, (enum.Enum, ArchivistError)):
                if value.__name__ in found:
                    raise TypeError(f"two message types are called {value.__name__}: {found[value.__name__]} and {value}")
                found[value.__name__] = value
    return found


def encode(value: object, paths: Callable[[Path], Path] | None = None) -> Any:
    """``value`` as plain JSON data (dicts, lists, strings, numbers); ``paths`` renames each path
    on the way (a team server gives a user back the names their own machine uses)."""

    def go(value: object) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, Path):
            return {"$path": str(paths(value) if paths else value)}
        if isinstance(value, enum.Enum):
            return {"$enum": type(value).__name__, "value": value.value}
        if isinstance(value, BaseException):
            if not isinstance(value, ArchivistError) or type(value).__name__ not in registry():
                value = ServiceError(f"{type(value).__name__}: {value}")
            return {"$error": type(value).__name__, "args": [go(a) for a in value.args],
                    "fields": {k: go(v) for k, v in vars(value).items()}}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out = {"$type": type(value).__name__}
            for f in dataclasses.fields(value):
                out[f.name] = go(getattr(value, f.name))
            return out
        if isinstance(value, tuple):
            return {"$tuple": [go(v) for v in value]}
        if isinstance(value, (list, set, frozenset)):
            return [go(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: go(v) for k, v in value.items()}
            return {"$map": [[go(k), go(v)] for k, v in value.items()]}
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
        raise TypeError(f"cannot send a {type(value).__name__} across a process boundary")

    return go(value)


def decode(data: Any) -> Any:
    """The value ``encode`` was given back, with its types."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$path" in data:
        return Path(data["$path"])
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$map" in data:
        return {decode(k): decode(v) for k, v in data["$map"]}
    if "$enum" in data:
        return _type(data["$enum"], enum.Enum)(data["value"])
    if "$error" in data:
        cls = _type(data["$error"], ArchivistError)
        return _rebuild(cls, tuple(decode(a) for a in data["args"]), {k: decode(v) for k, v in data["fields"].items()})
    if "$type" in data:
        cls = _type(data["$type"])
        if not dataclasses.is_dataclass(cls):
            raise ServiceError(f"{data['$type']!r} is not a message type")
        values = {k: decode(v) for k, v in data.items() if k != "$type"}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        made = cls(**{k: v for k, v in values.items() if k in fields and fields[k].init})
        for k, v in values.items():
            if k in fields and not fields[k].init:
                object.__setattr__(made, k, v)
        return made
    return {k: decode(v) for k, v in data.items()}


def _type(name: str, kind: type | None = None) -> Any:
    """The registered type ``name`` (and of ``kind``, when given)."""
    try:
        found = registry()[name]
    except (KeyError, TypeError):
        raise ServiceError(f"an unknown message type {name!r} arrived; are both sides the same version?") from None
    if kind is not None and not issubclass(found, kind):
        raise ServiceError(f"{name!r} is not a {kind.__name__}")
    return found


def dumps(value: object, paths: Callable[[Path], Path] | None = None) -> str:
    """``value`` as one line of JSON (``paths``: see ``encode``)."""
    return json.dumps(encode(value, paths), ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value ``dumps`` wrote."""
    return decode(json.loads(text))


__all__ = ["VERSION", "decode", "dumps", "encode", "loads", "registry"]
