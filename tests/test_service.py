"""One facade, one codec: messages and errors cross a boundary whole; the client is the facade."""

from __future__ import annotations

import inspect
import multiprocessing
import threading
from pathlib import Path

import pytest
from samples import PROSE
from servers import serving

from engine import ArchivistError, CancelToken, ModelState, ModelStatus
from rag.answering.ask import Answered, AnswerResult
from rag.answering.citations import citation_for
from rag.answering.sources import Source
from rag.errors import CollectionNotFound, DocumentEncrypted, NotSignedIn
from rag.indexing.ingest import FileOutcome, IngestProgress, IngestReport
from rag.knowledge_base import KnowledgeBase
from rag.service import codec
from rag.service.client import KnowledgeBaseClient
from rag.service.dispatch import CALLS, Service
from rag.service.http_channel import HttpChannel
from rag.service.pipe import PipeChannel
from server.accounts import Accounts
from server.app import ServerConfig, create_app
from server.audit import AuditLog

_SAMPLES = {"Path": Path("/docs/report.pdf"), "str": "something", "int": 3, "float": 1.5}


def _sample(parameter: inspect.Parameter) -> object:
    annotation = str(parameter.annotation)
    for name, value in _SAMPLES.items():
        if annotation.startswith(name):
            return value
    return None


def test_every_error_crosses_with_its_sentence_and_fields():
    errors = [t for t in codec.registry().values() if isinstance(t, type) and issubclass(t, ArchivistError)]
    assert len(errors) > 25
    for cls in errors:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        error = cls(*[_sample(p) for p in parameters if p.default is inspect.Parameter.empty])
        back = codec.loads(codec.dumps(error))
        assert type(back) is cls and str(back) == str(error) and vars(back) == vars(error), cls


def test_an_answer_crosses_whole():
    source = Source(1, Path("/docs/pump.pdf"), 3, "Oil", 10, 60, "The pump needs oil every 200 hours.", 0.8, ("a:0", "a:1"))
    result = AnswerResult("How often?", "Every 200 hours [1].", [citation_for(source)], [source], data={"$odd": [1, 2]})
    assert codec.loads(codec.dumps(Answered(result))) == Answered(result)
    report = IngestReport([FileOutcome(Path("/docs/a.pdf"), "failed", "damaged", warnings=("page 2 empty",))])
    assert codec.loads(codec.dumps(report)) == report
    status = ModelStatus(ModelState.READY, 123, "starter", 8192, "")
    assert codec.loads(codec.dumps(status)) == status
    assert citation_for(source).label == source.label == "pump.pdf, page 3, section Oil"


def test_an_unknown_type_is_refused_not_run():
    with pytest.raises(ArchivistError, match="unknown message type 'Popen'"):
        codec.loads('{"$type": "Popen", "args": ["rm"]}')


def test_a_caller_of_the_facade_finds_every_public_method_on_the_client_too():
    """Callers type a knowledge base, local or remote, as ``KnowledgeBase``; the client is made from
    its ``@offered`` methods. Only the composition's own methods may be public beyond those."""
    public = {name for name, _ in inspect.getmembers(KnowledgeBase, inspect.isfunction) if not name.startswith("_")}
    assert public - CALLS == {"start", "warm", "close", "add_listener", "with_conversations"}
    assert all(callable(getattr(KnowledgeBaseClient, name)) for name in CALLS | {"close", "add_listener"})


def _team_app(kb: KnowledgeBase, home: Path) -> tuple[object, str]:
    """The team server's app over ``kb`` and an administrator's token; files reach it as uploads."""
    accounts = Accounts(home / "accounts.db")
    token = accounts.add_user("ada", admin=True)
    return create_app(kb, accounts, AuditLog(home / "audit.jsonl"), ServerConfig(home=home)), token


@pytest.fixture(params=["pipe", "http"])
def client(request: pytest.FixtureRequest, kb: KnowledgeBase, tmp_path: Path):
    """The knowledge base behind a real transport: a pipe served by ``Service`` on a thread, or
    the team server over loopback HTTP."""
    if request.param == "http":
        app, token = _team_app(kb, tmp_path.parent / f"{tmp_path.name}-server")
        with serving(app) as url:
            channel = HttpChannel(url, token=token)
            yield KnowledgeBaseClient(channel)
            channel.close()
        return
    ours, theirs = multiprocessing.Pipe()
    lock = threading.Lock()

    def send(message: dict) -> None:
        data = codec.dumps(message).encode()
        with lock:
            theirs.send_bytes(data)

    service = Service(kb, send)

    def serve() -> None:
        try:
            while service.handle(codec.loads(theirs.recv_bytes())):
                pass
        except (EOFError, OSError):
            pass
        theirs.close()

    threading.Thread(target=serve, daemon=True).start()
    channel = PipeChannel(ours)
    yield KnowledgeBaseClient(channel)
    channel.close()


def test_calls_through_a_pipe_stream_progress_and_raise_typed_errors(client: KnowledgeBaseClient, tmp_path: Path):
    for i, text in enumerate(PROSE):
        (tmp_path / f"note{i}.txt").write_text(text)
    seen: list[object] = []
    report = client.ingest([tmp_path], "Docs", progress=seen.append)
    assert report.count("indexed") == len(PROSE) and isinstance(report, IngestReport)
    assert seen and all(isinstance(e, IngestProgress) for e in seen)
    assert client.search("treaty", "Docs")[0].path.parent == tmp_path
    with pytest.raises(CollectionNotFound, match="no collection named 'Nope'"):
        client.status("Nope")
    encrypted = DocumentEncrypted(tmp_path / "x.pdf")
    assert codec.loads(codec.dumps({"error": encrypted}))["error"].path == tmp_path / "x.pdf"


def test_stop_reaches_the_work_on_the_other_side(client: KnowledgeBaseClient, tmp_path: Path):
    for i in range(40):
        (tmp_path / f"note{i:02d}.txt").write_text(PROSE[i % len(PROSE)] + f" ({i})")
    cancel = CancelToken()
    report = client.ingest([tmp_path], "Docs", progress=lambda _e: cancel.cancel(), cancel=cancel)
    assert report.cancelled and report.count("indexed") < 40
    assert client.status("Docs").count("indexed") == report.count("indexed")  # what was done is kept


def test_the_http_transport_wants_its_token(kb: KnowledgeBase, tmp_path: Path):
    app, _ = _team_app(kb, tmp_path / "server")
    with serving(app) as url, pytest.raises(NotSignedIn, match="the token is not valid"):
        KnowledgeBaseClient(HttpChannel(url, token="wrong")).collections()
