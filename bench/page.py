"""The team server's web page, measured against a running ``archivist-server`` (part 4 of
bench/team.py, which starts the servers):

a. Weight on first load: sign in as a browser does (the form's POST, the session cookie), load
   ``/`` and every file the page references (``<script src>``, ``<link href>``, ``<img src>``, the
   modules those scripts import, ``url(...)`` in the style sheets), summing the bytes on the wire;
   no reference may point at another origin (target: under 300 KB, no external request).
b. Time to the first answer token, the same questions asked through the page's path (cookie,
   same-origin headers, ``new_conversation``, ``list_conversations`` and ``ask`` on POST /v1/call, the
   NDJSON read until the first ``AnswerDelta``) and through the client ``archivist-cli ask`` uses
   (KnowledgeBaseClient over HttpChannel with the token), alternating: p50/p95 of each and the
   difference (target < 100 ms). Both add the same options to the page's: no answer cache, a fixed prompt.
c. 20 browser users asking at once (20 cookie sessions, one thread each): errors, time to the first
   token p50/p95, and the time until the last answer ended.

In b the inference server has read each question's prompt once before the figures are taken (it
keeps the last prompt it read: whichever path asked second would otherwise find it read), so that the
figures compare the server's paths, not the model's reading, which varies by seconds on a loaded CPU.

The browser is simulated at the HTTP level (httpx making the requests the page's scripts make), not
run: no Chromium start-up, no rendering, no JavaScript time are in these figures.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from engine import AnswerDelta
from rag.answering.ask import AskOptions
from rag.service.client import KnowledgeBaseClient
from rag.service.http_channel import HttpChannel

# What a browser sends: it accepts compressed bodies, and says where a request comes from.
_ACCEPT = {"Accept-Encoding": "gzip, deflate, br", "User-Agent": "archivist-bench (simulated browser)"}
_IMPORT = re.compile(r"""(?:^|[;\s])import\s+(?:[^'";]*?\s+from\s+)?["']([^"']+)["']""", re.MULTILINE)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")
# Options both paths add to what the page sends: a fixed prompt. By default the sources fit the time the
# model is learnt to read in (``starts_within``), learnt from each answer, so that one ask changes the
# next one's prompt, and a prompt the inference server kept from the ask before looks read in no time.
PASSAGES = 4
Percentiles = Callable[[list[float]], tuple[float, float]]  # p50 and p95 in ms, from seconds


class _References(HTMLParser):
    """The URLs a page makes its browser fetch: scripts, style sheets and icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.page_data = ""
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("script", "img") and named.get("src"):
            self.urls.append(str(named["src"]))
        elif tag == "link" and named.get("href") and set((named.get("rel") or "").split()) & {
                "stylesheet", "icon", "preload", "modulepreload", "manifest"}:
            self.urls.append(str(named["href"]))
        self._in_data = tag == "script" and named.get("id") == "page-data"

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.page_data += data

    def handle_endtag(self, tag: str) -> None:
        self._in_data = False


@dataclass
class Load:
    """What one page load fetched: bytes on the wire per URL, and references to other origins."""

    wire: dict[str, int] = field(default_factory=dict)  # URL -> bytes received (status line, headers, body as sent)
    body: dict[str, int] = field(default_factory=dict)  # URL -> body bytes once decoded
    encodings: set[str] = field(default_factory=set)
    external: list[str] = field(default_factory=list)
    page_data: dict[str, object] = field(default_factory=dict)


def _wire_bytes(response: httpx.Response) -> int:
    head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n")
    head += sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + 2
    return head + response.num_bytes_downloaded


def _fetch(browser: httpx.Client, url: str, load: Load, headers: dict[str, str]) -> httpx.Response:
    response = browser.get(url, headers=headers)
    response.raise_for_status()
    load.wire[url] = _wire_bytes(response)
    load.body[url] = len(response.content)
    load.encodings.add(response.headers.get("Content-Encoding", "identity"))
    return response


def load_page(browser: httpx.Client, origin: str, load: Load) -> None:
    """GET ``/`` as a navigation, then every file it references, as a browser would, into ``load``."""
    page = _fetch(browser, f"{origin}/", load, {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"})
    parser = _References()
    parser.feed(page.text)
    if parser.page_data.strip():
        load.page_data = json.loads(parser.page_data)
    waiting = [urljoin(f"{origin}/", ref) for ref in parser.urls]
    while waiting:
        url = waiting.pop(0)
        if urlsplit(url)._replace(path="", query="", fragment="").geturl() != origin:
            load.external.append(url)
            continue
        if url in load.wire:
            continue
        text = _fetch(browser, url, load, {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors"}).text
        if url.endswith((".js", ".mjs")):
            waiting += [urljoin(url, ref) for ref in _IMPORT.findall(text)]
        elif url.endswith(".css"):
            waiting += [urljoin(url, ref) for ref in _CSS_URL.findall(text) if not ref.startswith("data:")]


def sign_in(browser: httpx.Client, origin: str, token: str) -> httpx.Response:
    """The sign-in form sent as the page sends it; the session cookie lands in ``browser``."""
    signed = browser.post(f"{origin}/sign-in", data={"token": token},
                          headers={"Sec-Fetch-Site": "same-origin", "Origin": origin})
    if signed.status_code != 303 or not browser.cookies:
        raise RuntimeError(f"sign-in refused: {signed.status_code} {signed.text[:200]}")
    return signed


def weight(origin: str, token: str, who: str) -> Load:
    """A first visit: the sign-in form and its files, the form sent, the reader and its files."""
    load = Load()
    with httpx.Client(headers=_ACCEPT, timeout=60) as browser:
        load_page(browser, origin, load)  # not signed in yet: the form
        signed = sign_in(browser, origin, token)
        load.wire["POST /sign-in"] = _wire_bytes(signed)
        load.body["POST /sign-in"] = len(signed.content)
        reader = Load()
        load_page(browser, origin, reader)
    for url, size in reader.wire.items():
        if url == f"{origin}/":
            url_key = "/ (the reader, signed in)"
        elif url in load.wire:  # a file the form's page loaded too: the browser has it (or revalidates it: 304)
            continue
        else:
            url_key = url
        load.wire[url_key], load.body[url_key] = size, reader.body[url]
    load.encodings |= reader.encodings
    load.external += reader.external
    load.page_data = reader.page_data
    total, decoded = sum(load.wire.values()), sum(load.body.values())
    encoding = ", ".join(sorted(load.encodings)) + (" = not compressed" if load.encodings == {"identity"} else "")
    print(f"  a. first visit as {who}: {len(load.wire)} responses, {total / 1024:.1f} KB on the wire "
          f"(headers included; bodies {decoded / 1024:.1f} KB decoded; Content-Encoding: {encoding}) "
          f"(target < 300 KB); references to other origins: {len(load.external)}", flush=True)
    for url, size in sorted(load.wire.items(), key=lambda kv: -kv[1]):
        print(f"     {size / 1024:6.1f} KB  {url.removeprefix(origin)}", flush=True)
    for url in load.external:
        print(f"     EXTERNAL: {url}", flush=True)
    assert not load.external, "the page makes the browser fetch from another origin"
    return load


class PageUser:
    """A signed-in browser: its cookie, and the requests the page's scripts make to ask."""

    def __init__(self, origin: str, token: str) -> None:
        self.origin = origin
        self._http = httpx.Client(base_url=origin, headers=_ACCEPT, timeout=httpx.Timeout(60, read=None))
        sign_in(self._http, origin, token)
        self._headers = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Origin": origin,
                         "Content-Type": "application/json"}

    def call(self, name: str, args: dict[str, object]) -> object:
        """A call that is not streamed: its result."""
        response = self._http.post("/v1/call", headers=self._headers,
                                   content=json.dumps({"id": uuid.uuid4().hex, "call": name, "args": args}))
        response.raise_for_status()
        for line in response.text.splitlines():
            message = json.loads(line) if line.strip() else {}
            if "error" in message:
                raise RuntimeError(f"{name}: {message['error']}")
            if "result" in message:
                return message["result"]
        raise RuntimeError(f"{name}: no result")

    def ask(self, question: str, collection: str, answer_tokens: int | None) -> tuple[float, float]:
        """What the page does on a first question (a new conversation, the list refreshed, the ask):
        seconds from the click to the first answer token, and to the answer's end."""
        began = time.perf_counter()
        made = self.call("new_conversation", {"collection": collection, "title": question[:80]})
        self.call("list_conversations", {"collection": collection})
        conversation = made["id"] if isinstance(made, dict) else None
        options: dict[str, object] = {"$type": "AskOptions", "use_cache": False, "passages": PASSAGES,
                                      "starts_within": 0, "conversation": conversation}
        if answer_tokens:
            options["answer_tokens"] = answer_tokens
        body = {"id": uuid.uuid4().hex, "call": "ask", "args": {"question": question, "collection": collection,
                                                               "options": options}}
        first = None
        with self._http.stream("POST", "/v1/call", headers=self._headers, content=json.dumps(body)) as response:
            if response.status_code != 200:
                raise RuntimeError(f"ask: HTTP {response.status_code} {response.read()[:200]!r}")
            for line in response.iter_lines():
                message = json.loads(line) if line.strip() else {}
                event = message.get("event") or {}
                if "error" in message or event.get("$type") == "AskFailed":
                    raise RuntimeError(f"ask: {message.get('error') or event.get('error')}")
                if event.get("$type") == "AnswerDelta" and first is None:
                    first = time.perf_counter() - began
        if first is None:
            raise RuntimeError("ask: the answer had no AnswerDelta")
        return first, time.perf_counter() - began

    def close(self) -> None:
        self._http.close()


def cli_ask(client: KnowledgeBaseClient, question: str, collection: str, answer_tokens: int | None) -> float:
    """Seconds to the first answer token through the client ``archivist-cli ask`` uses."""
    began, first = time.perf_counter(), None
    options = AskOptions(answer_tokens=answer_tokens, use_cache=False, passages=PASSAGES, starts_within=0)
    for event in client.ask(question, collection, options):
        if isinstance(event, AnswerDelta) and first is None:
            first = time.perf_counter() - began
    if first is None:
        raise RuntimeError("cli ask: the answer had no AnswerDelta")
    return first


def first_token(origin: str, token: str, collection: str, questions: list[str], answer_tokens: int | None,
                percentiles: Percentiles) -> None:
    """The page's path against the CLI's. Each question is asked once first (not counted): the inference
    server keeps the last prompt it read, so that whichever path asked second would otherwise skip the
    model's reading of the sources (seconds on this machine, varying by seconds), and the difference
    measured would be the model's, not the paths'. Which path goes first alternates."""
    page = PageUser(origin, token)
    cli = KnowledgeBaseClient(HttpChannel(origin, token))
    times: dict[str, list[float]] = {"page": [], "cli": [], "cold": []}
    try:
        for i, q in enumerate(questions):
            times["cold"].append(cli_ask(cli, q, collection, answer_tokens))
            for path in ["page", "cli"] if i % 2 == 0 else ["cli", "page"]:
                took = page.ask(q, collection, answer_tokens)[0] if path == "page" else cli_ask(cli, q, collection,
                                                                                                 answer_tokens)
                times[path].append(took)
    finally:
        page.close()
        cli.close()
    (page50, page95), (cli50, cli95) = percentiles(times["page"]), percentiles(times["cli"])
    listed = {path: ", ".join(f"{t * 1000:.0f}" for t in times[path]) for path in times}
    print(f"  b. time to the first answer token, {len(questions)} questions each way (alternating which goes first; "
          f"answer cache off; {PASSAGES} passages, starts_within 0; answers of {answer_tokens} tokens; "
          f"the inference server's prompt warm):\n"
          f"     page path (new_conversation, list_conversations, ask) p50 {page50:.0f} ms  p95 {page95:.0f} ms;  "
          f"CLI client (KnowledgeBaseClient over HttpChannel) p50 {cli50:.0f} ms  p95 {cli95:.0f} ms\n"
          f"     page - CLI: p50 {page50 - cli50:+.0f} ms, p95 {page95 - cli95:+.0f} ms (target within 100 ms)\n"
          f"     each: page {listed['page']} ms;  CLI {listed['cli']} ms;  the first, cold ask of each question "
          f"(CLI, not counted): {listed['cold']} ms", flush=True)


def crowd(origin: str, tokens: list[str], collection: str, questions: list[str], answer_tokens: int | None,
          percentiles: Percentiles) -> None:
    """Every user signed in, then all asking at once (a barrier releases them together), each its own
    question: twenty prompts the one inference server reads in turn, so the later users wait for it."""
    users = [PageUser(origin, token) for token in tokens]
    firsts: list[float] = []
    ends: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(len(users) + 1)

    def run(user: PageUser, question: str) -> None:
        gate.wait()
        try:
            first, end = user.ask(question, collection, answer_tokens)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
            return
        with lock:
            firsts.append(first)
            ends.append(end)

    asked = [questions[i % len(questions)] for i in range(len(users))]
    threads = [threading.Thread(target=run, args=(user, question)) for user, question in zip(users, asked)]
    for t in threads:
        t.start()
    gate.wait()
    began = time.perf_counter()
    for t in threads:
        t.join(3600)
    wall = time.perf_counter() - began
    for user in users:
        user.close()
    (p50, p95), (end50, end95) = percentiles(firsts), percentiles(ends)
    print(f"  c. {len(users)} browser users (cookie sessions, one thread each) asking at once, "
          f"{len(set(asked))} different questions (answer cache off; {PASSAGES} passages, starts_within 0; answers "
          f"of {answer_tokens} tokens; one inference server on this machine's cores): "
          f"{len(errors)} errors (target 0); "
          f"first token p50 {p50 / 1000:.2f} s  p95 {p95 / 1000:.2f} s;  answer ended p50 {end50 / 1000:.2f} s  "
          f"p95 {end95 / 1000:.2f} s;  all {len(users)} done in {wall:.2f} s", flush=True)
    for reason in dict.fromkeys(errors):
        print(f"     error: {reason}", flush=True)


def measure(origin: str, tokens: list[str], collection: str, questions: list[str], compared: int,
            percentiles: Percentiles) -> None:
    """Parts a, b and c against the server at ``origin`` (``tokens[0]`` an owner's, the rest readers'):
    ``compared`` of ``questions`` asked each way in b, twenty users each asking one in c."""
    print("4. the web page (a browser simulated at the HTTP level: the requests the page's scripts make, "
          "no Chromium):", flush=True)
    weight(origin, tokens[0], "the collection's owner (manage.js too)")
    reader = weight(origin, tokens[1], "a reader")
    answer_tokens = reader.page_data.get("answer_tokens")
    limit = answer_tokens if isinstance(answer_tokens, int) else None
    first_token(origin, tokens[1], collection, questions[:compared], limit, percentiles)
    crowd(origin, tokens[:20], collection, questions, limit, percentiles)
