"""``archivist-cli ask`` and ``extract``: answers printed (text or JSON lines) and extractions written."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import TYPE_CHECKING

from archivist.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from engine.cancel import CancelToken
from engine.catalog import STARTER_NOTE
from rag.documents import display_path

if TYPE_CHECKING:
    from rag.answering.ask import AnswerResult, Retrieved
    from rag.answering.sources import Source
    from rag.knowledge_base import KnowledgeBase


def ask_command(kb: KnowledgeBase, args: argparse.Namespace, collection: str, effort: str, cite_every_sentence: bool,
                starts_within: float) -> int:
    from engine import AnswerDelta, Loading, Reading, ReasoningDelta
    from rag.answering.ask import Answered, AskFailed, AskOptions, Retrieved
    from rag.answering.schemas import resolve

    schema = resolve(args.schema) if args.schema else None
    options = AskOptions(paths=args.files, schema=schema, effort=effort, use_cache=not args.no_cache,
                         cite_every_sentence=cite_every_sentence, starts_within=float(starts_within))
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    if args.format in ("json", "events"):
        from rag.service import codec

        failed: AskFailed | None = None
        try:
            for event in kb.ask(args.question, collection, options, cancel):
                if args.format == "events":
                    print(codec.dumps(event), flush=True)
                elif isinstance(event, Answered):
                    print(json.dumps(answer_json(event.result), ensure_ascii=False, indent=2))
                failed = event if isinstance(event, AskFailed) else failed
        finally:
            signal.signal(signal.SIGINT, previous)
        if failed is not None and args.format == "json":
            print(json.dumps({"error": str(failed.error), "type": type(failed.error).__name__}, ensure_ascii=False))
        return EXIT_ERROR if failed else EXIT_OK
    out, err = sys.stdout, sys.stderr
    reasoning_open = False
    try:
        for event in kb.ask(args.question, collection, options, cancel):
            if isinstance(event, Retrieved):
                print(f"({_sources_line(event)})", file=err)
                if event.quote is not None:  # the starter model: a source's own words first
                    print(f"“{event.quote.text}” [{event.quote.number}]\n", file=out, flush=True)
            elif isinstance(event, Loading):
                print(f"(loading {event.model}…)", file=err)
            elif isinstance(event, Reading):  # one line, rewritten as the reading goes on
                end = "\n" if event.done >= event.total - 1 else ""
                print(f"\r(reading the sources: {event.done:,} of {event.total:,} tokens…)", end=end, file=err, flush=True)
            elif isinstance(event, ReasoningDelta) and args.show_reasoning:
                if not reasoning_open:
                    print("reasoning: ", end="", file=err)
                    reasoning_open = True
                print(event.text, end="", file=err, flush=True)
            elif isinstance(event, AnswerDelta) and schema is None:
                if reasoning_open:
                    print("\n", file=err)
                    reasoning_open = False
                print(event.text, end="", file=out, flush=True)
            elif isinstance(event, AskFailed):
                print(f"\narchivist-cli: {event.error}", file=err)
                return EXIT_INTERRUPTED if cancel.cancelled else EXIT_ERROR
            elif isinstance(event, Answered):
                _print_answer(event.result, schema is not None)
    finally:
        signal.signal(signal.SIGINT, previous)
    return EXIT_OK


def _sources_line(event: Retrieved) -> str:
    """How many sources the model reads, and why no more: "4 of 12 passages found: what the model
    reads in 5 s here (126 tokens/s); retrieval"."""
    if event.speed and event.found > len(event.sources):
        return (f"{len(event.sources)} of {event.found} passages found: what the model reads in "
                f"{event.starts_within:g} s here ({event.speed:.0f} tokens/s); {event.mode}")
    return f"{len(event.sources)} sources, {event.mode}"


def answer_json(result: AnswerResult) -> dict[str, object]:
    """One answer as one JSON object: the text, every source it was drawn from, its citations
    and whether the sources bear out each sentence."""

    def place(s: Source) -> dict[str, object]:
        return {"number": s.number, "file": display_path(s.path), "page": s.page, "section": s.heading,
                "start": s.start, "end": s.end}

    cited = {c.number for c in result.citations}
    return {
        "question": result.question,
        "answer": result.answer,
        "data": result.data,
        "mode": result.mode,
        "model": result.model,
        "finish": result.finish,
        "cached": result.cached,
        "sources": [{**place(s), "cited": s.number in cited, "text": s.text} for s in result.sources],
        "citations": [{**place(c), "snippet": c.snippet} for c in result.citations],
        "quote": {"number": result.quote.number, "text": result.quote.text} if result.quote else None,
        "claims": [
            {"sentence": c.text, "start": c.start, "end": c.end, "cites": list(c.cited), "supported": c.supported,
             "problem": c.problem or None, "suggested": c.suggested}
            for c in result.claims
        ],
        "fields": [
            {"field": f.field, "supported": f.supported, "cites": [c.number for c in f.citations]}
            for f in result.field_sources
        ],
        "dropped_citations": result.dropped_citations,
    }


def _print_answer(result: AnswerResult, structured: bool) -> None:
    out = sys.stdout
    if structured:
        print(json.dumps(result.data, indent=2, ensure_ascii=False), file=out)
    else:
        print(file=out)
    if result.finish == "length":
        print("(the answer reached its length limit and was cut short)", file=sys.stderr)
    elif result.finish == "repetition":
        print("(the answer was stopped: the model was writing the same words again and again)", file=sys.stderr)
    if result.stand_in:
        print(f"(written by {result.model}, {STARTER_NOTE}; check each sentence against its source)", file=sys.stderr)
    if result.cached:
        how = "same question" if result.cached == "exact" else "a similar question"
        print(f"(from the answer cache: {how})", file=sys.stderr)
    cited = {c.number for c in result.citations}
    if result.sources:
        print("\nSources:" if cited else "\nSources (the answer cites none of them):", file=out)
        for s in result.sources:
            where = f", page {s.page}" if s.page is not None else ""
            also = "" if s.number in cited or not cited else "  (read, not cited)"
            print(f"  [{s.number}] {display_path(s.path)}{where}{also}", file=out)
    else:
        print("\n(no source: nothing in the collection matched)", file=out)
    flagged = result.flagged
    if flagged:
        print(f"\nCheck {len(flagged)} of {len(result.claims)} sentence(s):", file=out)
        for c in flagged:
            hint = f"; [{c.suggested}] holds it" if c.suggested is not None else ""
            print(f"  - “{c.text}”: {c.problem}{hint}", file=out)
    for f in result.field_sources:
        if not f.supported:
            print(f"  - field {f.field!r}: its value is in none of its sources", file=out)
    if result.dropped_citations:
        print(f"({result.dropped_citations} citation(s) pointed to no source and were removed)", file=sys.stderr)


def extract_command(kb: KnowledgeBase, args: argparse.Namespace, collection: str, effort: str) -> int:
    from archivist.extract import ExtractionProgress, extract, write_csv, write_jsonl
    from rag.answering.schemas import resolve

    schema = resolve(args.schema)
    suffix = args.out.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        print("archivist-cli: --out must end in .jsonl or .csv", file=sys.stderr)
        return EXIT_USAGE
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())

    def progress(state: ExtractionProgress) -> None:
        if state.current is not None:
            print(f"[{state.done + 1}/{state.total}] {state.current.name}", file=sys.stderr)

    try:
        rows = list(extract(kb, collection, schema, progress, cancel, effort))
    finally:
        signal.signal(signal.SIGINT, previous)
    count = (write_jsonl if suffix == ".jsonl" else write_csv)(rows, args.out)
    failed = [r for r in rows if r.error]
    for row in failed:
        print(f"failed   {display_path(row.path)}: {row.error}", file=sys.stderr)
    print(f"{count} documents written to {args.out}" + (" (stopped early)" if cancel.cancelled else ""))
    if cancel.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if failed else EXIT_OK


def indent(text: str, spaces: int, limit: int) -> str:
    if len(text) > limit:
        text = text[:limit].rstrip() + " …"
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())
