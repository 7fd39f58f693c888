"""Each field of a structured answer keeps the sources it came from; values no source holds are flagged."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from rag.answering.field_sources import cited_schema, split, supported
from rag.answering.schemas import resolve
from rag.answering.sources import Source

PUMP = "The pump in hall 3 needs oil every 200 hours. Its filter is replaced every spring by the night shift."
BUDGET = "The 2026 maintenance budget is 1,250,000 euros, approved in March."


def sources() -> list[Source]:
    return [
        Source(1, Path("/docs/pump.txt"), None, None, 0, len(PUMP), PUMP, ("a:0",)),
        Source(2, Path("/docs/budget.pdf"), 4, "Budget", 0, len(BUDGET), BUDGET, ("b:0",)),
    ]


def test_the_wrapped_schema_asks_a_source_list_per_field():
    schema = resolve("key_facts").schema
    wrapped = cited_schema(schema)
    answer = {"result": {"subject": "Pump", "facts": ["Oil every 200 hours"]}, "sources": {"subject": [1], "facts": [1]}}
    jsonschema.validate(answer, wrapped)
    assert wrapped["properties"]["sources"]["required"] == ["subject", "facts"]


def test_split_gives_back_the_object_and_flags_what_no_source_holds():
    schema = {"type": "object", "properties": {"interval": {"type": "string"}, "budget": {"type": "number"},
                                               "owner": {"type": "string"}, "note": {"type": ["string", "null"]}}}
    output = {"result": {"interval": "every 200 hours", "budget": 1250000, "owner": "Jane Doe", "note": None},
              "sources": {"interval": [1], "budget": [2, 7], "owner": [1], "note": []}}
    data, fields, dropped = split(output, schema, sources())
    assert data == output["result"] and dropped == 1
    by_field = {f.field: f for f in fields}
    assert [c.number for c in by_field["interval"].citations] == [1] and by_field["interval"].supported
    assert by_field["budget"].citations[0].page == 4 and by_field["budget"].supported
    assert not by_field["owner"].supported  # cited, but the passage says nothing of Jane Doe
    assert by_field["note"].supported and by_field["note"].citations == []


def test_support_is_read_word_by_word_and_number_by_number():
    texts = [PUMP, BUDGET]
    assert supported("the NIGHT shift replaces the filter", texts)
    assert supported(["oil every 200 hours", 1250000.0], texts)
    assert not supported("every 300 hours", texts)
    assert not supported({"who": "the day shift", "when": "spring"}, texts)
    assert supported(True, texts) and supported(None, texts)
