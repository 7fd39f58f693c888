"""The JSON Schemas shipped for structured answers, and loading a user's own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import SchemaInvalid, check_schema
from resources import resource_path


@dataclass(frozen=True, slots=True)
class NamedSchema:
    """A schema with the name harmony's response format shows the model."""

    name: str
    title: str
    description: str
    schema: dict[str, Any]

    def __post_init__(self) -> None:
        check_schema(self.schema)  # wherever one comes from (a file, another process, a team server's client)


def shipped() -> list[NamedSchema]:
    """The schemas in ``resources/schemas``, by name."""
    return [_named(path.stem, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(resource_path("schemas").glob("*.json"))]


def resolve(name_or_path: str) -> NamedSchema:
    """A shipped schema by name, or a schema file; checked, or ``SchemaInvalid`` with the reason."""
    for schema in shipped():
        if schema.name == name_or_path:
            return schema
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        names = ", ".join(s.name for s in shipped())
        raise SchemaInvalid(f"{name_or_path!r} is neither a shipped schema ({names}) nor a schema file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaInvalid(f"cannot read {path.name} as JSON ({exc})") from exc
    return parse(data, path.stem)


def parse(data: Any, name: str = "result") -> NamedSchema:
    """Check a schema given as data (from the desktop's editor, say)."""
    check_schema(data)
    return _named(name, data)


def _named(name: str, data: dict[str, Any]) -> NamedSchema:
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "result"
    return NamedSchema(safe, str(data.get("title", name)), str(data.get("description", "")), data)
