"""Conversations, check-ups and followed folders in the server's shared database: two replicas'
connections to one database (a real throwaway PostgreSQL, and SQLite) see one copy, changes made
at once on both are all kept, and ``archivist-server migrate`` moves a home folder's files in once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_database import PASSWORD, cluster, database_url, replicas  # noqa: F401 - fixtures

from rag.answering.checkup import CheckQuestion, Checkup, CheckupFiles
from rag.answering.conversations import ConversationFiles, ConversationNotFound, Turn
from rag.indexing.folder_changes import Changes
from rag.indexing.following import FollowedFolders, FollowFile
from rag.indexing.ingest import FileOutcome
from server.cli import main
from server.collection_state import CheckupRows, ConversationRows, FollowRows
from server.database import Database

Replicas = tuple[Database, Database]


def test_a_conversation_started_on_one_replica_continues_on_the_other(replicas: Replicas):
    one, two = ConversationRows(replicas[0]).owned_by("ann"), ConversationRows(replicas[1]).owned_by("ann")
    talk = one.create("c1")
    before = one.revision("c1")
    two.append("c1", talk.id, Turn("How often is the pump oiled?", "Every 200 hours [1].",
                                   citations=[{"number": 1, "path": "/docs/pump.txt", "page": None, "heading": None,
                                               "start": 0, "end": 9, "text": "200 hours", "snippet": "200 hours"}]))
    one.append("c1", talk.id, Turn("And the boiler?", "Every May.", data={"month": "May"}))
    seen = two.get("c1", talk.id)
    assert [t.question for t in seen.turns] == ["How often is the pump oiled?", "And the boiler?"]
    assert seen.title == "How often is the pump oiled?" and seen.turns[1].data == {"month": "May"}
    assert seen.turns[0].cited()[0].snippet == "200 hours"
    assert one.revision("c1") != before
    renamed = two.rename("c1", talk.id, "  Maintenance  ")
    assert renamed.title == "Maintenance" and one.list("c1")[0].title == "Maintenance"
    assert "Every May." in one.export_markdown("c1", talk.id)

    other = ConversationRows(replicas[1]).owned_by("bob")  # another user, or the same id in another collection
    assert other.list("c1") == [] and one.list("c2") == []
    for store, collection in ((other, "c1"), (one, "c2")):
        with pytest.raises(ConversationNotFound):
            store.get(collection, talk.id)
        with pytest.raises(ConversationNotFound):
            store.append(collection, talk.id, Turn("q", "a"))
        store.delete(collection, talk.id)  # not theirs: nothing happens
    assert len(two.get("c1", talk.id).turns) == 2
    two.delete("c1", talk.id)
    assert one.list("c1") == []


def test_answers_finished_at_once_on_two_replicas_are_all_kept_in_turn(replicas: Replicas):
    stores = [ConversationRows(db).owned_by("ann") for db in replicas]
    talk = stores[0].create("c1", "Busy")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: stores[n % 2].append("c1", talk.id, Turn(f"question {n}", f"answer {n}")), range(24)))
    turns = stores[1].get("c1", talk.id).turns
    assert sorted(t.question for t in turns) == sorted(f"question {n}" for n in range(24))


def test_a_deleted_collection_s_conversations_go_whoever_held_them(replicas: Replicas):
    rows = ConversationRows(replicas[0])
    for owner in ("ann", "bob"):
        talk = rows.owned_by(owner).create("c1")
        rows.owned_by(owner).append("c1", talk.id, Turn("q", "a"))
    kept = rows.owned_by("ann").create("c2")
    ConversationRows(replicas[1]).forget("c1")
    assert rows.owned_by("ann").list("c1") == [] == rows.owned_by("bob").list("c1")
    assert [t.id for t in rows.owned_by("ann").list("c2")] == [kept.id]
    with replicas[0].engine.connect() as conn:  # no turn outlives its conversation
        assert conn.exec_driver_sql("SELECT count(*) FROM turns").scalar_one() == 0


def test_check_up_questions_added_on_both_replicas_at_once_are_all_kept(replicas: Replicas):
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: Checkup(CheckupRows(replicas[n % 2]), "c1").add(CheckQuestion(f"q{n}", "a.txt")),
                      range(12)))
    state = Checkup(CheckupRows(replicas[1]), "c1").state()
    assert sorted(q.question for q in state.questions) == sorted(f"q{n}" for n in range(12))
    Checkup(CheckupRows(replicas[0]), "c1").remove("q3")
    report = Checkup(CheckupRows(replicas[1]), "c1").run(lambda _q: [], "model-a")
    assert report.previous is None and len(report.run.ranks) == 11
    again = Checkup(CheckupRows(replicas[0]), "c1").run(lambda _q: [], "model-b")
    assert again.previous is not None and again.previous.embedder == "model-a"
    CheckupRows(replicas[1]).forget("c1")
    assert CheckupRows(replicas[0]).read("c1") == {}


def test_a_folder_followed_through_another_replica_is_watched_by_the_one_watching(replicas: Replicas, tmp_path: Path):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "pump.txt").write_text("The pump needs oil every 200 hours.")
    rounds: dict[str, list[tuple[str, list[Path]]]] = {"watching": [], "other": []}
    caught_up = threading.Event()

    def applying(name: str):
        def apply(collection: str, changes: Changes | None, folders: list[Path]) -> list[FileOutcome]:
            rounds[name].append((collection, list(folders)))
            caught_up.set()
            return []
        return apply

    watching = FollowedFolders(FollowRows(replicas[0]), applying("watching"), reread=0.1)
    other = FollowedFolders(FollowRows(replicas[1]), applying("other"), reread=0.1)
    watching.start()
    try:
        assert other.follow("Plant", folder).folders == [folder]  # through the replica that does not watch
        assert caught_up.wait(10), "the watching replica did not pick up the folder"
        assert rounds["watching"][0] == ("Plant", [folder]) and rounds["other"] == []
        other.rename("Plant", "Works")
        deadline = time.monotonic() + 10
        while ("Works", [folder]) not in rounds["watching"]:
            assert time.monotonic() < deadline, rounds
            time.sleep(0.05)
        assert watching.get("Works").folders == [folder] and watching.get("Plant").folders == []
        other.unfollow("Works", folder)
        deadline = time.monotonic() + 10
        while watching._watchers:  # noqa: SLF001 - no watcher left running for a folder nobody follows
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        watching.stop()
    assert rounds["other"] == []


def test_migrate_moves_conversations_check_ups_and_followed_folders_in_once(database_url: str, tmp_path: Path,  # noqa: F811
                                                                            capsys: pytest.CaptureFixture[str]):
    home = tmp_path / "home"
    talks = ConversationFiles(home / "conversations", by_owner=True)
    talk = talks.owned_by("0123abcd").create("c1")
    talks.owned_by("0123abcd").append("c1", talk.id, Turn("Where is the pump?", "In the cellar."))
    twin = home / "conversations" / "4567ef01" / "c1" / f"{talk.id}.json"  # another user's, of the same id
    twin.parent.mkdir(parents=True)
    twin.write_text((home / "conversations" / "0123abcd" / "c1" / f"{talk.id}.json").read_text())
    damaged = home / "conversations" / "0123abcd" / "c1" / "0000damaged.json"
    damaged.write_text('{"turns": ["not a turn"]}')
    Checkup(CheckupFiles(home / "data" / "checkups"), "c1").add(CheckQuestion("Where is the pump?", "pump.txt"))
    (home / "data" / "checkups" / "c2.json").write_bytes(b"\xff\xfe not json")
    (home / "docs").mkdir(parents=True)
    FollowFile(home / "data" / "followed.json").add("Plant", str(home / "docs"))
    (home / "server.toml").write_text(f'[server]\ndatabase_url = "{database_url}"\n', encoding="utf-8")

    assert main(["--home", str(home), "migrate"]) == 0
    said = capsys.readouterr().out
    assert f"Moved from {home / 'conversations'}: 2 conversations. Left out, as they cannot be read: {damaged}." in said
    assert f"Moved from {home / 'data' / 'checkups'}: 1 check-up. Left out, as they cannot be read: " \
           f"{home / 'data' / 'checkups' / 'c2.json'}." in said
    assert f"Moved from {home / 'data' / 'followed.json'}: 1 followed folder." in said
    assert main(["--home", str(home), "migrate"]) == 0
    assert "Moved from" not in capsys.readouterr().out  # nothing moves twice

    database = Database(database_url)
    try:
        moved = ConversationRows(database).owned_by("0123abcd").get("c1", talk.id)
        assert [(t.question, t.answer) for t in moved.turns] == [("Where is the pump?", "In the cellar.")]
        [other] = ConversationRows(database).owned_by("4567ef01").list("c1")  # kept, under an id of its own
        assert other.id != talk.id and [t.answer for t in other.turns] == ["In the cellar."]
        assert Checkup(CheckupRows(database), "c1").state().questions == [CheckQuestion("Where is the pump?", "pump.txt")]
        assert FollowRows(database).mapping() == {"Plant": [str(home / "docs")]}
    finally:
        database.close()
    assert PASSWORD not in said


def test_a_damaged_check_up_is_read_for_what_it_holds_and_mended_at_the_next_change(replicas: Replicas):
    with replicas[0].writing() as conn:
        conn.exec_driver_sql("INSERT INTO checkups (collection, body) VALUES ('c1', "
                             "'{\"questions\": [1, {\"question\": \"q\", \"document\": \"a.txt\"}, {\"bad\": 2}], \"runs\": 7}')")
    checkup = Checkup(CheckupRows(replicas[1]), "c1")
    assert checkup.state().questions == [CheckQuestion("q", "a.txt")] and checkup.state().last is None
    checkup.add(CheckQuestion("r", "b.txt"))
    assert CheckupRows(replicas[0]).read("c1")["questions"] == [
        {"question": "q", "document": "a.txt", "passage": ""}, {"question": "r", "document": "b.txt", "passage": ""}]


def test_a_watch_that_cannot_read_the_list_at_first_reads_it_at_the_next_round(tmp_path: Path):
    folder = tmp_path / "shared"
    folder.mkdir()

    class Blinking(FollowFile):
        failures = 0

        def mapping(self) -> dict[str, list[str]]:
            if self.failures:
                self.failures -= 1
                raise OSError("the database is not answering")
            return super().mapping()

    kept = Blinking(tmp_path / "followed.json")
    kept.add("Plant", str(folder))
    kept.failures = 2  # the first two reads of the list fail
    rounds: list[str] = []
    watching = FollowedFolders(kept, lambda collection, _changes, _folders: rounds.append(collection) or [],
                               reread=0.05)
    watching.start()
    try:
        deadline = time.monotonic() + 10
        while not rounds:
            assert time.monotonic() < deadline, "the folder was never watched"
            time.sleep(0.05)
    finally:
        watching.stop()
    assert rounds == ["Plant"]
