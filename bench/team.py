"""The team server under load: 20 users at once through `archivist-server`, in front of a
Chroma server (`chroma run`) and an inference server (llama-cpp-python's, serving the starter
model so that it fits this machine; on a GPU server vLLM takes its place).

1. Overhead: the same searches, one at a time, made directly (a KnowledgeBase in this
   process, on the same Chroma server, with the same embedding model) and through the server
   (HTTP, sign-in, rights, audit): p50 of each, and the difference (target < 10 ms).
2. Load: 20 users for --seconds, each searching three times for every question it asks,
   through the server and then directly (20 threads on one in-process KnowledgeBase, as the
   server runs them): search p50/p95, answers/s, errors, lost calls.
3. The answer cache on a day's question log: 20 people asking 30 questions about the corpus,
   popular ones often, in their own words (paraphrases, other casing and punctuation). Share
   of model calls the team's one cache saves, asked through the server; and, for comparison,
   the share if each person had a cache of their own (the same cache code and embedder).
4. The web page (bench/page.py): its weight on first load, the time to the first answer token
   through the page against the CLI's client, and 20 browser users asking at once.
5. Replicas (bench/replicas.py, on servers of its own: PostgreSQL, Redis, Chroma, two
   ``serve --replica``): searches/s and p95 with two replicas against one (a ratio near 1.0 on one
   machine's cores), a grant's time to hold on the other replica, and requests lost when one is killed.
   Not in the default run: ``--replicas`` (or ``--parts 5``).

    python bench/team.py [--seconds 60] [--users 20] [--parts 1234] [--page] [--replicas [--replica-seconds 20]]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))

from rag import offline

offline.enforce()

import page
import replicas
from corpus import paragraphs

from engine import ArchivistError, RemoteEngine, backends
from engine.catalog import starter_model_path
from rag.answering.answer_cache import SIMILAR_THRESHOLD, AnswerCache, normalise
from rag.answering.ask import AskOptions, collect_answer
from rag.embedding import Embedder
from rag.knowledge_base import KnowledgeBase
from rag.service.client import KnowledgeBaseClient
from rag.service.http_channel import HttpChannel
from rag.storage.vectors import VectorStore
from server.accounts import Accounts, Role

COLLECTION = "Team"
PAGE_ANSWER_TOKENS = 32  # the page's answers stop here (the server's web_answer_tokens), so that part 4 ends soon
SEARCHES = [
    "How do I parse command line arguments?", "How can I compress a file with gzip?", "Is there a thread safe queue?",
    "How should a password be hashed?", "How do I read a CSV file with a custom delimiter?", "What is a named tuple?",
    "How can I schedule a function call for later?", "How do I pick a random sample without replacement?",
    "How do I create a temporary directory?", "How are dates formatted in UTC?",
]
# The day's questions: (how it is usually asked, how else people put it).
LOG_QUESTIONS = [
    ("How do I parse command line arguments?", "How can I parse arguments from the command line?"),
    ("How can I compress a file with gzip?", "How do I gzip a file?"),
    ("Is there a thread safe queue?", "Which queue is safe to use from several threads?"),
    ("How should a password be hashed?", "What is the right way to hash a password?"),
    ("How do I read a CSV file?", "How can I read a CSV file?"),
    ("What is a named tuple?", "What are named tuples?"),
    ("How do I create a temporary directory?", "How can I make a temporary directory?"),
    ("How do I copy a file?", "How can I copy a file?"),
    ("How do I start a subprocess?", "How can I run another program as a subprocess?"),
    ("How do I parse JSON?", "How can I decode a JSON document?"),
    ("How do I get the current time in UTC?", "How can I get the current UTC time?"),
    ("How do I walk a directory tree?", "How can I walk through a directory tree?"),
    ("How do I write a log message?", "How can I write a message to the log?"),
    ("How do I generate a random number?", "How can I generate a random number?"),
    ("How do I match a regular expression?", "How can I match text with a regular expression?"),
    ("How do I open a ZIP archive?", "How can I open a zip archive?"),
    ("How do I send an HTTP request?", "How can I send a request over HTTP?"),
    ("How do I make a UUID?", "How can I generate a UUID?"),
    ("How do I compare two sequences?", "How can I compare two sequences and see the differences?"),
    ("How do I sort with a key function?", "How can I sort items using a key function?"),
    ("How do I cache the results of a function?", "How can I memoize a function?"),
    ("How do I run code in parallel threads?", "How can I run code in several threads?"),
    ("How do I store data in SQLite?", "How can I save data in an SQLite database?"),
    ("How do I compute the median?", "How can I calculate the median of a list?"),
    ("How do I wrap long lines of text?", "How can I wrap text to a width?"),
    ("How do I define an enumeration?", "How can I define an enum?"),
    ("How do I read a tar file?", "How can I extract a tar archive?"),
    ("How do I serialize an object with pickle?", "How can I pickle an object?"),
    ("How do I use a context manager?", "How can I write a context manager?"),
    ("How do I format a decimal number?", "How can I format a Decimal?"),
]


def day_log(users: int, asks_per_user: int, seed: int = 7) -> list[tuple[int, str]]:
    """(user, question) in the order asked: popular questions asked often (Zipf, s=1), each
    person in their own words: the usual wording half the time, the other wording a third of
    the time, else the usual one with other casing and punctuation."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(LOG_QUESTIONS))]
    asks: list[tuple[float, int, str]] = []
    for user in range(users):
        for _ in range(asks_per_user):
            usual, other = LOG_QUESTIONS[rng.choices(range(len(LOG_QUESTIONS)), weights)[0]]
            roll = rng.random()
            words = usual if roll < 0.5 else other if roll < 0.83 else usual.lower().rstrip("?") + " ?"
            asks.append((rng.random(), user, words))
    return [(user, words) for _, user, words in sorted(asks)]


def wait_for(url: str, process: subprocess.Popen, log: Path, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited; see {log}")
        try:
            if httpx.get(url, timeout=1, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not start; see {log}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env or dict(os.environ))


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values) or [float("nan")]
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def load(users: int, seconds: float, work: Callable[[int, int], tuple[str, float, bool]]) -> dict[str, object]:
    """Each user calls ``work(user, round)`` until ``seconds`` pass; rounds begun are waited for."""
    searches: list[float] = []
    answers: list[float] = []
    errors = [0]
    begun = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def user(index: int) -> None:
        round_ = 0
        while time.monotonic() < deadline:
            with lock:
                begun[0] += 1
            kind, took, ok = work(index, round_)
            with lock:
                if not ok:
                    errors[0] += 1
                else:
                    (searches if kind == "search" else answers).append(took)
            round_ += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 900)
    wall = time.perf_counter() - started
    return {"searches": searches, "answers": answers, "errors": errors[0],
            "lost": begun[0] - len(searches) - len(answers) - errors[0], "wall": wall}


def mixed(clients: list, label: str, users: int, seconds: float) -> dict[str, object]:
    """Three searches for every question asked (answers of 32 tokens, the cache off)."""

    def work(user: int, round_: int) -> tuple[str, float, bool]:
        question = SEARCHES[(user + round_) % len(SEARCHES)]
        began = time.perf_counter()
        try:
            if round_ % 4 == 3:
                result = collect_answer(clients[user].ask(question, COLLECTION,
                                                          AskOptions(answer_tokens=32, passages=4, use_cache=False)))
                ok = bool(result.answer.strip())
                return "ask", time.perf_counter() - began, ok
            found = bool(clients[user].search(question, COLLECTION, limit=8))
            return "search", time.perf_counter() - began, found
        except Exception as exc:  # noqa: BLE001 - counted and shown
            print(f"    {label}: {type(exc).__name__}: {exc}", flush=True)
            return "error", 0.0, False

    result = load(users, seconds, work)
    p50, p95 = percentiles(result["searches"])
    print(f"  {label:28} search p50 {p50:7.1f} ms  p95 {p95:7.1f} ms ({len(result['searches'])} searches);  "
          f"{len(result['answers']) / result['wall']:.2f} answers/s;  {result['errors']} errors, {result['lost']} lost",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each load runs")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--log-asks", type=int, default=8, help="questions each person asks in the day's log")
    parser.add_argument("--parts", default="1234", help="which parts to run (default 1234; 5: the replicas')")
    parser.add_argument("--page", action="store_true", help="only the web page's part (--parts 4)")
    parser.add_argument("--questions", type=int, default=3, help="questions each way in the page's part")
    parser.add_argument("--replicas", action="store_true", help="only the replicas' part (--parts 5)")
    parser.add_argument("--replica-seconds", type=float, default=20.0, help="how long each load of part 5 runs")
    args = parser.parse_args()
    if args.page:
        args.parts = "4"
    if args.replicas:
        args.parts = "5"
    if set(args.parts) & set("1234"):
        one_server(args)
    if "5" in args.parts:
        replicas.measure(args.replica_seconds, args.users)


def one_server(args: argparse.Namespace) -> None:
    """Parts 1 to 4, on one server in front of Chroma and the inference server."""
    model = starter_model_path()
    assert model is not None, "the starter model is missing; run make test"
    texts = paragraphs()[:600]
    root = Path(tempfile.mkdtemp(prefix="archivist-team-bench-"))
    processes: list[subprocess.Popen] = []
    try:
        corpus = root / "corpus"
        corpus.mkdir()
        for i in range(0, len(texts), 20):
            (corpus / f"doc{i // 20:03}.txt").write_text("\n\n".join(texts[i : i + 20]))
        chroma_port, llama_port, server_port = free_port(), free_port(), free_port()
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
        processes.append(start([chroma, "run", "--path", str(root / "chroma"), "--port", str(chroma_port)],
                               root / "chroma.log", dict(os.environ, ANONYMIZED_TELEMETRY="False")))
        processes.append(start(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "starter",
             "--host", "127.0.0.1", "--port", str(llama_port), "--n_ctx", "8192", "--interrupt_requests", "False"],
            root / "inference.log", {**os.environ, **backends.load().environment()}))
        inference = f"http://127.0.0.1:{llama_port}/v1"
        wait_for(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", processes[0], root / "chroma.log")
        wait_for(f"{inference}/models", processes[1], root / "inference.log")
        home = root / "server"
        home.mkdir()
        (home / "server.toml").write_text(
            f'chroma_host = "127.0.0.1"\nchroma_port = {chroma_port}\nremote_base_url = "{inference}"\n'
            f'remote_model = "starter"\ncontext_size = 8192\n[server]\nweb_answer_tokens = {PAGE_ANSWER_TOKENS}\n')
        accounts = Accounts(home / "accounts.db")
        tokens = [accounts.add_user(f"user{i:02}", admin=i == 0) for i in range(args.users)]
        for i in range(1, args.users):
            accounts.grant(f"user{i:02}", COLLECTION, Role.READER)
        accounts.close()
        processes.append(start([sys.executable, "-m", "server.cli", "--home", str(home), "serve", "--port",
                                str(server_port)], root / "server.log"))
        url = f"http://127.0.0.1:{server_port}"
        wait_for(f"{url}/v1/health", processes[2], root / "server.log")
        through = [KnowledgeBaseClient(HttpChannel(url, token)) for token in tokens]
        through[0].ingest([corpus], COLLECTION)

        embedder = Embedder() if set("123") & set(args.parts) else None  # the page's part needs neither
        direct = None if embedder is None else KnowledgeBase(
            VectorStore.server("127.0.0.1", chroma_port), embedder, root / "direct-keyword",
            model=RemoteEngine(inference, "starter", timeout=900, context=8192))
        print(f"{len(texts)} paragraphs in {len(list(corpus.iterdir()))} files; {args.users} users; answers from "
              f"{model.name}; {os.cpu_count()} cores; everything on this one machine", flush=True)

        if "1" in args.parts and direct:
            overhead(direct, through[1])
        if "2" in args.parts and direct:
            print(f"2. {args.users} users for {args.seconds:.0f} s, three searches to each question:")
            served = mixed(through, "through archivist-server", args.users, args.seconds)
            alone = mixed([direct] * args.users, "directly (baseline)", args.users, args.seconds)
            added = percentiles(served["searches"])[0] - percentiles(alone["searches"])[0]
            answers = len(served["answers"]) / served["wall"], len(alone["answers"]) / alone["wall"]
            print(f"  search p50 added by the server under load: {added:+.1f} ms;  answers/s ratio "
                  f"{answers[0] / max(1e-9, answers[1]):.2f}", flush=True)
        if "3" in args.parts and embedder:
            day(through, embedder, args, root)
        if "4" in args.parts:
            page.measure(url, tokens, COLLECTION, [usual for usual, _ in LOG_QUESTIONS], args.questions, percentiles)
        for client in through:
            client.close()
        if direct:
            direct.close()
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def overhead(direct: KnowledgeBase, served: KnowledgeBaseClient) -> None:
    print("1. one search at a time (100 each, alternating, after 10 to warm up):")
    for q in SEARCHES:
        direct.search(q, COLLECTION, limit=8)
        served.search(q, COLLECTION, limit=8)
    times: dict[str, list[float]] = {"direct": [], "server": []}
    for i in range(100):
        q = SEARCHES[i % len(SEARCHES)]
        order = [("direct", direct), ("server", served)]
        for label, kb in order if i % 2 else order[::-1]:
            began = time.perf_counter()
            kb.search(q, COLLECTION, limit=8)
            times[label].append(time.perf_counter() - began)
    direct_p50, server_p50 = percentiles(times["direct"])[0], percentiles(times["server"])[0]
    print(f"  direct p50 {direct_p50:.1f} ms   through archivist-server p50 {server_p50:.1f} ms   "
          f"added {server_p50 - direct_p50:+.1f} ms (target < 10 ms)", flush=True)


def day(through: list[KnowledgeBaseClient], embedder: Embedder, args: argparse.Namespace, root: Path) -> None:
    """The day's log through the server (the team's one cache), and the same log run through
    the cache code alone: one cache for the team, and one per person (the baseline)."""
    log = day_log(args.users, args.log_asks)
    print(f"3. a day's question log: {len(log)} questions from {args.users} people, {len(LOG_QUESTIONS)} topics "
          f"(answers of up to 256 tokens; only an answer that ended by itself is cached):", flush=True)
    kinds: dict[str, int] = {"exact": 0, "similar": 0, "model": 0}
    cut, failed, repeats = 0, [], 0
    answered: set[str] = set()
    for user, question in log:
        try:
            result = collect_answer(through[user].ask(question, COLLECTION, AskOptions(answer_tokens=256, passages=4)))
        except ArchivistError as exc:
            result = None
            failed.append(str(exc))
        kinds[result.cached if result and result.cached else "model"] += 1
        cut += bool(result and not result.cached and result.finish == "length")
        form = normalise(question)
        repeats += bool(result and not result.cached and form in answered)  # asked in these words before, yet a miss
        answered.add(form)
    saved = (kinds["exact"] + kinds["similar"]) / len(log)
    print(f"  through the server, the team's one cache: {saved:.0%} of model calls saved ({kinds['exact']} exact, "
          f"{kinds['similar']} near matches, {kinds['model']} model calls: {cut} answers cut at 256 tokens (not "
          f"cached), {len(failed)} failed, {repeats} misses on words asked before)", flush=True)
    for reason in dict.fromkeys(failed):
        print(f"    failed: {reason}", flush=True)
    vectors = {q: embedder.embed_query(q) for q in {q for _, q in log}}

    def replay(cache_of: Callable[[int], AnswerCache]) -> float:
        hits = 0
        for user, question in log:
            if cache_of(user).get(question, "scope", lambda q=question: vectors[q]) is not None:
                hits += 1
            else:
                cache_of(user).put(question, "scope", {"answer": "..."}, vectors[question])
        return hits / len(log)

    team = AnswerCache(root / "replay-team", similar_threshold=SIMILAR_THRESHOLD)
    own = {u: AnswerCache(root / f"replay-{u}", similar_threshold=SIMILAR_THRESHOLD) for u in range(args.users)}
    shared, alone = replay(lambda _u: team), replay(lambda u: own[u])
    print(f"  the cache code alone, every answer cacheable: one cache for the team {shared:.0%} saved, a cache per "
          f"person (baseline) {alone:.0%} saved: {shared / max(1e-9, alone):.1f}x as many model calls saved", flush=True)


if __name__ == "__main__":
    main()
