"""A source for every field of a structured answer.

The model is asked for ``{"result": <the user's shape>, "sources": {field: [ids]}}``: the
schema it samples under is the user's, wrapped, so the citations cannot be left out. The
answer is then split again: the user gets their object unchanged, and per top-level field
the citations it was drawn from, with a flag when its value appears in none of the
retrieved passages (the model made it up, or rephrased it beyond recognition).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.citations import Citation, citation_for
from rag.sources import Source

SOURCES_INSTRUCTION = (
    "- The response has two parts: `result`, the requested object, and `sources`, which lists "
    "for each field of `result` the ids of the sources its value was taken from (an empty list "
    "when the field is null or empty)."
)
# Share of a text value's words that must occur in the sources for it to count as supported.
_WORD_SHARE = 0.8


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
    """Whether every text and number in ``value`` can be found in ``texts`` (word by word
    for longer text, so that a value the model shortened or re-cased still counts)."""
    haystack = normalise(" ".join(texts))
    words = set(_WORD.findall(haystack))
    for leaf in _leaves(value):
        needle = normalise(leaf)
        if not needle or needle in haystack:
            continue
        wanted = [w for w in _WORD.findall(needle) if len(w) > 2 or w.isdigit()]
        if not wanted or sum(w in words for w in wanted) / len(wanted) < _WORD_SHARE:
            return False
    return True


_WORD = re.compile(r"\w+", re.UNICODE)


_THOUSANDS = re.compile(r"(?<=\d)[,\u202f ](?=\d{3}\b)")


def normalise(text: str) -> str:
    """Case, width and spacing folded; 1,250,000 read as 1250000."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return _THOUSANDS.sub("", text)


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
