"""A source for every field of a structured answer.

The model is asked for ``{"result": <the user's shape>, "sources": {field: [ids]}}``: the
schema it samples under is the user's, wrapped, so the citations cannot be left out. The
answer is then split again: the user gets their object unchanged, and per top-level field
the citations it was drawn from, with a flag when its value appears in none of the
retrieved passages (the model made it up, or rephrased it beyond recognition).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answering.citations import Citation, citation_for
from rag.answering.claims import supports
from rag.answering.sources import Source

SOURCES_INSTRUCTION = (
    "- The response has two parts: `result`, the requested object, and `sources`, which lists "
    "for each field of `result` the ids of the sources its value was taken from (an empty list "
    "when the field is null or empty)."
)


@dataclass(frozen=True, slots=True)
class FieldSource:
    """Where one top-level field's value came from, and whether the sources bear it out."""

    field: str
    citations: list[Citation]
    supported: bool


def fields_of(schema: dict[str, Any]) -> list[str]:
    """The top-level fields citations are kept for (a non-object shape is one field, "value")."""
    properties = schema.get("properties")
    return list(properties) if schema.get("type") == "object" and isinstance(properties, dict) else ["value"]


def cited_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The user's schema wrapped with a list of source ids per field."""
    ids = {"type": "array", "items": {"type": "integer"}, "maxItems": 8}
    fields = fields_of(schema)
    return {
        "type": "object",
        "properties": {
            "result": schema,
            "sources": {"type": "object", "properties": dict.fromkeys(fields, ids), "required": fields,
                        "additionalProperties": False},
        },
        "required": ["result", "sources"],
        "additionalProperties": False,
    }


def split(output: Any, schema: dict[str, Any], sources: Sequence[Source]) -> tuple[Any, list[FieldSource], int]:
    """The user's object, the sources of each field, and how many ids pointed nowhere."""
    data = output["result"]
    by_number = {s.number: s for s in sources}
    dropped = 0
    found: list[FieldSource] = []
    for name in fields_of(schema):
        value = data if name == "value" and fields_of(schema) == ["value"] else (data or {}).get(name)
        citations = []
        for n in dict.fromkeys(output["sources"].get(name, [])):
            if n in by_number:
                citations.append(citation_for(by_number[n]))
            else:
                dropped += 1
        texts = [c.text for c in citations] or [s.text for s in sources]
        found.append(FieldSource(name, citations, supported(value, texts)))
    return data, found, dropped


def supported(value: Any, texts: Sequence[str]) -> bool:
    """Whether every text and number in ``value`` can be found in ``texts`` (the test a cited
    sentence gets: numbers as numbers, longer text word by word)."""
    return all(supports(leaf, texts) for leaf in _leaves(value))


def _leaves(value: Any) -> Iterator[str]:
    """The checkable scalars of a value: strings and numbers (booleans and nulls claim nothing)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(int(value)) if isinstance(value, float) and value.is_integer() else f"{value:.15g}"
