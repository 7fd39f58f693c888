"""``archivist-cli ask`` and ``extract``: answers printed (text or JSON lines) and extractions written."""

from __future__ import annotations

import signal
import sys

from engine.cancel import CancelToken
from rag.app.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from rag.documents import display_path


def ask_command(kb, args, collection: str, effort: str) -> int:
    from engine import AnswerDelta, Loading, ReasoningDelta
    from rag.ask import Answered, AskFailed, AskOptions, Retrieved
    from rag.schemas import resolve

    schema = resolve(args.schema) if args.schema else None
    options = AskOptions(paths=args.files, schema=schema, effort=effort, use_cache=not args.no_cache)
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    if args.format == "json":
        from rag import codec

        failed = False
        try:
            for event in kb.ask(args.question, collection, options, cancel):
                print(codec.dumps(event), flush=True)
                failed |= isinstance(event, AskFailed)
        finally:
            signal.signal(signal.SIGINT, previous)
        return EXIT_ERROR if failed else EXIT_OK
    out, err = sys.stdout, sys.stderr
    reasoning_open = False
    try:
        for event in kb.ask(args.question, collection, options, cancel):
            if isinstance(event, Retrieved):
                print(f"({len(event.sources)} sources, {event.mode})", file=err)
            elif isinstance(event, Loading):
                print(f"(loading {event.model}…)", file=err)
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


def _print_answer(result, structured: bool) -> None:
    import json

    out = sys.stdout
    if structured:
        print(json.dumps(result.data, indent=2, ensure_ascii=False), file=out)
    else:
        print(file=out)
    if result.cached:
        how = "same question" if result.cached == "exact" else f"similar question: {result.cached_question!r}"
        print(f"(from the answer cache: {how})", file=sys.stderr)
    cited = result.citations or ([] if not structured else result.sources)
    if cited:
        print("\nSources:", file=out)
        for c in cited:
            where = f", page {c.page}" if c.page is not None else ""
            print(f"  [{c.number}] {display_path(c.path)}{where}", file=out)
    if result.dropped_citations:
        print(f"({result.dropped_citations} citation(s) pointed to no source and were removed)", file=sys.stderr)


def extract_command(kb, args, collection: str, effort: str) -> int:
    from rag.extract import ExtractionProgress, extract, write_csv, write_jsonl
    from rag.schemas import resolve

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
