"""``archivist-cli``: the knowledge base from a terminal, a thin shell over ``rag``.

Exit codes: 0 success; 1 an error, or some files could not be indexed; 2 bad usage;
130 interrupted (Ctrl+C) after a clean stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archivist import logs
from archivist.cli_answers import ask_command, extract_command, indent
from archivist.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from archivist.settings import Settings
from engine.cancel import CancelToken
from engine.errors import ArchivistError
from rag.documents import display_path
from rag.errors import CollectionNotFound

if TYPE_CHECKING:
    from rag.answering.answer_cache import CacheStats
    from rag.knowledge_base import KnowledgeBase
    from rag.service.client import KnowledgeBaseClient


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archivist-cli", description="Archivist's private knowledge base, from the command line."
    )
    parser.add_argument("--data-dir", type=Path, help="use this data folder instead of the one in the settings")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the log to stderr")
    parser.add_argument("--server", metavar="URL", default="",
                        help="use the team's archivist-server (also ARCHIVIST_SERVER); your token: ARCHIVIST_TOKEN")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("-c", "--collection", help="the collection to use (default: the one in the settings)")
        return sub

    ingest = command("ingest", "index files and folders (recursively)")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--force", action="store_true", help="re-index files even when unchanged")
    ingest.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    search = command("search", "find the passages that best match a query")
    search.add_argument("query")
    search.add_argument("-k", "--limit", type=int, default=5, help="how many passages (default 5)")
    search.add_argument("--file", type=Path, action="append", dest="files", help="search only this file (repeatable)")

    command("status", "list collections, or one collection's documents and failures")

    sync = command("sync", "keep a collection in step with a folder: adds, changes, removals")
    sync.add_argument("folder", type=Path)
    sync.add_argument("--watch", action="store_true", help="keep watching the folder until Ctrl+C")
    sync.add_argument("--rescan", type=float, default=60.0, metavar="MINUTES",
                      help="with --watch, also re-check the whole folder this often (default 60)")

    checkup = command("checkup", "run the collection's saved test questions: hit rate at 5, misses, change")
    checkup.add_argument("--add", metavar="QUESTION", help="save a test question (with --expect)")
    checkup.add_argument("--expect", metavar="FILE", help="the document that should answer it (name or path)")
    checkup.add_argument("--passage", default="", help="a phrase of the passage that answers it (optional)")
    checkup.add_argument("--remove", metavar="QUESTION", help="forget a saved test question")
    checkup.add_argument("--list", action="store_true", help="list the saved questions and their last ranks")

    command("reembed", "rebuild a collection's vectors with the embedding model now set (after changing it)")

    adapter = command("adapter", "answer from a collection with a LoRA adapter made for the model (law, medicine...)")
    adapter.add_argument("file", type=Path, nargs="?", help="the adapter (GGUF); without it, show the one in use")
    adapter.add_argument("--none", action="store_true", help="answer without an adapter again")

    remove = command("remove", "forget files or folders (the files on disk are not touched)")
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    ask = command("ask", "answer a question from the documents, with sources")
    ask.add_argument("question")
    ask.add_argument("--schema", metavar="NAME|FILE", help="answer as JSON in this shape (a shipped schema or a file)")
    ask.add_argument("--file", type=Path, action="append", dest="files", help="answer only from this file (repeatable)")
    ask.add_argument("--no-cache", action="store_true", help="do not use or fill the answer cache")
    ask.add_argument("--cite-every-sentence", action="store_true",
                     help="decode so that every sentence ends with the [n] of a source (see bench/claims.py)")
    ask.add_argument("--show-reasoning", action="store_true", help="print the model's reasoning to stderr")
    ask.add_argument("--effort", choices=["low", "medium", "high"], help="reasoning effort (gpt-oss)")
    ask.add_argument("--starts-within", type=float, metavar="SECONDS",
                     help="send the sources the model reads in this time on this machine (default 5; 0: all that fit)")
    ask.add_argument("--format", choices=["text", "json", "events"], default="text",
                     help="json: the answer as one JSON object (sources, citations, each sentence checked); "
                          "events: every message on one line of JSON, as the window receives them")

    extract = command("extract", "apply a schema to every document; write JSON Lines or CSV")
    extract.add_argument("--schema", required=True, metavar="NAME|FILE")
    extract.add_argument("--out", required=True, type=Path, help="FILE.jsonl or FILE.csv")
    extract.add_argument("--effort", choices=["low", "medium", "high"])

    cache = commands.add_parser("cache", help="answer cache: stats or clear", description="the answer cache")
    cache.add_argument("action", choices=["stats", "clear"])

    commands.add_parser("whoami", help="with a team server: who the server takes you for")
    grant = command("grant", "with a team server: give a user (or @group) a role on the collection (owners)")
    grant.add_argument("name", help="a user, or @group")
    grant.add_argument("role", choices=["reader", "editor", "owner"])
    revoke = command("revoke", "with a team server: take a user's (or @group's) role on the collection away (owners)")
    revoke.add_argument("name", help="a user, or @group")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    args = _parser().parse_args(argv)
    settings = Settings.load()
    if args.data_dir:
        settings.data_dir = str(args.data_dir)
    logs.configure(settings.log_path, verbose=args.verbose, process="cli")
    collection = getattr(args, "collection", None) or settings.collection
    try:
        from archivist.composition import open_cache, open_knowledge_base, team_server
        from archivist.kb_process import running_knowledge_base

        team = team_server(settings, args.server)
        if args.command in ("whoami", "grant", "revoke"):
            return _team(team, args, collection)
        if args.command == "cache" and team is None:  # this machine's cache, without opening the knowledge base
            cache = open_cache(settings)
            return _cache(cache and cache.stats(), cache.clear if cache else lambda: None, args.action)
        # The team's server; else the open window's knowledge base; else this folder's, opened here.
        kb = team or running_knowledge_base(settings.data_path) or open_knowledge_base(
            settings, with_model=args.command in ("ask", "extract"))
        try:
            if args.command == "cache":
                return _cache(kb.cache_stats(), kb.clear_cache, args.action)
            if args.command == "ask":
                return ask_command(kb, args, collection, args.effort or settings.reasoning_effort,
                                   args.cite_every_sentence or settings.cite_every_sentence,
                                   settings.answer_starts_within if args.starts_within is None else args.starts_within)
            if args.command == "extract":
                return extract_command(kb, args, collection, args.effort or settings.reasoning_effort)
            if args.command == "ingest":
                return _ingest(kb, args.paths, collection, args.force, args.quiet)
            if args.command == "search":
                return _search(kb, args.query, collection, args.limit, args.files)
            if args.command == "status":
                return _status(kb, getattr(args, "collection", None))
            if args.command == "remove":
                return _remove(kb, args.paths, collection)
            if args.command == "checkup":
                return _checkup(kb, collection, args)
            if args.command == "reembed":
                return _reembed(kb, collection)
            if args.command == "adapter":
                return _adapter(kb, collection, args.file, args.none)
            if args.command == "sync":
                return _sync(kb, args.folder, collection, args.watch, args.rescan)
        finally:
            kb.close()
    except ArchivistError as exc:
        print(f"archivist-cli: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("archivist-cli: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`archivist-cli search … | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail again
        return EXIT_OK
    return EXIT_USAGE


def _team(team: KnowledgeBaseClient | None, args: argparse.Namespace, collection: str) -> int:
    if team is None:
        print(f"archivist-cli: {args.command} needs a team server (--server URL or ARCHIVIST_SERVER)", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "whoami":
            me = team.channel.whoami()
            groups = ", ".join(f"@{g}" for g in me["groups"])
            print(f"{me['name']}{' (administrator)' if me['admin'] else ''}{'; groups: ' + groups if groups else ''}")
            return EXIT_OK
        role = args.role if args.command == "grant" else None
        if not team.channel.grant(args.name, collection, role):
            print(f"archivist-cli: {args.name} had no role on {collection!r}", file=sys.stderr)
            return EXIT_ERROR
        print(f"{args.name} is now {role} of {collection!r}." if role else f"{args.name} no longer has a role on {collection!r}.")
        return EXIT_OK
    finally:
        team.close()


def _ingest(kb: KnowledgeBase, paths: list[Path], collection: str, force: bool, quiet: bool) -> int:
    from tqdm import tqdm

    missing = [p for p in paths if not p.exists()]
    for path in missing:
        print(f"archivist-cli: {display_path(path)}: no such file or folder", file=sys.stderr)
    paths = [p for p in paths if p.exists()]
    if not paths:
        return EXIT_ERROR
    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    bar = None if quiet or not sys.stderr.isatty() else tqdm(total=0, unit="B", unit_scale=True, file=sys.stderr)

    def progress(state) -> None:
        if bar is None:
            return
        bar.total = state.bytes_total
        bar.n = state.bytes_done
        name = state.current.name if state.current else ""
        bar.set_description(f"{state.files_searchable}/{state.files_total} read, {state.files_done} indexed, {state.chunks_done} chunks")
        bar.set_postfix_str(name[:40], refresh=False)
        bar.refresh()

    try:
        report = kb.ingest(paths, collection, progress=progress, cancel=cancel, force=force)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    out = sys.stdout
    for outcome in report.outcomes:
        if outcome.status == "failed":
            print(f"failed   {display_path(outcome.path)}: {outcome.reason}", file=out)
        elif outcome.status == "removed":
            print(f"removed  {display_path(outcome.path)}", file=out)
        else:
            if outcome.recognized:
                print(f"text     {display_path(outcome.path)}: recognized on {outcome.recognized} page(s)", file=out)
            for warning in outcome.warnings:
                print(f"warning  {display_path(outcome.path)}: {warning}", file=out)
    print(
        f"{report.count('indexed')} indexed ({report.chunks} chunks), {report.count('unchanged')} unchanged, "
        f"{report.count('failed')} failed, {report.count('removed')} removed"
        + (f", {report.skipped} skipped (unsupported type)" if report.skipped else "")
        + f" into {collection!r} in {report.seconds:.1f}s",
        file=out,
    )
    if report.cancelled:
        print("archivist-cli: stopped; run the same command again to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR if report.failures or missing else EXIT_OK


def _checkup(kb: KnowledgeBase, collection: str, args: argparse.Namespace) -> int:
    from rag.answering.checkup import CheckQuestion

    if args.add:
        if not args.expect:
            print("archivist-cli: --add needs --expect FILE, the document that should answer it", file=sys.stderr)
            return EXIT_USAGE
        state = kb.add_check(collection, CheckQuestion(args.add, args.expect, args.passage))
        print(f"saved; {len(state.questions)} test questions for {collection!r}")
        return EXIT_OK
    if args.remove:
        state = kb.remove_check(collection, args.remove)
        print(f"removed; {len(state.questions)} test questions for {collection!r}")
        return EXIT_OK
    state = kb.checkup(collection)
    if not state.questions:
        print(f"no test questions for {collection!r} yet; add one with: "
              "archivist-cli checkup --add QUESTION --expect FILE", file=sys.stderr)
        return EXIT_ERROR
    last = state.last
    if args.list:
        for q in state.questions:
            rank = last.ranks.get(q.question) if last else None
            shown = "-" if last is None else (f"#{rank}" if rank else "miss")
            print(f"{shown:>5}  {q.question}  ->  {q.document}" + (f" ({q.passage!r})" if q.passage else ""))
        return EXIT_OK
    report = kb.run_checkup(collection)
    for q in state.questions:
        rank = report.run.ranks[q.question]
        print(f"{'#' + str(rank) if rank else 'miss':>5}  {q.question}")
    print(report.summary())
    for question in report.newly_missed:
        print(f"  now missed: {question}")
    for question in report.newly_found:
        print(f"  now found:  {question}")
    return EXIT_OK if not report.run.missed() else EXIT_ERROR


def _reembed(kb: KnowledgeBase, collection: str) -> int:
    from tqdm import tqdm

    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    bar = tqdm(total=0, unit=" passages", file=sys.stderr, disable=not sys.stderr.isatty())

    def progress(step) -> None:
        bar.total = step.total
        bar.update(step.done - bar.n)

    from rag.errors import ReembedCancelled

    try:
        info = kb.reembed(collection, progress, cancel)
    except ReembedCancelled as exc:
        print(f"archivist-cli: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    print(f"{info.name!r} re-embedded with {info.embedder}")
    return EXIT_OK


def _sync(kb: KnowledgeBase, folder: Path, collection: str, watch: bool, rescan_minutes: float) -> int:
    """One pass over the folder, then (``watch``) the changes as they happen; every line is
    also in the log file, for an administrator to read later."""
    import logging
    import threading

    from rag.indexing.folder_changes import FolderWatcher, apply_changes

    if not folder.is_dir():
        print(f"archivist-cli: {display_path(folder)}: no such folder", file=sys.stderr)
        return EXIT_ERROR
    log = logging.getLogger("archivist.sync")
    lock = threading.Lock()
    failed = False

    def say(text: str) -> None:
        log.info(text)
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {text}", flush=True)

    def report(outcomes) -> None:
        nonlocal failed
        for o in outcomes:
            if o.status == "unchanged":
                continue
            detail = {"indexed": f"{o.chunks} chunks", "failed": o.reason}.get(o.status, "")
            say(f"{o.status:8} {display_path(o.path)}" + (f"  ({detail})" if detail else ""))
            failed |= o.status == "failed"

    def full_pass() -> None:
        with lock:
            result = kb.ingest([folder], collection)
        report(result.outcomes)
        say(f"in step: {collection!r} holds {kb.status(collection).count('indexed')} documents of {display_path(folder)}")

    def on_changes(changes) -> None:
        try:
            with lock:
                outcomes = apply_changes(kb, collection, changes)
        except ArchivistError as exc:  # the store down: say so, the next rescan catches up
            say(f"error    {exc}")
            return
        report(outcomes)

    full_pass()
    if not watch:
        return EXIT_ERROR if failed else EXIT_OK
    watcher = FolderWatcher([folder], on_changes)
    watcher.start()
    say(f"watching {display_path(folder)} (Ctrl+C to stop)")
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(max(1.0, rescan_minutes * 60)):
            try:
                full_pass()
            except ArchivistError as exc:
                say(f"error    {exc}")
    finally:
        watcher.stop()
        signal.signal(signal.SIGINT, previous)
    say("stopped watching")
    return EXIT_OK


def _search(kb: KnowledgeBase, query: str, collection: str, limit: int, files: list[Path] | None) -> int:
    passages = kb.search(query, collection, limit=limit, paths=files)
    if not passages:
        print("no matching passages", file=sys.stderr)
        return EXIT_OK
    for rank, passage in enumerate(passages, start=1):
        print(f"[{rank}] {passage.location}  (score {passage.score:.4f})")
        print(f"    {display_path(passage.path)}")
        print(indent(passage.text.strip(), 4, 600))
        print()
    return EXIT_OK


def _status(kb: KnowledgeBase, collection: str | None) -> int:
    out = sys.stdout
    if collection is None:
        infos = kb.collections()
        if not infos:
            print("no collections yet; add documents with: archivist-cli ingest PATH", file=out)
        for info in infos:
            status = kb.status(info.name)
            print(
                f"{info.name}: {status.count('indexed')} documents, {status.chunks} chunks, "
                f"{status.count('failed')} failed, {status.count('pending')} unfinished  [{info.embedder}]",
                file=out,
            )
        return EXIT_OK
    status = kb.status(collection)
    print(f"{status.info.name}: {status.count('indexed')} documents, {status.chunks} chunks", file=out)
    for record in status.files:
        detail = {
            "indexed": f"{record.pages} pages, {record.chunks} chunks" if record.pages else f"{record.chunks} chunks",
            "failed": record.reason,
            "pending": "unfinished; run ingest again to finish it",
        }.get(record.status, "")
        print(f"  {record.status:8} {display_path(record.path)}  {detail}", file=out)
    return EXIT_OK


def _adapter(kb: KnowledgeBase, collection: str, file: Path | None, none: bool) -> int:
    if none or file is not None:
        info = kb.set_adapter(collection, None if none else file)
    else:
        info = next((c for c in kb.collections() if c.name == collection), None)
        if info is None:
            raise CollectionNotFound(collection)
    print(f"{info.name}: {'answers with the adapter ' + info.adapter if info.adapter else 'no adapter'}")
    return EXIT_OK


def _remove(kb: KnowledgeBase, paths: list[Path], collection: str) -> int:
    outcomes = kb.remove(paths, collection)
    for outcome in outcomes:
        print(f"removed  {display_path(outcome.path)}")
    if not outcomes:
        print("archivist-cli: nothing indexed under those paths", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _cache(stats: CacheStats | None, clear: Callable[[], None], action: str) -> int:
    """Show or clear an answer cache: this machine's, or a team server's shared one."""
    if stats is None:
        print("the answer cache is turned off in the settings", file=sys.stderr)
        return EXIT_OK
    if action == "clear":
        clear()
        print("answer cache cleared")
        return EXIT_OK
    total = stats.hits + stats.misses
    rate = f" ({stats.hits / total:.0%} hits)" if total else ""
    print(f"{stats.entries} answers, {stats.size_bytes / 2**20:.1f} MiB; {stats.hits} hits, {stats.misses} misses{rate}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
