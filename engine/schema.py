"""JSON Schemas for structured output: checked before generation, results validated after.

Only keywords that llama.cpp's schema-to-grammar conversion actually enforces are accepted,
so a result that parses under the grammar also validates; anything else is refused up front
with the keyword and where it sits, rather than promised and not kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.errors import GenerationFailed, SchemaInvalid

_STRUCTURE = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions",
    "pattern", "format", "minLength", "maxLength",
}
_ANNOTATIONS = {
    "title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated",
    "readOnly", "writeOnly",
}
_FORMATS = {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}
_SCHEMA_MAPS = {"properties", "$defs", "definitions"}
_COUNTS = {"minItems", "maxItems", "minLength", "maxLength"}
_MAX_COUNT = 1_000
_MAX_SCHEMA = 64_000  # characters of JSON
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}


def check(schema: Any) -> dict[str, Any]:
    """Return the schema if it is valid and fully enforceable, else raise ``SchemaInvalid``."""
    from jsonschema import exceptions, validators

    if not isinstance(schema, dict):
        raise SchemaInvalid("a schema must be a JSON object")
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError) as exc:
        raise SchemaInvalid(f"a schema must be plain JSON ({exc})") from None
    if size > _MAX_SCHEMA:
        raise SchemaInvalid(f"the schema is {size:,} characters; at most {_MAX_SCHEMA:,} are accepted")
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise SchemaInvalid(f"{exc.message} (at {where})") from exc
    _walk(schema, "")
    if schema.get("type") not in ("object", "array") and "$ref" not in schema and not _is_union(schema):
        raise SchemaInvalid("the top level must be an object or an array")
    return schema


def _is_union(schema: dict[str, Any]) -> bool:
    return any(key in schema for key in ("anyOf", "oneOf"))


def _walk(node: Any, where: str) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, dict):
        raise SchemaInvalid(f"expected a schema object at {where or '(top)'}")
    for key, value in node.items():
        here = f"{where}/{key}"
        if key in _ANNOTATIONS:
            continue
        if key not in _STRUCTURE:
            raise SchemaInvalid(f"the keyword {key!r} (at {here}) is not supported in structured mode")
        if key == "$ref" and not str(value).startswith("#"):
            raise SchemaInvalid(f"only references inside the schema are supported (at {here})")
        if key in _COUNTS and not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT):
            raise SchemaInvalid(f"{key} (at {here}) must be a whole number from 0 to {_MAX_COUNT:,}: the grammar "
                                "spells out every item and character it counts")
        if key == "format" and value not in _FORMATS:
            raise SchemaInvalid(f"the string format {value!r} (at {here}) is not supported")
        if key in _SCHEMA_MAPS:
            for name, sub in value.items():
                _walk(sub, f"{here}/{name}")
        elif key in _SCHEMA_LISTS:
            for index, sub in enumerate(value):
                _walk(sub, f"{here}/{index}")
        elif key in ("items", "additionalProperties") and isinstance(value, dict | bool):
            _walk(value, here)


def validate(schema: dict[str, Any], text: str) -> Any:
    """Parse ``text`` as JSON and validate it against ``schema``; the object, or ``GenerationFailed``."""
    from jsonschema import exceptions, validators

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenerationFailed(f"the answer is not valid JSON ({exc.msg} at character {exc.pos})") from exc
    validator = validators.validator_for(schema)(schema)
    error = exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise GenerationFailed(f"the answer does not match the schema: {error.message} (at {where})")
    return data


# llama-cpp-python's port lets raw control characters into strings (``[^"\\]``), which JSON
# forbids; this is the rule llama.cpp's own converter uses.
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


def finished(schema: dict[str, Any] | None, finish: str, max_tokens: int, text: str) -> Any:
    """A structured answer's data, validated against ``schema``; None for a free-text answer
    (``schema`` None). A structured answer cut at its token limit, or stopped going round in a
    loop, is no answer: ``GenerationFailed`` says which."""
    if schema is None:
        return None
    if finish == "length":
        raise GenerationFailed(f"the structured answer reached its {max_tokens}-token limit before it was complete; "
                               "ask for less, or allow a longer answer")
    if finish == "repetition":
        raise GenerationFailed("the model went round in a loop, writing the same words again and again; ask again")
    return validate(schema, text)


def grammar_text(schema: dict[str, Any]) -> str:
    """The GBNF grammar llama.cpp samples under for ``schema``."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(json.dumps(schema))
    except (AssertionError, KeyError, ValueError, TypeError, NotImplementedError) as exc:
        raise SchemaInvalid(f"cannot turn it into a grammar ({exc})") from exc
    return re.sub(r"^char ::= .*$", lambda _m: _STRICT_CHAR, grammar, count=1, flags=re.MULTILINE)
