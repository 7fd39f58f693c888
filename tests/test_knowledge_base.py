"""Ingest and search through the real store, embedder and keyword index."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from samples import PROSE, make_image_pdf, make_pdf, make_table_pdf

from rag.answering.retrieval import SearchMode
from rag.errors import CollectionExists, CollectionNotFound, EmbedderMismatch
from rag.knowledge_base import KnowledgeBase
from rag.storage.vectors import VectorStore


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    for i, text in enumerate(PROSE):
        (root / f"note{i}.txt").write_text(text + "\n")
    make_pdf(root / "sub" / "manual.pdf", ["Chapter one is about installing the pump.", "Chapter two: the pump needs oil every 200 hours."])
    (root / "sub" / "readme.md").write_text("# Readme\n\n## Licence\n\nReleased under the MIT licence.\n")
    (root / ".hidden.txt").write_text("should never be indexed")
    (root / "drawing.svg").write_text("<svg/>")
    return root


def test_ingest_search_and_status(kb: KnowledgeBase, corpus: Path):
    report = kb.ingest([corpus], "Docs")
    assert report.count("indexed") == 7 and report.count("failed") == 0
    assert report.skipped == 1  # the .svg; hidden files are not even counted
    hits = kb.search("how often does the pump need oil", "Docs", limit=3)
    assert hits[0].path.name == "manual.pdf" and hits[0].page == 2
    hits = kb.search("yeast in the starter", "Docs", limit=3)
    assert hits[0].path.name == "note3.txt"
    assert hits[0].vector_rank == 1 and hits[0].keyword_rank == 1
    licence = kb.search("MIT licence", "Docs", limit=1)[0]
    assert licence.heading == "Readme › Licence"
    status = kb.status("Docs")
    assert status.count("indexed") == 7
    assert status.chunks == sum(f.chunks for f in status.files)
    assert next(f for f in status.files if f.path.name == "manual.pdf").pages == 2


def test_keyword_and_vector_modes(kb: KnowledgeBase, corpus: Path):
    kb.ingest([corpus], "Docs")
    keyword_only = kb.search("Osnabrück", "Docs", mode=SearchMode(vector=False))
    assert keyword_only[0].path.name == "note2.txt" and keyword_only[0].vector_rank is None
    vector_only = kb.search("plants turning sunlight into sugar", "Docs", mode=SearchMode(keyword=False))
    assert vector_only[0].path.name == "note1.txt" and vector_only[0].keyword_rank is None


def test_warm_loads_a_collection_before_the_first_search(kb: KnowledgeBase, corpus: Path, tmp_path: Path):
    kb.ingest([corpus], "Docs")
    other = KnowledgeBase(kb.store, kb.embedder, tmp_path / "other-keyword")  # a process started afresh
    other.warm("No such collection")  # nothing to warm: no error, the first search will say it
    other.warm("Docs")
    stored, keyword = other._collection("Docs")
    assert keyword.generation == stored.generation() and keyword.chunks() > 0  # in step before anyone searched
    other.close()


def test_search_limited_to_files(kb: KnowledgeBase, corpus: Path):
    kb.ingest([corpus], "Docs")
    hits = kb.search("war treaty", "Docs", paths=[corpus / "note4.txt"])
    assert hits and {h.path.name for h in hits} == {"note4.txt"}


def test_unchanged_changed_and_removed_files(kb: KnowledgeBase, corpus: Path):
    first = kb.ingest([corpus], "Docs")
    chunks = kb.status("Docs").chunks
    fingerprint = kb.fingerprint("Docs")

    again = kb.ingest([corpus], "Docs")
    assert again.count("unchanged") == 7 and again.count("indexed") == 0
    assert kb.status("Docs").chunks == chunks
    assert kb.fingerprint("Docs") == fingerprint
    assert again.seconds < first.seconds

    (corpus / "note3.txt").write_text("Glassblowers shape molten silica with long iron pipes.\n")
    changed = kb.ingest([corpus], "Docs")
    assert changed.count("indexed") == 1 and changed.count("unchanged") == 6
    assert kb.fingerprint("Docs") != fingerprint
    assert kb.search("glassblowers molten silica", "Docs", limit=1)[0].path.name == "note3.txt"
    assert all(h.path.name != "note3.txt" for h in kb.search("sourdough yeast starter", "Docs", limit=3, mode=SearchMode(vector=False)))

    (corpus / "note0.txt").unlink()
    pruned = kb.ingest([corpus], "Docs")
    assert [o.path.name for o in pruned.outcomes if o.status == "removed"] == ["note0.txt"]
    assert all(h.path.name != "note0.txt" for h in kb.search("lighthouse keeper ledger", "Docs", limit=5))
    status = kb.status("Docs")
    assert status.chunks == sum(f.chunks for f in status.files)


def test_bad_files_fail_alone_and_harm_nothing(kb: KnowledgeBase, corpus: Path, tmp_path: Path):
    kb.ingest([corpus], "Docs")
    before = kb.status("Docs").chunks
    bad = tmp_path / "bad"
    bad.mkdir()
    make_pdf(bad / "secret.pdf", ["classified"], user_password="pw")
    make_image_pdf(bad / "scan.pdf")
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage")
    (bad / "empty.txt").write_text("")
    (bad / "binary.txt").write_bytes(os.urandom(4096))
    (bad / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    (bad / "fine.md").write_text("# Fine\n\nThe only good file in the bad folder mentions zeppelins.\n")
    report = kb.ingest([bad], "Docs")
    reasons = {o.path.name: o.reason for o in report.failures}
    assert reasons == {
        "secret.pdf": "password-protected, skipped",
        "scan.pdf": "no text layer, and no text could be recognized on its pages",
        "corrupt.pdf": reasons["corrupt.pdf"],
        "empty.txt": "the file is empty",
        "binary.txt": "binary data, not text",
        "locked.docx": "password-protected, skipped",
    }
    assert reasons["corrupt.pdf"].startswith("damaged or not a valid file")
    assert report.count("indexed") == 1
    assert kb.status("Docs").chunks > before
    assert kb.search("zeppelins", "Docs", limit=1)[0].path.name == "fine.md"
    failed = {f.path.name: f.reason for f in kb.status("Docs").files if f.status == "failed"}
    assert failed == reasons


def test_file_that_turns_bad_loses_its_old_chunks_cleanly(kb: KnowledgeBase, tmp_path: Path):
    doc = tmp_path / "memo.txt"
    doc.write_text("The migration to the new office happens in March.\n")
    kb.ingest([doc], "Docs")
    doc.write_bytes(os.urandom(2048))
    report = kb.ingest([doc], "Docs")
    assert report.failures[0].reason == "binary data, not text"
    assert kb.status("Docs").chunks == 0
    assert kb.search("office migration", "Docs") == []


def test_non_utf8_file_name(kb: KnowledgeBase, tmp_path: Path):
    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9-menu.txt"
    with open(raw, "wb") as f:
        f.write(b"Espresso costs two euros and the croissant one.\n")
    report = kb.ingest([folder], "Docs")
    assert report.count("indexed") == 1
    hit = kb.search("price of espresso", "Docs", limit=1)[0]
    assert os.fsencode(hit.path) == raw
    assert [os.fsencode(o.path) for o in kb.remove([hit.path], "Docs")] == [raw]
    assert kb.status("Docs").chunks == 0


def test_collections_lifecycle(kb: KnowledgeBase, corpus: Path):
    kb.create_collection("财务 2024")
    with pytest.raises(CollectionExists):
        kb.create_collection("财务 2024")
    kb.ingest([corpus / "note1.txt"], "财务 2024")
    kb.ingest([corpus / "note2.txt"], "Other")
    assert [c.name for c in kb.collections()] == ["Other", "财务 2024"]
    kb.rename_collection("财务 2024", "Finance")
    assert kb.search("chlorophyll", "Finance", limit=1)[0].path.name == "note1.txt"
    assert kb.search("chlorophyll", "Other", limit=1)[0].path.name == "note2.txt"  # collections are separate
    kb.delete_collection("Finance")
    with pytest.raises(CollectionNotFound):
        kb.search("chlorophyll", "Finance")
    assert [c.name for c in kb.collections()] == ["Other"]


def test_second_client_sees_changes_through_the_store(kb: KnowledgeBase, corpus: Path, tmp_path: Path, embedder):
    kb.ingest([corpus / "note1.txt"], "Docs")
    other = KnowledgeBase(VectorStore.embedded(tmp_path / "kb" / "chroma"), embedder, tmp_path / "other-keyword")
    assert other.search("chlorophyll", "Docs", mode=SearchMode(vector=False))[0].path.name == "note1.txt"
    kb.ingest([corpus / "note2.txt"], "Docs")
    kb.remove([corpus / "note1.txt"], "Docs")
    names = {h.path.name for h in other.search("chlorophyll treaty Münster", "Docs", mode=SearchMode(vector=False))}
    assert names == {"note2.txt"}


def test_collection_refuses_another_embedder(kb: KnowledgeBase, corpus: Path, tmp_path: Path, embedder):
    import shutil

    kb.ingest([corpus / "note1.txt"], "Docs")
    copy = tmp_path / "other-model"
    shutil.copytree(embedder.model_dir, copy)
    config = copy / "config_sentence_transformers.json"
    (copy / "1_Pooling" / "config.json").write_text((copy / "1_Pooling" / "config.json").read_text().replace("true", "false", 1))
    assert config.exists()
    from rag.embedding import Embedder

    other = KnowledgeBase(kb.store, Embedder(copy), tmp_path / "kw2")
    with pytest.raises(EmbedderMismatch, match="re-embed"):
        other.search("chlorophyll", "Docs")


def test_the_embedding_model_unloads_when_idle_and_comes_back():
    from engine import ModelState
    from rag.embedding import Embedder

    now = [0.0]
    embedder = Embedder(idle_seconds=600, clock=lambda: now[0])
    try:
        first = embedder.embed_query("the pump needs oil")
        status = embedder.status()
        assert status.state is ModelState.READY and 40 * 2**20 < status.memory_bytes < 200 * 2**20
        now[0] += 599
        assert not embedder.idle.check()
        now[0] += 2
        assert embedder.idle.check()
        assert embedder.status().state is ModelState.UNLOADED_IDLE and embedder.status().memory_bytes == 0
        again = embedder.embed_query("the pump needs oil")
        assert embedder.status().state is ModelState.READY
        assert float(first @ again) > 0.9999
    finally:
        embedder.idle.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own priority is Linux's")
def test_indexing_embeds_on_a_lower_priority_thread_and_a_search_does_not_wait_for_it(kb: KnowledgeBase, corpus: Path):
    """A search's query is embedded on its own thread, at the caller's priority, while the
    indexing thread is busy (here: held) with a batch."""
    import threading

    kb.ingest([corpus], "Docs")
    kb.embedder.submit(["the indexing thread starts"]).result()
    held, release = threading.Event(), threading.Event()
    niceness = kb.embedder._bulk.submit(lambda: held.set() or release.wait(60) and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    try:
        assert held.wait(10)
        assert kb.search("how often does the pump need oil", "Docs", limit=1)[0].path.name == "manual.pdf"
    finally:
        release.set()
    assert niceness.result(10) == os.getpriority(os.PRIO_PROCESS, 0) + 10


def test_a_collection_answers_with_its_domain_adapter(tmp_path: Path, corpus: Path, embedder, tiny_gpt_oss: Path,
                                                     tiny_adapter: Path):
    from engine import LlamaEngine, LlamaSettings, ModelInvalid
    from rag.answering.ask import Answered, AskOptions

    model = LlamaEngine(LlamaSettings(tiny_gpt_oss, context_size=4096), idle_thread=False)
    kb = KnowledgeBase(VectorStore.embedded(tmp_path / "chroma"), embedder, tmp_path / "keyword", model=model)
    kb.ingest([corpus], "Medicine")
    kb.create_collection("Plain")
    with pytest.raises(ModelInvalid, match="not a LoRA adapter"):
        kb.set_adapter("Medicine", tiny_gpt_oss)
    assert kb.set_adapter("Medicine", tiny_adapter).adapter == str(tiny_adapter.absolute())
    assert {c.name: c.adapter for c in kb.collections()} == {"Medicine": str(tiny_adapter.absolute()), "Plain": ""}
    options = AskOptions(answer_tokens=16, use_cache=False)
    try:
        assert isinstance(list(kb.ask("What is it?", "Medicine", options))[-1], Answered)
        assert model._adapter == tiny_adapter.absolute()  # applied by llama.cpp for this collection's answers
        assert isinstance(list(kb.ask("What is it?", "Plain", options))[-1], Answered)
        assert model._adapter is None  # and taken off for the other
    finally:
        model.close()


def test_a_file_is_searchable_by_its_words_before_its_vectors_are_done(kb: KnowledgeBase, tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"note{i}.txt").write_text(PROSE[i] + f" Reference code ZX{i}Q.\n")
    seen: dict = {}

    def progress(state) -> None:
        # The embedding pass starts: every file has been read, no vector is written yet.
        if not seen and state.embedding and state.files_searchable == 3 and state.chunks_done == 0:
            seen["words"] = kb.search("ZX1Q", "Docs", limit=3)
            seen["vectors"] = kb.search(PROSE[1], "Docs", limit=3, mode=SearchMode(keyword=False))
            seen["status"] = {f.path.name: f.status for f in kb.status("Docs").files}

    kb.ingest([folder], "Docs", progress=progress)
    assert seen["words"][0].path.name == "note1.txt" and "ZX1Q" in seen["words"][0].text
    assert seen["vectors"] == []  # half-embedded files are never served by meaning
    assert set(seen["status"].values()) == {"words"}
    _, keyword = kb._collection("Docs")
    assert {f.status for f in kb.status("Docs").files} == {"indexed"}
    assert keyword.words_only() == {}
    assert keyword._db.execute("SELECT count(*) FROM held").fetchone() == (0,)  # text let go
    assert kb.search(PROSE[1], "Docs", limit=1, mode=SearchMode(keyword=False))[0].path.name == "note1.txt"


def test_an_edited_file_embeds_only_what_changed(kb: KnowledgeBase, tmp_path: Path):
    pages = [PROSE[0], PROSE[1], PROSE[2], PROSE[3]]
    pdf = make_pdf(tmp_path / "manual.pdf", pages)
    first = kb.ingest([pdf], "Docs").outcomes[0]
    embedded: list[int] = []
    submit = kb.embedder.submit
    kb.embedder.submit = lambda texts: embedded.append(len(texts)) or submit(texts)  # the real model, counted
    try:
        make_pdf(pdf, [PROSE[0], PROSE[1] + " The tide tables were revised in March.", PROSE[2], PROSE[3]])
        second = kb.ingest([pdf], "Docs").outcomes[0]
    finally:
        del kb.embedder.submit
    assert second.status == "indexed" and second.chunks == first.chunks
    assert second.reused == first.chunks - 1 and sum(embedded) == 1  # only the edited page's chunk
    hit = kb.search("when were the tide tables revised", "Docs", limit=1)[0]
    assert hit.page == 2 and "revised in March" in hit.text
    same = kb.search(PROSE[3], "Docs", limit=1, mode=SearchMode(keyword=False))[0]
    assert same.page == 4 and same.score > 0


def test_a_forced_reindex_that_reuses_every_vector_ends_indexed(kb: KnowledgeBase, tmp_path: Path):
    """Every chunk's vector is kept, so the file is committed at once, in the reading pass:
    being marked searchable by words afterwards must not undo that."""
    from rag.indexing.ingest import Ingestor

    (tmp_path / "note.txt").write_text(PROSE[0] + "\n")
    kb.ingest([tmp_path / "note.txt"], "Docs")
    stored, keyword = kb._collection("Docs")
    report = Ingestor(stored, keyword, kb.embedder, kb.chunking, batch_chunks=1).run([tmp_path / "note.txt"], force=True)
    assert [(o.status, o.reused) for o in report.outcomes] == [("indexed", 1)]
    assert [f.status for f in kb.status("Docs").files] == ["indexed"]


def test_stop_while_embedding_keeps_the_files_whose_vectors_are_in(kb: KnowledgeBase, tmp_path: Path):
    from engine.cancel import CancelToken
    from rag.indexing.ingest import Ingestor

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"note{i}.txt").write_text(PROSE[i] + "\n")
    stored, keyword = kb._collection("Docs", create=True)
    cancel = CancelToken()

    def progress(state) -> None:
        if state.embedding and state.chunks_done >= 2:  # the second file's vectors are in
            cancel.cancel()

    report = Ingestor(stored, keyword, kb.embedder, kb.chunking, batch_chunks=1).run([folder], progress, cancel)
    assert report.cancelled
    statuses = {f.path.name: f.status for f in kb.status("Docs").files}
    assert statuses == {"note0.txt": "indexed", "note1.txt": "indexed", "note2.txt": "words"}
    hits = kb.search(PROSE[2], "Docs", limit=3)  # still found by its words (tied with note0's vector rank 1)
    assert any(h.path.name == "note2.txt" and h.keyword_rank == 1 and h.vector_rank is None for h in hits)
    report = kb.ingest([folder], "Docs")
    assert [o.status for o in report.outcomes].count("indexed") == 1


def test_a_question_about_one_table_cell_finds_its_row(kb: KnowledgeBase, tmp_path: Path):
    rows = [["Part", "Stock", "Bin"]] + [[f"P-{i:03}", str(i * 7), f"B{i % 9}"] for i in range(80)]
    make_table_pdf(tmp_path / "stock.pdf", rows)
    kb.ingest([tmp_path / "stock.pdf"], "Docs")
    hit = kb.search("How many of part P-042 are in stock?", "Docs", limit=1)[0]
    assert "Part: P-042, Stock: 294, Bin: B6" in hit.text.splitlines()


def test_one_file_s_ingest_finishes_or_forgets_what_a_killed_run_left(kb: KnowledgeBase, tmp_path: Path):
    """An ingest of files alone reads the manifest's unfinished rows, not all of it (issue 30), and
    still finishes the files a killed run left pending, or forgets them when they are gone."""
    from rag.documents import document_key, path_to_text
    from rag.storage.manifest import PENDING, FileRecord

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"note{i}.txt").write_text(PROSE[i] + "\n")
    kb.ingest([folder / "note0.txt"], "Docs")
    stored, _ = kb._collection("Docs")
    # As a run killed after its first write leaves files: note0 being re-indexed (its old chunks
    # still stored), note1 never read, note2 since deleted.
    for name in ("note0.txt", "note1.txt", "note2.txt"):
        path = folder / name
        stored.put_file(FileRecord(document_key(path), path, PENDING, "new", path_text=path_to_text(path)))
    (folder / "note2.txt").unlink()
    assert {r.status for r in stored.unfinished_files().values()} == {"pending"} and len(stored.unfinished_files()) == 3
    extra = tmp_path / "extra.txt"
    extra.write_text(PROSE[4] + "\n")
    report = kb.ingest([extra], "Docs")
    assert sorted((o.path.name, o.status) for o in report.outcomes) == [
        ("extra.txt", "indexed"), ("note0.txt", "indexed"), ("note1.txt", "indexed"), ("note2.txt", "removed")]
    status = kb.status("Docs")
    assert {f.path.name: f.status for f in status.files} == {"note0.txt": "indexed", "note1.txt": "indexed", "extra.txt": "indexed"}
    assert status.chunks == sum(f.chunks for f in status.files)
    assert stored.unfinished_files() == {}


def test_remove_files_and_folders_present_or_gone(kb: KnowledgeBase, corpus: Path, tmp_path: Path):
    """A file is found by its own manifest row, on disk or not; a folder's files (a folder gone
    from disk too) among every row; a path the manifest never held removes nothing."""
    kb.ingest([corpus], "Docs")
    names = {f.path.name for f in kb.status("Docs").files}

    gone = corpus / "note0.txt"
    gone.unlink()
    assert [(o.path, o.status) for o in kb.remove([gone], "Docs")] == [(gone, "removed")]
    assert [o.path.name for o in kb.remove([corpus / "note1.txt", tmp_path / "never.txt"], "Docs")] == ["note1.txt"]
    assert kb.remove([corpus / "note2.txt" / "inside"], "Docs") == []
    assert sorted(o.path.name for o in kb.remove([corpus / "sub"], "Docs")) == ["manual.pdf", "readme.md"]
    moved = tmp_path / "moved"
    corpus.rename(moved)
    left = names - {"note0.txt", "note1.txt", "manual.pdf", "readme.md"}
    assert sorted(o.path.name for o in kb.remove([corpus], "Docs")) == sorted(left)
    assert kb.status("Docs").files == [] and kb.status("Docs").chunks == 0


def test_a_round_of_followed_changes_never_makes_a_deleted_collection_again(kb: KnowledgeBase, tmp_path: Path):
    """A watcher's round that comes after the collection was deleted (through another replica, whose
    change this one reads seconds later) must not make it again, ownerless."""
    folder = tmp_path / "followed"
    folder.mkdir()
    (folder / "a.txt").write_text(PROSE[0] + "\n")
    kb.create_collection("Gone")
    kb.following.kept.add("Gone", str(folder))
    kb.delete_collection("Gone")
    assert kb.following.mapping() == {}
    with pytest.raises(CollectionNotFound):
        kb._apply_followed("Gone", None, [folder])
    assert "Gone" not in [c.name for c in kb.collections()]
    kb.following.kept.add("Gone", str(folder))  # left by a crash: a new collection of the name follows nothing
    kb.create_collection("Gone")
    assert kb.followed("Gone").folders == []


def test_removing_a_path_that_was_a_folder_and_is_a_file_now_removes_the_folder_s_files(kb: KnowledgeBase,
                                                                                        tmp_path: Path):
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("a.txt", "b.txt"):
        (reports / name).write_text(PROSE[0] + "\n")
    kb.ingest([reports], "Docs")
    for name in ("a.txt", "b.txt"):
        (reports / name).unlink()
    reports.rmdir()
    reports.write_text("Now a file of the same name.\n")
    assert sorted(o.path.name for o in kb.remove([reports], "Docs")) == ["a.txt", "b.txt"]
    assert kb.status("Docs").files == []
