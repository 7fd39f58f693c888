"""Extraction: one schema applied to every document of a collection, exported as JSON Lines or CSV.

A client's job over the facade's ``status`` and ``ask``: the same code extracts from a knowledge
base in this process, in the window's knowledge-base process, or on a team's server, and the
file is written where the caller is, never on the server.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import CancelToken
from rag.answering.ask import Answered, AnswerResult, AskFailed, AskOptions, Effort
from rag.answering.schemas import NamedSchema
from rag.documents import display_path

if TYPE_CHECKING:
    from rag.knowledge_base import KnowledgeBase


@dataclass(frozen=True, slots=True)
class ExtractionRow:
    """The object extracted from one document, or why there is none."""

    path: Path
    data: Any = None
    error: str = ""
    result: AnswerResult | None = None


@dataclass(frozen=True, slots=True)
class ExtractionProgress:
    done: int
    total: int
    current: Path | None


def extract(
    kb: KnowledgeBase,
    collection: str,
    schema: NamedSchema,
    progress: Callable[[ExtractionProgress], None] | None = None,
    cancel: CancelToken | None = None,
    effort: Effort = "low",
) -> Iterator[ExtractionRow]:
    """Yield one row per indexed document, in path order; stops early when cancelled."""
    cancel = cancel or CancelToken()
    files = [f.path for f in kb.status(collection).files if f.status == "indexed"]
    for index, path in enumerate(files):
        if cancel.cancelled:
            return
        if progress:
            progress(ExtractionProgress(index, len(files), path))
        row = ExtractionRow(path, error="no answer")
        # An answer that failed is this document's row; a call that failed (the knowledge base
        # stopped, a right taken away) stops the extraction.
        for event in kb.ask(f"Extract the {schema.title.lower()} from {path.name}.", collection,
                            AskOptions(paths=[path], schema=schema, effort=effort), cancel):
            if isinstance(event, Answered):
                row = ExtractionRow(path, event.result.data, result=event.result)
            elif isinstance(event, AskFailed):
                row = ExtractionRow(path, error=str(event.error))
        if cancel.cancelled:
            return
        yield row
    if progress:
        progress(ExtractionProgress(len(files), len(files), None))


def extract_to(
    kb: KnowledgeBase, collection: str, schema: NamedSchema, out: Path,
    progress: Callable[[ExtractionProgress], None] | None = None, cancel: CancelToken | None = None,
    effort: Effort = "low",
) -> int:
    """Extract one ``schema`` object per indexed document into ``out`` (.jsonl, else CSV); rows written."""
    return write_rows(extract(kb, collection, schema, progress, cancel, effort), out)


def write_rows(rows: Iterable[ExtractionRow], out: Path) -> int:
    """Write ``rows`` to ``out``: JSON Lines for a ``.jsonl`` file, else CSV; how many were written."""
    return (write_jsonl if out.suffix.lower() == ".jsonl" else write_csv)(rows, out)


def write_jsonl(rows: Iterable[ExtractionRow], out: Path) -> int:
    """One JSON object per line: the file, its data (or error) and the sources used."""
    count = 0
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            record: dict[str, Any] = {"file": display_path(row.path), "data": row.data}
            if row.error:
                record["error"] = row.error
            if row.result is not None:
                record["sources"] = [
                    {"id": c.number, "page": c.page, "start": c.start, "end": c.end} for c in row.result.sources  # type: ignore[attr-defined]
                ]
                record["field_sources"] = {
                    f.field: {"sources": [c.number for c in f.citations], "supported": f.supported}
                    for f in row.result.field_sources
                }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested objects as dotted columns; lists of scalars joined by "; "; lists of objects as JSON."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return {prefix: "; ".join("" if v is None else str(v) for v in value)}
        return {prefix: json.dumps(value, ensure_ascii=False)}
    return {prefix or "value": "" if value is None else str(value)}


def field_source_columns(row: ExtractionRow) -> dict[str, str]:
    """Per field, a "sources of FIELD" column: where its value was read, or that it was not found."""
    out: dict[str, str] = {}
    for f in row.result.field_sources if row.result is not None else []:
        where = "; ".join(
            f"[{c.number}] {c.path.name}" + (f" p. {c.page}" if c.page is not None else "") + (f" ({c.heading})" if c.heading else "")
            for c in f.citations
        )
        out[f"sources of {f.field}"] = where if f.supported else f"NOT FOUND IN THE SOURCES{'; ' + where if where else ''}"
    return out


def write_csv(rows: Iterable[ExtractionRow], out: Path) -> int:
    """A spreadsheet-friendly table: one row per document, one column per (flattened) field,
    and a column per top-level field saying which sources it came from."""
    materialised = list(rows)
    flat = [({**flatten(r.data), **field_source_columns(r)}) if r.data is not None else {} for r in materialised]
    columns: list[str] = []
    for row in flat:
        columns += [c for c in row if c not in columns]
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", *columns, "error"])
        for row, values in zip(materialised, flat, strict=True):
            writer.writerow([display_path(row.path), *(values.get(c, "") for c in columns), row.error])
    return len(materialised)
