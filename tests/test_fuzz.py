"""The team server's HTTP API fuzzed with Hypothesis: every route and every call, with arguments of
every JSON type and shape (plain values, the codec's typed objects, plausible and absurd ones), sent
by an administrator (the deepest paths) and by a reader. No request may get a 500 or an error that
is a bug (``ServiceError``), none may take more than a bound, and nothing outside the offered
folders may be read.

``make test`` runs a quick, reproducible profile; a longer one runs by hand:
``ARCHIVIST_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py -s``.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import serving

from engine import ArchivistError
from rag.errors import BadCall, ServiceError
from rag.knowledge_base import KnowledgeBase
from rag.service import codec
from rag.service.dispatch import CALLS, OFFERED
from rag.storage.vectors import VectorStore
from server.accounts import Accounts, Role
from server.app import ServerConfig, create_app
from server.audit import AuditLog

EXAMPLES = int(os.environ.get("ARCHIVIST_FUZZ_EXAMPLES", "150"))
BOUND = 30.0  # seconds any one request may take
OUTSIDE = "OUTSIDE-MARKER-9"
EXPECTED = {200, 204, 400, 401, 403, 404, 405, 413, 415, 422, 429, 507}


@dataclass
class Target:
    url: str
    offered: Path
    outside: Path
    home: Path
    kb: KnowledgeBase
    tokens: dict[str, str]
    sent: int = 0
    slowest: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    home, offered, outside = root / "server", root / "offered", root / "outside"
    for folder in (home, offered, outside):
        folder.mkdir()
    (offered / "team.txt").write_text("Team handbook. The canteen opens at eight.")
    (offered / "notes.md").write_text("# Notes\n\nThe car park closes at ten.")
    (outside / "private.txt").write_text(f"Not offered. {OUTSIDE}")
    kb = KnowledgeBase(VectorStore.embedded(root / "kb" / "chroma"), embedder, root / "kb" / "keyword")
    kb.ingest([offered / "team.txt"], "Team")
    accounts = Accounts(home / "accounts.db")
    tokens = {name: accounts.add_user(name, admin=name == "ada") for name in ("ada", "rita")}
    accounts.grant("rita", "Team", Role.READER)
    app = create_app(kb, accounts, AuditLog(home / "audit.jsonl"), ServerConfig(folders=[offered], home=home))
    with serving(app) as url:
        target = Target(url, offered, outside, home, kb, tokens)
        yield target
    print(f"\nfuzzed requests sent: {target.sent}, statuses {dict(sorted(target.statuses.items()))}, "
          f"slowest {target.slowest:.2f} s, 500s 0, hangs 0")
    kb.close()
    accounts.close()


# -- what is sent ------------------------------------------------------------------------------

_PATHS = st.sampled_from(["team.txt", "notes.md", "", "/", "/etc/passwd", "../outside/private.txt", "C:\\Windows",
                          "/uploads/0123456789abcdef/x.txt", "/uploads/../../etc", "a\x00b", "~"])
_NAMES = st.sampled_from(["Team", "Secret", "", " ", "Team\n", "x" * 300, "../Team"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_TYPES = sorted(codec.registry())


@st.composite
def _path(draw: st.DrawFn) -> object:
    name = draw(_PATHS)
    return {"$path": name if name.startswith(("/", "C:", "~")) or not name else f"{_OFFERED}/{name}"}


_OFFERED = "/offered"  # replaced per run by the fixture's folder (see ``_aimed``)


def _typed(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    fields = st.dictionaries(st.sampled_from(["paths", "schema", "effort", "passages", "answer_tokens", "use_cache",
                                              "vector", "keyword", "question", "document", "passage", "name",
                                              "title", "description", "conversation", "value", "args", "fields"]),
                             inner, max_size=4)
    return st.one_of(
        st.builds(lambda name, values: {"$type": name, **values}, st.sampled_from(_TYPES), fields),
        st.builds(lambda name, value: {"$enum": name, "value": value}, st.sampled_from(_TYPES), inner),
        st.builds(lambda name: {"$error": name, "args": [], "fields": {}}, st.sampled_from(_TYPES)),
        st.builds(lambda items: {"$tuple": items}, st.lists(inner, max_size=3)),
        st.builds(lambda pairs: {"$map": pairs}, st.lists(st.lists(inner, max_size=2), max_size=2)),
    )


_VALUES = st.one_of(_JSON, _path(), st.lists(_path(), max_size=3), _typed(_JSON))
_PLAUSIBLE: dict[str, st.SearchStrategy[object]] = {
    "collection": _NAMES, "name": _NAMES, "new_name": _NAMES,
    "paths": st.lists(_path(), max_size=3), "path": _path(), "folder": _path(), "adapter": st.none() | _path(),
    "query": st.text(max_size=60), "question": st.text(max_size=60) | st.builds(
        lambda q, d: {"$type": "CheckQuestion", "question": q, "document": d}, st.text(max_size=20), st.text(max_size=20)),
    "limit": st.integers(min_value=-5, max_value=500),
    "options": st.builds(lambda paths, effort, passages: {"$type": "AskOptions", "paths": paths, "effort": effort,
                                                          "passages": passages},
                         st.none() | st.lists(_path(), max_size=2), st.sampled_from(["low", "medium", "high", "max"]),
                         st.integers(min_value=0, max_value=70)),
    "schema": st.builds(lambda schema: {"$type": "NamedSchema", "name": "s", "title": "t", "description": "",
                                        "schema": schema}, _JSON),
    "conversation_id": st.text(max_size=20) | st.sampled_from(["../../accounts", "..", "/etc/passwd"]),
    "key": st.text(max_size=20), "mirror": st.text(max_size=20), "title": st.text(max_size=40),
    "force": st.booleans(), "accept_unverified": st.booleans(), "batch": st.integers(min_value=-1, max_value=5000),
    "effort": st.sampled_from(["low", "medium", "high", "max"]), "out": _path(),
    "mode": st.builds(lambda v, k: {"$type": "SearchMode", "vector": v, "keyword": k}, _JSON, _JSON),
}


def _parameters(call: str) -> list[str]:
    """The arguments a client may send to ``call``."""
    given = inspect.signature(getattr(KnowledgeBase, call)).parameters
    return [name for name in given if name not in ("self", "progress", "cancel", "query_vector")]


@st.composite
def _call(draw: st.DrawFn) -> dict[str, object]:
    call = draw(st.sampled_from(sorted(CALLS))) if draw(st.integers(0, 9)) else draw(st.text(max_size=12))
    names = _parameters(call) if call in CALLS else []
    # Mostly plausible arguments, so that the calls run deep; now and then anything at all.
    args = {name: draw(_VALUES if not draw(st.integers(0, 4)) else _PLAUSIBLE.get(name, _VALUES))
            for name in names if draw(st.integers(0, 5))}
    if draw(st.integers(0, 4)) == 0:
        marker = st.sampled_from(["$tuple", "$map", "$path", "$type", "$enum", "$error"])  # the codec's own keys
        args[draw(marker | st.text(max_size=8))] = draw(_VALUES)  # an argument the call does not have
    number = draw(st.integers()) if not draw(st.integers(0, 9)) else draw(st.text(min_size=1, max_size=8))
    body: dict[str, object] = {"id": number, "call": call, "args": args}
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.dictionaries(st.text(max_size=6), _JSON, max_size=3))  # any object at all
    return body


_REQUEST = st.one_of(
    st.tuples(st.just("POST"), st.just("/v1/call"), _call()),
    st.tuples(st.just("POST"), st.sampled_from(["/v1/cancel", "/v1/uploads", "/v1/grant"]),
              st.dictionaries(st.sampled_from(["id", "collection", "files", "folders", "name", "role"]),
                              _JSON | _NAMES, max_size=4)),
    st.tuples(st.just("GET"), st.sampled_from(["/v1/grants", "/v1/whoami", "/v1/health"]),
              st.dictionaries(st.just("collection"), _NAMES, max_size=1)),
    st.tuples(st.just("PUT"), st.just("/v1/upload"),
              st.dictionaries(st.sampled_from(["collection", "path"]), st.text(max_size=40) | _NAMES, max_size=2)),
)


def _aimed(value: object, offered: Path) -> object:
    """Paths drawn relative to the offered folder, made absolute for this run."""
    if isinstance(value, dict):
        return {k: _aimed(v, offered) for k, v in value.items()}
    if isinstance(value, list):
        return [_aimed(v, offered) for v in value]
    if isinstance(value, str) and value.startswith(_OFFERED + "/"):
        return str(offered) + value[len(_OFFERED):]
    return value


# -- the run -----------------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 150,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(request=_REQUEST, who=st.sampled_from(["ada", "rita"]))
def test_no_request_breaks_the_server_or_reaches_past_its_folders(target: Target, request: tuple, who: str):
    method, route, payload = request
    payload = _aimed(payload, target.offered)
    headers = {"Authorization": f"Bearer {target.tokens[who]}"}
    started = time.monotonic()
    with httpx.Client(base_url=target.url, timeout=BOUND, headers=headers) as http:
        if method == "GET":
            response = http.get(route, params=payload)
        elif method == "PUT":
            response = http.put(route, params=payload, content=b"Uploaded by the fuzzer.")
        else:
            response = http.post(route, content=_dumps(payload), headers={"Content-Type": "application/json"})
    took = time.monotonic() - started
    target.sent += 1
    target.slowest = max(target.slowest, took)
    target.statuses[response.status_code] = target.statuses.get(response.status_code, 0) + 1
    assert response.status_code in EXPECTED, (request, response.text[:500])
    assert OUTSIDE not in response.text
    if route == "/v1/call" and response.status_code == 200:
        for line in response.text.splitlines():
            error = codec.loads(line).get("error")
            assert not isinstance(error, ServiceError), (request, error)  # an exception that is not ours: a bug


@settings(max_examples=EXAMPLES * 10, deadline=None, database=None, derandomize=EXAMPLES <= 150,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=_call())
def test_every_call_s_arguments_are_read_or_refused_in_words(body: dict[str, object]):
    """The same bodies, ten times as many, through the codec and each call's argument check alone:
    anything they raise is a refusal a person can read (``BadCall``), never a crash."""
    method, raw = body.get("call"), body.get("args", {})
    if not isinstance(method, str) or method not in OFFERED or not isinstance(raw, dict):
        return
    try:
        decoded = codec.decode(_aimed(raw, Path("/srv/offered")))
    except (ArchivistError, TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError):
        return  # what the server answers 400 to
    try:
        OFFERED[method].arguments(decoded)
    except BadCall:
        pass


def test_nothing_outside_the_offered_folders_was_indexed(target: Target):
    roots = [target.offered.resolve(), (target.home / "uploads").resolve()]
    for collection in target.kb.collections():
        for record in target.kb.status(collection.name).files:
            assert any(Path(record.path).resolve().is_relative_to(r) for r in roots), (collection.name, record.path)
        assert all(OUTSIDE not in p.text for p in target.kb.search(OUTSIDE, collection.name))


def _dumps(payload: object) -> str:
    return json.dumps(payload, allow_nan=True)  # NaN and Infinity too: Python's parser takes them
