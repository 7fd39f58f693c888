"""Switching a collection's embedding model: refused when mixed, re-embedded whole, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from samples import PROSE

from engine import CancelToken
from rag.embedding import Embedder, bundled_model_dir
from rag.errors import EmbedderMismatch, ReembedCancelled
from rag.knowledge_base import KnowledgeBase


@pytest.fixture(scope="module")
def other_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """A second, real sentence-transformers model: MiniLM's encoder with CLS pooling and a
    128-wide projection, saved to a folder as any downloaded model would be."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    encoder = models.Transformer(str(bundled_model_dir()))
    pooling = models.Pooling(encoder.get_embedding_dimension(), pooling_mode="cls")
    dense = models.Dense(encoder.get_embedding_dimension(), 128)
    folder = tmp_path_factory.mktemp("other-model")
    SentenceTransformer(modules=[encoder, pooling, dense], device="cpu").save(str(folder))
    return Embedder(folder)


@pytest.fixture
def built(kb: KnowledgeBase, tmp_path: Path) -> KnowledgeBase:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(PROSE * 3):
        (docs / f"note{i:02d}.txt").write_text(f"{text} ({i})")
    assert kb.ingest([docs], "Docs").count("indexed") == 15
    return kb


def test_reembed_swaps_only_when_complete(built: KnowledgeBase, other_embedder: Embedder, tmp_path: Path):
    switched = KnowledgeBase(built.store, other_embedder, tmp_path / "kb" / "keyword")
    with pytest.raises(EmbedderMismatch, match="re-embed"):
        switched.search("treaty", "Docs")
    chunks = built.status("Docs").chunks

    cancel = CancelToken()
    seen: list[tuple[int, int]] = []

    def stop_after_first(step) -> None:
        done, total = step.done, step.total
        seen.append((done, total))
        cancel.cancel()

    with pytest.raises(ReembedCancelled):
        switched.reembed("Docs", stop_after_first, cancel, batch=4)
    assert seen == [(4, chunks)]
    # Stopped: the old vectors are untouched and still answer with the old model.
    assert built.store.find("Docs").embedder == built.embedder.model_id
    assert "1648" in built.search("when was the treaty signed", "Docs", limit=1)[0].text
    assert [c.name for c in built.collections()] == ["Docs"]

    progress: list[tuple[int, int]] = []
    info = switched.reembed("Docs", lambda step: progress.append((step.done, step.total)), batch=4)
    assert info.embedder == other_embedder.model_id and info.dimension == 128
    assert progress[-1] == (chunks, chunks) and len(progress) == -(-chunks // 4)
    assert switched.status("Docs").chunks == chunks
    assert "1648" in switched.search("when was the treaty signed", "Docs", limit=1)[0].text
    fresh = KnowledgeBase(built.store, built.embedder, tmp_path / "kw2")
    with pytest.raises(EmbedderMismatch):
        fresh.search("treaty", "Docs")


def test_a_swap_cut_off_halfway_is_repaired(built: KnowledgeBase):
    info = built.store.find("Docs")
    client = built.store._client
    client.get_collection(info.id).modify(name=info.id + "-old")  # as if killed between the two renames
    assert [c.name for c in built.store.collections()] == ["Docs"]
    assert built.store.find("Docs").id == info.id
    assert "1648" in built.search("when was the treaty signed", "Docs", limit=1)[0].text


def test_the_window_offers_to_reembed_and_does_it(qtbot, other_embedder: Embedder, tmp_path: Path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from archivist.composition import open_knowledge_base
    from archivist.settings import Settings
    from desktop.backend import Backend
    from desktop.main_window import MainWindow

    settings = Settings(data_dir=str(tmp_path / "data"), collection="Docs")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(PROSE):
        (docs / f"note{i:02d}.txt").write_text(text)
    first = open_knowledge_base(settings, with_model=False)  # indexed with the bundled model
    assert first.ingest([docs], "Docs").count("indexed") == len(PROSE)
    first.close()
    settings.embedding_model = str(other_embedder.model_dir)  # then the user picked another one
    backend = Backend(settings)
    window = MainWindow(backend)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(backend.ready, timeout=120_000):
        backend.open()

    answered: list[str] = []

    def answer_dialogs() -> None:  # what a person would click in each message box that comes up
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            answered.append(box.text())
            wanted = [b for b in box.buttons() if b.text() == "Re-embed now"] or box.buttons()
            wanted[0].click()

    clicker = QTimer()
    clicker.timeout.connect(answer_dialogs)
    clicker.start(100)
    try:
        window.chat.question.setPlainText("When was the treaty signed?")
        window.chat._submit()
        qtbot.waitUntil(lambda: len(answered) >= 2, timeout=120_000)
    finally:
        clicker.stop()
    assert "all-MiniLM-L6-v2" in answered[0] and "stay in use until it is complete" in answered[0]
    assert answered[1] == f"Docs now searches with {other_embedder.model_id}."
    assert backend.kb.collections()[0].embedder == other_embedder.model_id
    backend.shutdown()
