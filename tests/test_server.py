"""The team server for real: `archivist-server serve` on loopback in front of `chroma run` and
llama.cpp's OpenAI-compatible server, three collections, an administrator and two users, each
reaching only what they were given, through the same client the CLI uses."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from servers import free_port, redis_server
from test_team import KEY, ChromaServer, _wait_for, inference_server  # noqa: F401 - a fixture

from archivist.extract import extract_to
from rag.answering.ask import Answered, AskOptions, Retrieved
from rag.answering.schemas import resolve
from rag.errors import AccessDenied, NotSignedIn
from rag.service.client import KnowledgeBaseClient
from rag.service.http_channel import HttpChannel
from server.accounts import Accounts, Role
from server.uploads import Uploads

SERVER = [sys.executable, "-m", "server.cli"]
DOCUMENTS = {
    "Handbook": ("handbook.txt", "Holidays. Every employee has 25 days of paid holiday a year, booked in the HR portal."),
    "Contracts": ("acme.txt", "The supply contract with Acme Corporation runs until 31 March 2027 and renews yearly."),
    "Board": ("minutes.txt", "Board minutes. The board approved the merger with Globex in a closed session."),
}


@dataclass
class Team:
    url: str
    home: Path
    docs: Path
    shared: Path
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    log: BinaryIO
    replicas: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def replica(self) -> str:
        """A second server on the same home, store and Redis, as behind a load balancer; its URL."""
        port = free_port()
        self.replicas.append(subprocess.Popen([*SERVER, "--home", str(self.home), "serve", "--port", str(port)],
                                              stdout=self.log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        _wait_for(f"{url}/v1/health", self.replicas[-1])
        return url

    def client(self, user: str, token: str | None = None) -> KnowledgeBaseClient:
        return KnowledgeBaseClient(HttpChannel(self.url, self.tokens[user] if token is None else token))

    def audit(self, *args: str) -> str:
        result = subprocess.run([*SERVER, "--home", str(self.home), "audit", *args], capture_output=True, text=True,
                                check=True)
        return result.stdout


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, inference_server: str) -> Iterator[Team]:  # noqa: F811
    root = tmp_path_factory.mktemp("team")
    home, docs, shared = root / "server", root / "alice-laptop", root / "shared-drive"
    for folder in (home, docs, shared):
        folder.mkdir()
    chroma = ChromaServer(root / "chroma")
    chroma.start()
    stack = contextlib.ExitStack()
    redis_url = stack.enter_context(redis_server(root / "redis"))
    (home / "server.toml").write_text(
        f'chroma_host = "localhost"\nchroma_port = {chroma.port}\ncache_redis_url = "{redis_url}"\n'
        f'remote_base_url = "{inference_server}"\nremote_api_key = "{KEY}"\nremote_model = "starter"\n'
        f'context_size = 4096\n\n[server]\nfolders = ["{shared}"]\nproxies = ["127.0.0.2"]\n'
    )
    accounts = Accounts(home / "accounts.db")
    tokens = {name: accounts.add_user(name, admin=name == "root") for name in ("root", "alice", "bob")}
    accounts.grant("alice", "Handbook", Role.EDITOR)
    accounts.grant("alice", "Contracts", Role.READER)
    accounts.grant("@staff", "Handbook", Role.READER)
    accounts.join("staff", "bob")
    accounts.close()
    port = free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen([*SERVER, "--home", str(home), "serve", "--port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_for(f"{url}/v1/health", process)
    team = Team(url, home, docs, shared, tokens, process, log)
    root_client = team.client("root")
    for collection, (name, text) in DOCUMENTS.items():
        (docs / name).write_text(text)
        assert root_client.ingest([docs / name], collection).count("indexed") == 1
    root_client.close()
    yield team
    for replica in (process, *team.replicas):
        replica.terminate()
        replica.wait(30)
    chroma.stop()
    stack.close()


def test_each_user_sees_and_changes_only_what_they_were_given(team: Team):
    alice, bob = team.client("alice"), team.client("bob")
    assert [c.name for c in alice.collections()] == ["Contracts", "Handbook"]
    assert [c.name for c in bob.collections()] == ["Handbook"]  # a reader through the @staff group

    with pytest.raises(AccessDenied, match="bob has no access to the collection 'Board'"):
        bob.search("merger", "Board")
    with pytest.raises(AccessDenied, match="bob is a reader of 'Handbook'; this needs an editor"):
        bob.ingest([team.docs / "handbook.txt"], "Handbook")
    with pytest.raises(AccessDenied, match="alice is a reader of 'Contracts'; this needs an editor"):
        alice.remove([team.docs / "acme.txt"], "Contracts")

    (team.docs / "travel.txt").write_text("Travel. Train tickets are booked through the travel desk.")
    assert alice.ingest([team.docs / "travel.txt"], "Handbook").count("indexed") == 1
    assert alice.search("who books train tickets", "Handbook")[0].path == team.docs / "travel.txt"  # her own name for it
    found = bob.search("who books train tickets", "Handbook")[0]
    assert found.path.name == "travel.txt" and bob.document_passages(found.path, "Handbook")[0].text == found.text

    for user in ("alice", "bob"):
        with pytest.raises(AccessDenied, match="this needs an owner"):
            team.client(user).channel.grant("bob", "Handbook", "editor")
    with pytest.raises(AccessDenied, match="this needs an owner"):
        alice.delete_collection("Handbook")
    with pytest.raises(AccessDenied, match="only an administrator may create a collection"):
        alice.create_collection("Mine")
    with pytest.raises(AccessDenied, match="only an administrator may clear cache"):
        alice.clear_cache()

    (team.shared / "policy.txt").write_text("Policy. Laptops are locked when left alone.")
    (team.shared / "accounts.txt").symlink_to(team.home / "server.toml")  # a link out of the offered folder
    assert alice.follow("Handbook", team.shared).folders == [team.shared]
    assert "accounts.txt" not in {f.path.name for f in alice.status("Handbook").files}
    with pytest.raises(AccessDenied, match="is not in a folder this server offers"):
        alice.follow("Handbook", team.home)  # the server's own files are not offered

    assert alice.new_conversation("Handbook", "Alice's").title == "Alice's"
    assert bob.list_conversations("Handbook") == []  # conversations are each user's own


def test_answers_and_the_shared_cache_follow_the_rights(team: Team):
    alice, bob, root = team.client("alice"), team.client("bob"), team.client("root")
    question = "When does the Acme contract end?"
    events = list(alice.ask(question, "Contracts", AskOptions(answer_tokens=48)))
    answered = events[-1]
    assert isinstance(answered, Answered) and answered.result.cached is None
    retrieved = next(e for e in events if isinstance(e, Retrieved))
    assert {s.path.name for s in retrieved.sources} == {"acme.txt"}

    with pytest.raises(AccessDenied, match="bob has no access to the collection 'Contracts'"):
        list(bob.ask(question, "Contracts"))
    # The same words asked of a collection bob may read: never the cached Contracts answer,
    # and no passage from a collection he cannot read.
    events = list(bob.ask(question, "Handbook", AskOptions(answer_tokens=48)))
    assert events[-1].result.cached is None
    assert {s.path.name for e in events if isinstance(e, Retrieved) for s in e.sources} <= {"handbook.txt", "travel.txt", "policy.txt"}

    holiday = "How many days of paid holiday do employees get?"
    first = list(root.ask(holiday, "Handbook", AskOptions(answer_tokens=48)))[-1]
    elsewhere = KnowledgeBaseClient(HttpChannel(team.replica(), team.tokens["bob"]))  # another replica, one Redis
    again = list(elsewhere.ask(holiday, "Handbook", AskOptions(answer_tokens=48)))[-1]
    assert first.result.cached is None and again.result.cached == "exact"  # one team, one cache
    assert again.result.answer == first.result.answer

    assert root.channel.grant("@staff", "Handbook", None)
    with pytest.raises(AccessDenied):
        list(bob.ask(holiday, "Handbook"))  # revoked: the cached answer is out of reach at once
    root.channel.grant("@staff", "Handbook", "reader")


def test_tokens_revoked_expired_or_forged_are_refused_and_logged(team: Team):
    renewed = subprocess.run([*SERVER, "--home", str(team.home), "new-token", "bob"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[-1]
    with pytest.raises(NotSignedIn, match="not valid"):
        team.client("bob").collections()
    assert [c.name for c in team.client("bob", renewed).collections()] == ["Handbook"]
    team.tokens["bob"] = renewed

    made = subprocess.run([*SERVER, "--home", str(team.home), "add-user", "carol", "--expires", "2020-01-01"],
                          capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    assert made.startswith("arch_") and " " not in made  # the token alone on the last line
    with pytest.raises(NotSignedIn, match="expired on 2020-01-01"):
        team.client("carol", made).collections()
    with pytest.raises(NotSignedIn, match="no token was sent"):
        team.client("carol", "").collections()

    forged = httpx.get(f"{team.url}/v1/whoami", headers={"X-Remote-User": "root"})
    assert forged.status_code == 401 and "127.0.0.1, which is not a trusted proxy" in forged.json()["detail"]
    proxy = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    vouched = proxy.get(f"{team.url}/v1/whoami", headers={"X-Remote-User": "bob"})
    assert vouched.json() == {"name": "bob", "admin": False, "groups": ["staff"]}

    refused = team.audit("--user", "?")
    assert "not valid" in refused and "expired on 2020-01-01" in refused and "not a trusted proxy" in refused


def test_the_audit_log_says_who_did_what(team: Team):
    alice = team.client("alice")
    (team.docs / "leave.txt").write_text("Parental leave is sixteen weeks.")
    alice.ingest([team.docs / "leave.txt"], "Handbook")
    with pytest.raises(AccessDenied):
        alice.search("merger", "Board")
    lines = team.audit("--user", "alice").splitlines()
    assert any("ingest on 'Handbook'" in line and "leave.txt" in line and "[ok" in line for line in lines)
    assert any("search on 'Board'" in line and "[refused" in line for line in lines)
    since = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
    assert team.audit("--since", since) == ""
    everything = team.audit()
    assert "grant" in everything and "(question not kept)" not in everything


def test_the_cli_works_the_same_against_the_server(team: Team):
    env = {**os.environ, "ARCHIVIST_SERVER": team.url, "ARCHIVIST_TOKEN": team.tokens["alice"]}
    cli = [sys.executable, "-m", "archivist.cli"]
    status = subprocess.run([*cli, "status"], capture_output=True, text=True, env=env, check=False)
    assert status.returncode == 0, status.stderr
    assert "Contracts" in status.stdout and "Handbook" in status.stdout and "Board" not in status.stdout
    refused = subprocess.run([*cli, "search", "merger", "-c", "Board"], capture_output=True, text=True, env=env, check=False)
    assert refused.returncode == 1 and "Not allowed: alice has no access to the collection 'Board'" in refused.stderr
    whoami = subprocess.run([*cli, "--server", team.url, "whoami"], capture_output=True, text=True, env=env, check=False)
    assert whoami.stdout.strip() == "alice"
    wrong = subprocess.run([*cli, "status"], capture_output=True, text=True, env={**env, "ARCHIVIST_TOKEN": "nope"}, check=False)
    assert wrong.returncode == 1 and "did not accept your sign-in" in wrong.stderr


def test_files_are_sent_once_and_a_folder_s_copy_follows_the_folder(team: Team):
    alice = team.client("alice")
    folder = team.docs / "policies"
    folder.mkdir()
    (folder / "visitors.txt").write_text("Visitors sign in at the front desk.")
    (folder / "badges.txt").write_text("Badges are worn where they can be seen.")
    assert alice.ingest([folder], "Handbook").count("indexed") == 2
    copy = Uploads(team.home).copy_of("alice", str(folder / "visitors.txt"))
    sent = copy.stat().st_mtime_ns
    time.sleep(0.01)
    (folder / "badges.txt").unlink()
    report = alice.ingest([folder], "Handbook")
    assert copy.stat().st_mtime_ns == sent  # unchanged: not sent again
    assert {(o.path.name, o.status) for o in report.outcomes} == {("visitors.txt", "unchanged"), ("badges.txt", "removed")}
    assert not copy.with_name("badges.txt").exists()


def test_a_reader_extracts_into_a_file_of_their_own_machine(team: Team):
    out = team.docs / "contracts.jsonl"
    assert extract_to(team.client("alice"), "Contracts", resolve("key_facts"), out) == 1
    row = json.loads(out.read_text().splitlines()[0])
    assert row["file"].endswith("acme.txt") and "data" in row
    assert not list(team.home.rglob("contracts.jsonl"))  # nothing written on the server
    with pytest.raises(AccessDenied, match="bob has no access to the collection 'Contracts'"):
        extract_to(team.client("bob"), "Contracts", resolve("key_facts"), team.docs / "nope.jsonl")


def test_a_reopened_conversation_names_uploads_as_their_user_sees_them(tmp_path: Path):
    """A kept conversation holds its sources' paths as text: reopened through the server, an
    upload is named as on the user's machine (someone else's as /uploads/...), never by the
    server's own folder."""
    from rag.answering.conversations import Conversation, Turn
    from server.calls import _paths_shown

    uploads = Uploads(tmp_path)
    mine, theirs = uploads.copy_of("alice", "/home/alice/notes/pump.txt"), uploads.copy_of("bob", "/home/bob/plan.txt")
    turn = Turn("How often?", "Every week [1].", citations=[{"number": 1, "path": str(mine)}, {"number": 2, "path": str(theirs)}],
                sources=[{"path": str(mine), "text": "weekly"}, {"text": "no path"}])
    shown = _paths_shown(Conversation("c1", "Handbook", "Pump", 0.0, 0.0, [turn]), lambda p: uploads.shown("alice", p))
    assert [c["path"] for c in shown.turns[0].citations] == ["/home/alice/notes/pump.txt", str(Path("/uploads", *theirs.relative_to(uploads.root).parts))]
    assert shown.turns[0].sources == [{"path": "/home/alice/notes/pump.txt", "text": "weekly"}, {"text": "no path"}]
    assert str(tmp_path) not in json.dumps(shown.turns[0].citations) and turn.citations[0]["path"] == str(mine)  # a copy
