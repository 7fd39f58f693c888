"""Two replicas of the team server as on two machines: each its own home folder (its own data
folder and keyword index), sharing one PostgreSQL, one Chroma server, one inference server
(llama-cpp-python's, serving the starter) and one uploads folder. What one replica does, the other
sees; killing one in the middle of an answer loses that answer alone, and the other serves on."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from samples import PROSE
from servers import free_port, postgres_server
from test_team import KEY, ChromaServer, inference_server  # noqa: F401 - a fixture

from engine import AnswerDelta
from rag.answering.ask import Answered, AskOptions
from rag.answering.checkup import CheckQuestion
from rag.answering.retrieval import SearchMode
from rag.errors import KnowledgeBaseError
from rag.service.client import KnowledgeBaseClient
from rag.service.http_channel import HttpChannel
from server.accounts import Accounts
from server.cli import main
from server.database import Database

PUMP = "The coolant pump in hall seven needs fresh grease every 200 hours of running."
SHORT = AskOptions(answer_tokens=12, use_cache=False)


@dataclass
class Team:
    urls: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    tokens: dict[str, str]
    docs: Path

    def client(self, replica: str, who: str = "ann") -> KnowledgeBaseClient:
        return KnowledgeBaseClient(HttpChannel(self.urls[replica], self.tokens[who], timeout=120))


def _start(home: Path, replica: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    argv = ["--home", str(home), "serve", "--port", str(port), "--replica", replica]
    process = subprocess.Popen([sys.executable, "-c", f"import sys; from server.cli import main; sys.exit(main({argv!r}))"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return url, process
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "the server ended"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, inference_server: str) -> Iterator[Team]:  # noqa: F811
    root = tmp_path_factory.mktemp("apart")
    docs, uploads = root / "shared-docs", root / "shared-uploads"  # what every machine mounts
    docs.mkdir()
    uploads.mkdir()
    chroma = ChromaServer(root / "chroma")
    chroma.start()
    with postgres_server() as database:
        homes = {name: root / name for name in ("alpha", "beta")}
        for name, home in homes.items():
            home.mkdir()
            (home / "server.toml").write_text(f"""
chroma_host = "localhost"
chroma_port = {chroma.port}
remote_base_url = "{inference_server}"
remote_api_key = "{KEY}"
remote_model = "starter"
[server]
database_url = "{database}"
folders = ["{docs}"]
uploads_folder = "{uploads}"
watches_folders = {"true" if name == "alpha" else "false"}
watch_lease_seconds = 3
""", encoding="utf-8")
        assert main(["--home", str(homes["alpha"]), "migrate"]) == 0
        shared = Database(database)
        tokens = {"ann": Accounts(shared).add_user("ann"), "root": Accounts(shared).add_user("root", admin=True)}
        shared.close()
        assert main(["--home", str(homes["beta"]), "grant", "ann", "Plant", "owner"]) == 0  # through the other home
        started = {name: _start(home, name) for name, home in homes.items()}
        team = Team({n: u for n, (u, _) in started.items()}, {n: p for n, (_, p) in started.items()}, tokens, docs)
        team.client("beta", "root").create_collection("Plant")  # made by an administrator: ann's grant holds
        try:
            yield team
        finally:
            for process in team.processes.values():
                if process.poll() is None:
                    process.terminate()
                    process.wait(20)
            chroma.stop()


def test_what_one_replica_indexes_and_keeps_the_other_finds_and_continues(team: Team):
    (team.docs / "pump.txt").write_text(PUMP + "\n\n" + "\n\n".join(PROSE), encoding="utf-8")
    alpha, beta = team.client("alpha"), team.client("beta")
    report = alpha.ingest([team.docs / "pump.txt"], "Plant")
    assert report.count("indexed") == 1
    for mode in (SearchMode(vector=False), SearchMode(keyword=False)):  # by words, by meaning
        found = beta.search("grease for the coolant pump", "Plant", limit=3, mode=mode)
        assert found and "every 200 hours" in found[0].text, mode

    talk = alpha.new_conversation("Plant")
    first = [e for e in beta.ask("How often does the coolant pump need grease?", "Plant",
                                 replace(SHORT, conversation=talk.id)) if isinstance(e, Answered)]
    assert first and first[0].result.answer.strip()
    second = [e for e in alpha.ask("And in hall seven?", "Plant", replace(SHORT, conversation=talk.id))
              if isinstance(e, Answered)]
    assert second
    for client in (alpha, beta):
        turns = client.get_conversation("Plant", talk.id).turns
        assert [t.question for t in turns] == ["How often does the coolant pump need grease?", "And in hall seven?"]

    alpha.add_check("Plant", CheckQuestion("How often is the pump greased?", "pump.txt"))
    assert [q.question for q in beta.checkup("Plant").questions] == ["How often is the pump greased?"]


def test_a_folder_followed_through_the_replica_that_does_not_watch_is_indexed_by_the_one_that_does(team: Team):
    followed = team.docs / "followed"
    followed.mkdir()
    (followed / "boiler.txt").write_text("The boiler in hall seven is serviced every May.", encoding="utf-8")
    beta = team.client("beta")
    assert beta.follow("Plant", followed).folders == [followed]
    deadline = time.monotonic() + 60
    while not any(f.path.name == "boiler.txt" and f.status == "indexed" for f in beta.status("Plant").files):
        assert time.monotonic() < deadline, "alpha, which watches, did not index the folder followed through beta"
        time.sleep(0.5)
    assert beta.followed("Plant").folders == [followed]


def test_killing_a_replica_mid_answer_loses_that_answer_alone(team: Team):
    alpha, beta = team.client("alpha"), team.client("beta")
    talk = beta.new_conversation("Plant", "Kill")
    assert [e for e in beta.ask("What needs grease?", "Plant", replace(SHORT, conversation=talk.id))
            if isinstance(e, Answered)]
    failed: list[BaseException] = []
    writing = threading.Event()

    def ask_alpha() -> None:
        try:
            for event in alpha.ask("Tell me all about the coolant pump.", "Plant",
                                   AskOptions(answer_tokens=400, use_cache=False, conversation=talk.id)):
                if isinstance(event, AnswerDelta):
                    writing.set()
        except (KnowledgeBaseError, OSError, httpx.HTTPError) as exc:
            failed.append(exc)
        finally:
            writing.set()

    asking = threading.Thread(target=ask_alpha)
    asking.start()
    assert writing.wait(120), "alpha wrote no answer"
    os.kill(team.processes["alpha"].pid, signal.SIGKILL)
    asking.join(60)
    assert not asking.is_alive() and failed, "the answer in flight on the killed replica did not end in an error"

    turns = beta.get_conversation("Plant", talk.id).turns  # the one in flight is lost; the earlier one is not
    assert [t.question for t in turns] == ["What needs grease?"]
    again = [e for e in beta.ask("What needs grease?", "Plant", replace(SHORT, conversation=talk.id))
             if isinstance(e, Answered)]
    assert again and len(beta.get_conversation("Plant", talk.id).turns) == 2
    assert beta.search("coolant pump grease", "Plant", limit=1)
