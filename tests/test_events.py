"""``/v1/events`` for real: the team server's app on loopback (two replicas sharing a real Redis),
users of different rights listening through the desktop's ``EventStream``, changes made through the
calls, and outside them. A user hears only of collections they may read."""

from __future__ import annotations

import contextlib
import logging
import queue
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from servers import free_port, redis_server, serving

from rag.knowledge_base import KnowledgeBase
from rag.service.client import KnowledgeBaseClient, ServerEvent
from rag.service.http_channel import CONNECTED, EventStream, HttpChannel
from rag.storage.vectors import VectorStore
from server.accounts import Accounts, Role
from server.app import ServerConfig, create_app
from server.audit import AuditLog
from server.event_bus import DOCUMENTS, Change
from server.events import Events

HEARTBEAT = 0.5  # seconds: a revoked token's stream ends within one


@dataclass
class Replicas:
    urls: list[str]
    events: list[Events]
    kb: KnowledgeBase
    accounts: Accounts
    tokens: dict[str, str]
    docs: Path
    redis_url: str = ""
    streams: list[EventStream] = field(default_factory=list)

    def client(self, who: str, replica: int = 0) -> KnowledgeBaseClient:
        return KnowledgeBaseClient(HttpChannel(self.urls[replica], self.tokens[who]))

    def listen(self, who: str, replica: int = 0) -> queue.Queue[tuple[float, ServerEvent]]:
        """``who``'s events on a replica, each with when it arrived; returns once the stream is open."""
        heard: queue.Queue[tuple[float, ServerEvent]] = queue.Queue()
        stream = EventStream(self.urls[replica], self.tokens[who], lambda e: heard.put((time.monotonic(), e)))
        self.streams.append(stream.start())
        assert heard.get(timeout=10)[1] == CONNECTED
        return heard


def _app(kb: KnowledgeBase, accounts: Accounts, home: Path, redis_url: str, watch_every: float) -> tuple[
        FastAPI, Events]:
    """The server's app as ``archivist-server serve`` makes it, with a short heartbeat."""
    config = ServerConfig(home=home, events_heartbeat=HEARTBEAT, events_watch_every=watch_every)
    app = create_app(kb, accounts, AuditLog(home / "audit.jsonl"), config, redis_url)
    return app, app.state.events


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("events")
    home, docs = root / "server", root / "alice-laptop"
    for folder in (home, docs):
        folder.mkdir()
    kb = KnowledgeBase(VectorStore.embedded(root / "kb" / "chroma"), embedder, root / "kb" / "keyword",
                       confine_folders=True)
    for name in ("Team", "Board"):
        kb.create_collection(name)
    accounts = Accounts(home / "accounts.db")
    tokens = {name: accounts.add_user(name) for name in ("alice", "carol", "bob")}
    accounts.grant("alice", "Team", Role.EDITOR)
    accounts.grant("carol", "Team", Role.READER)
    accounts.grant("bob", "Board", Role.READER)  # nothing on Team
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(root / "redis"))
        # Replica 1 hardly watches the store: what reaches its clients at once came through Redis.
        apps = [_app(kb, accounts, home, redis_url, watch_every) for watch_every in (0.3, 60.0)]
        urls = [stack.enter_context(serving(app)) for app, _ in apps]
        team = Replicas(urls, [events for _, events in apps], kb, accounts, tokens, docs, redis_url)
        yield team
        for stream in team.streams:  # before the servers stop: they wait for open streams
            stream.close()
    kb.close()
    accounts.close()


def _kinds(heard: queue.Queue[tuple[float, ServerEvent]], wait: float = 0.0) -> list[ServerEvent]:
    """Everything heard so far, after waiting ``wait`` seconds for more."""
    time.sleep(wait)
    got = []
    while True:
        try:
            got.append(heard.get_nowait()[1])
        except queue.Empty:
            return got


def _until(heard: queue.Queue[tuple[float, ServerEvent]], wanted: ServerEvent, timeout: float = 10.0) -> float:
    """When ``wanted`` arrived (waiting at most ``timeout`` seconds for it)."""
    deadline = time.monotonic() + timeout
    while True:
        at, event = heard.get(timeout=max(0.01, deadline - time.monotonic()))
        if event == wanted:
            return at


def test_an_ingest_is_heard_by_the_collection_s_readers_and_nobody_else(replicas: Replicas):
    alice, carol, bob = (replicas.listen(who) for who in ("alice", "carol", "bob"))
    (replicas.docs / "canteen.txt").write_text("The canteen opens at eight.")
    assert replicas.client("alice").ingest([replicas.docs / "canteen.txt"], "Team").count("indexed") == 1
    team = ServerEvent(DOCUMENTS, "Team")
    _until(alice, team)
    _until(carol, team)
    assert all(e.collection != "Team" for e in _kinds(bob, wait=1.0))  # not a word of a collection he cannot read

    assert replicas.client("alice").new_conversation("Team", "Lunch").title == "Lunch"
    _until(alice, ServerEvent("conversations", "Team"))
    assert all(e.kind != "conversations" for e in _kinds(carol, wait=0.5))  # alice's own

    replicas.accounts.revoke("carol", "Team")  # rights are read at each event, not when the stream opened
    try:
        (replicas.docs / "menu.txt").write_text("Soup on Mondays.")
        replicas.client("alice").ingest([replicas.docs / "menu.txt"], "Team")
        _until(alice, team)
        assert all(e.collection != "Team" for e in _kinds(carol, wait=1.0))
    finally:
        replicas.accounts.grant("carol", "Team", Role.READER)


def test_a_change_through_one_replica_reaches_a_client_of_the_other_within_a_second(replicas: Replicas):
    carol = replicas.listen("carol", replica=1)
    bob = replicas.listen("bob", replica=1)
    (replicas.docs / "parking.txt").write_text("Parking is behind the building.")
    replicas.client("alice", replica=0).ingest([replicas.docs / "parking.txt"], "Team")
    ended = time.monotonic()
    arrived = _until(carol, ServerEvent(DOCUMENTS, "Team"), timeout=1.0)  # replica 1 watches once a minute
    print(f"\ningest through replica 0 -> event at replica 1's client: {max(0.0, arrived - ended) * 1000:.1f} ms "
          "after the ingest returned")

    delays = []
    for _ in range(20):  # the bus alone: a change published on replica 0, heard by carol on replica 1
        sent = time.monotonic()
        replicas.events[0].publish(Change(DOCUMENTS, "Team"))
        delays.append(_until(carol, ServerEvent(DOCUMENTS, "Team"), timeout=1.0) - sent)
    print(f"published on replica 0 -> heard by a client of replica 1: median {statistics.median(delays) * 1000:.1f} ms, "
          f"worst {max(delays) * 1000:.1f} ms of 20")
    assert max(delays) < 1.0
    assert all(e.collection != "Team" for e in _kinds(bob))


def test_a_change_made_outside_the_calls_is_seen_by_the_watcher(replicas: Replicas):
    carol, bob = replicas.listen("carol"), replicas.listen("bob")
    time.sleep(1.0)  # the watcher's first look while someone listens: what it compares with
    (replicas.docs / "followed.txt").write_text("A followed folder's new file.")
    replicas.kb.ingest([replicas.docs / "followed.txt"], "Team")  # as a followed folder, or another process, does
    _until(carol, ServerEvent(DOCUMENTS, "Team"), timeout=5.0)
    assert all(e.collection != "Team" for e in _kinds(bob, wait=0.5))


def test_signed_out_forged_and_revoked_requests_hear_nothing(replicas: Replicas):
    url = replicas.urls[0] + "/v1/events"
    for headers in ({}, {"Authorization": "Bearer arch_" + "x" * 43}, {"X-Remote-User": "alice"}):
        assert httpx.get(url, headers=headers, timeout=10).status_code == 401, headers

    token = replicas.accounts.new_token("bob")
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        replicas.accounts.new_token("bob", replace=True)  # every token of bob's revoked
        started = time.monotonic()
        rest = list(lines)  # the stream ends at the next heartbeat
        assert time.monotonic() - started < 5 * HEARTBEAT and "data" not in "".join(rest)
    replicas.tokens["bob"] = replicas.accounts.new_token("bob")


def test_a_redis_that_is_down_leaves_a_replica_with_its_own_events(replicas: Replicas, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    app, events = _app(replicas.kb, replicas.accounts, tmp_path, nowhere, 60.0)
    with caplog.at_level(logging.INFO, logger="server.events"), serving(app) as url:
        heard: queue.Queue[tuple[float, ServerEvent]] = queue.Queue()
        stream = EventStream(url, replicas.tokens["carol"], lambda e: heard.put((time.monotonic(), e))).start()
        try:
            assert heard.get(timeout=10)[1] == CONNECTED
            for _ in range(3):
                events.publish(Change(DOCUMENTS, "Team"))
                _until(heard, ServerEvent(DOCUMENTS, "Team"), timeout=2.0)
        finally:
            stream.close()
    said = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(said) == 1 and "this replica's own clients alone" in said[0]


def test_the_desktop_in_team_mode_refreshes_on_events_not_on_a_2_s_poll(qtbot, replicas: Replicas, tmp_path: Path):
    from collections.abc import Callable

    from archivist import TeamConnection, save_token
    from archivist.settings import Settings
    from desktop.backend import Backend

    class PushingTeam(TeamConnection):
        """``archivist.team.TeamConnection`` with the method it needs to pass the server's events on."""

        def listen(self, heard: Callable[[ServerEvent], None]) -> Callable[[], None]:
            return self._open().listen(heard)

    url, hub = replicas.urls[0], replicas.events[0].hub
    save_token(url, replicas.tokens["carol"])
    others = hub.open_for("carol")
    settings = Settings(data_dir=str(tmp_path / "data"), server_url=url, collection="Team")
    backend = Backend(settings, process=PushingTeam(settings))
    try:
        with qtbot.waitSignals([backend.ready, backend.changed], timeout=60_000):  # changed: the stream opened
            backend.open()
        assert backend._poll.interval() == 60_000  # the safety poll alone
        (replicas.docs / "desk.txt").write_text("Hot desks are booked a day ahead.")
        with qtbot.waitSignal(backend.changed, timeout=5_000):
            started = time.monotonic()
            replicas.client("alice").ingest([replicas.docs / "desk.txt"], "Team")
        print(f"\nthe window redrew {(time.monotonic() - started) * 1000:.0f} ms after alice's ingest began")
    finally:
        backend.shutdown()
    deadline = time.monotonic() + 5
    while hub.open_for("carol") > others:  # the window's stream ends with it
        assert time.monotonic() < deadline, "the window's event stream outlived it"
        time.sleep(0.05)


def test_one_user_holds_a_few_streams_at_most(replicas: Replicas):
    from server.events import STREAMS_PER_USER

    headers = {"Authorization": f"Bearer {replicas.accounts.add_user('dave')}"}
    limits = httpx.Limits(max_connections=None)
    with contextlib.ExitStack() as held, httpx.Client(base_url=replicas.urls[0], headers=headers, timeout=10,
                                                      limits=limits) as http:
        reading = []  # each stream's lines, kept: an iterator dropped closes its connection
        for _ in range(STREAMS_PER_USER):
            response = held.enter_context(http.stream("GET", "/v1/events"))
            reading.append(response.iter_lines())
            assert response.status_code == 200 and next(reading[-1]) == ": connected"
        with http.stream("GET", "/v1/events") as refused:
            assert refused.status_code == 429 and "event streams open" in refused.read().decode()


class _Lines:
    """One raw ``/v1/events`` stream's lines (heartbeats and all), read on a thread, each with when it came."""

    def __init__(self, url: str, token: str) -> None:
        self.heard: queue.Queue[tuple[float, str]] = queue.Queue()
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self._opened: queue.Queue[int] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._opened.get(timeout=10) == 200

    def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError), self._http.stream("GET", "/v1/events") as response:
            self._opened.put(response.status_code)
            for line in response.iter_lines():
                if line:
                    self.heard.put((time.monotonic(), line))

    def taken(self, wait: float) -> list[str]:
        """Every line heard so far, after waiting ``wait`` seconds for more."""
        time.sleep(wait)
        lines = []
        with contextlib.suppress(queue.Empty):
            while True:
                lines.append(self.heard.get_nowait()[1])
        return lines

    def close(self) -> None:
        self._http.close()


def _call(replicas: Replicas, who: str, body: object) -> httpx.Response:
    return httpx.post(replicas.urls[0] + "/v1/call", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {replicas.tokens[who]}"})


def test_a_call_is_heard_by_the_collection_it_changed_not_one_its_body_also_names(replicas: Replicas):
    """``{"$map": ...}`` arguments decode to the map alone: the call renames bob's own collection, while
    the raw body's ``name`` says "Team". Carol, who reads Team, must not hear of Team."""
    replicas.kb.create_collection("Bench")
    replicas.accounts.grant("bob", "Bench", Role.OWNER)
    carol = replicas.listen("carol")
    try:
        forged = {"$map": [["name", "Bench"], ["new_name", "Bench 2"]], "name": "Team", "new_name": "Team"}
        answer = _call(replicas, "bob", {"id": "1", "call": "rename_collection", "args": forged})
        assert answer.status_code == 200 and '"result"' in answer.text and "Bench 2" in answer.text
        assert all(e.collection != "Team" for e in _kinds(carol, wait=1.5))
        assert replicas.accounts.role(replicas.accounts.user("bob"), "Bench 2") is not None  # the call did rename
    finally:
        with contextlib.suppress(Exception):
            replicas.kb.delete_collection("Bench 2")
        replicas.accounts.forget_collection("Bench 2")
        replicas.accounts.forget_collection("Bench")


def test_a_call_that_failed_is_not_heard(replicas: Replicas):
    alice = replicas.listen("alice")
    args = {"collection": "Team", "conversation_id": "no-such-conversation", "title": "Never"}
    answer = _call(replicas, "alice", {"id": "2", "call": "rename_conversation", "args": args})
    assert answer.status_code == 200 and '"error"' in answer.text  # refused by the call, answered 200 as always
    assert ServerEvent("conversations", "Team") not in _kinds(alice, wait=1.5)


def test_the_heartbeat_keeps_its_time_whatever_others_hear(replicas: Replicas):
    """Bob reads nothing of Team; if each Team event pushed his heartbeat back, its gaps would tell him
    when Team changed (and how often)."""
    bob = _Lines(replicas.urls[0], replicas.tokens["bob"])
    try:
        assert bob.heard.get(timeout=5)[1] == ": connected"
        stop = threading.Event()

        def noise() -> None:
            while not stop.wait(0.1):
                replicas.events[0].publish(Change(DOCUMENTS, "Team"))

        maker = threading.Thread(target=noise, daemon=True)
        maker.start()
        try:
            lines = bob.taken(wait=8 * HEARTBEAT)
        finally:
            stop.set()
            maker.join()
        assert lines.count(": heartbeat") >= 5, lines
        assert not any(line.startswith("data") and "Team" in line for line in lines)
    finally:
        bob.close()


def test_streams_opened_all_at_once_are_counted_all_the_same(replicas: Replicas):
    from server.events import STREAMS_PER_USER

    token = replicas.accounts.add_user("erin")
    tries = 3 * STREAMS_PER_USER
    start, held = threading.Barrier(tries), threading.Event()
    statuses: queue.Queue[int] = queue.Queue()

    def open_one() -> None:
        with httpx.Client(base_url=replicas.urls[0], headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            start.wait()
            with http.stream("GET", "/v1/events") as response:
                statuses.put(response.status_code)
                if response.status_code == 200:
                    held.wait(30)

    threads = [threading.Thread(target=open_one, daemon=True) for _ in range(tries)]
    for thread in threads:
        thread.start()
    try:
        got = [statuses.get(timeout=30) for _ in range(tries)]
        assert got.count(200) == STREAMS_PER_USER and got.count(429) == tries - STREAMS_PER_USER, got
    finally:
        held.set()
        for thread in threads:
            thread.join(10)
    deadline = time.monotonic() + 10
    while replicas.events[0].hub.open_for("erin"):  # each stream let go once its client is gone
        assert time.monotonic() < deadline, "a closed stream is still counted"
        time.sleep(0.05)


def test_a_message_on_redis_not_shaped_as_an_event_is_dropped_and_the_forwarder_lives_on(replicas: Replicas):
    import redis

    carol = replicas.listen("carol", replica=1)
    bus = replicas.events[1]._bus
    assert bus is not None
    with redis.Redis.from_url(replicas.redis_url) as raw:  # anyone who may write to the channel
        for junk in (b"[1]", b"1", b"null", b"\xff", b"[" * 5000, b'{"kind": {"documents": 1}, "collection": "Team"}',
                     b'{"kind": "documents", "collection": ["Team"]}', b'{"kind": "announcement", "collection": "Team"}',
                     b'{"kind": "conversations", "collection": "Team"}', b'{"collection": "Team"}',
                     b'{"kind": "documents", "collection": "' + b"T" * 20000 + b'"}'):
            raw.publish(bus.channel, junk)
    replicas.events[0].publish(Change(DOCUMENTS, "Team"))
    _until(carol, ServerEvent(DOCUMENTS, "Team"), timeout=5.0)  # through Redis, after all that
    heard = _kinds(carol, wait=0.5)
    assert all(e.kind in (DOCUMENTS, "connected") and e.collection in ("Team", "") for e in heard), heard


def test_a_browser_s_session_streams_from_this_site_alone_and_stops_at_sign_out(replicas: Replicas):
    from server.session import COOKIE

    url = replicas.urls[0]
    signed = httpx.post(f"{url}/sign-in", data={"token": replicas.tokens["carol"]})
    assert signed.status_code == 303
    with httpx.Client(base_url=url, cookies={COOKIE: signed.cookies[COOKIE]}, timeout=10) as browser:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                        {"Origin": "http://intranet-wiki.example"}, {"Origin": "null"}):  # another site's EventSource
            with browser.stream("GET", "/v1/events", headers=headers) as refused:
                assert refused.status_code == 403, headers
        own = {"Sec-Fetch-Site": "same-origin", "Origin": url}
        with browser.stream("GET", "/v1/events", headers=own) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines) == ": connected"
            assert browser.post("/sign-out", headers=own).status_code in (200, 303)
            started = time.monotonic()
            rest = list(lines)  # the session ended: the stream too, at the next heartbeat
            assert time.monotonic() - started < 5 * HEARTBEAT and "data" not in "".join(rest)


def test_a_collection_read_through_a_group_is_not_heard_of_once_its_user_left_the_group(replicas: Replicas):
    replicas.accounts.grant("@auditors", "Team", Role.READER)
    replicas.accounts.join("@auditors", "bob")
    try:
        bob = replicas.listen("bob")
        replicas.events[0].publish(Change(DOCUMENTS, "Team"))
        _until(bob, ServerEvent(DOCUMENTS, "Team"), timeout=5.0)
        replicas.accounts.leave("@auditors", "bob")  # the stream stays open: its rights are read at each event
        replicas.events[0].publish(Change(DOCUMENTS, "Team"))
        assert all(e.collection != "Team" for e in _kinds(bob, wait=1.0))
    finally:
        replicas.accounts.leave("@auditors", "bob")
        replicas.accounts.revoke("@auditors", "Team")
