"""The main window: library, chat and sources side by side; it wires gestures to backend jobs."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QMimeData, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter, QStackedWidget

from desktop.about import show_about
from desktop.backend import Backend
from desktop.chat_view import ChatPanel, ShownTurn
from desktop.follow import FollowedFolders
from desktop.library_view import LibraryPanel
from desktop.reembed_dialog import offer_reembed
from desktop.settings_dialog import SettingsDialog
from desktop.source_view import SourcePanel
from desktop.status_bar import StatusBar
from desktop.welcome import WelcomePage
from engine import ArchivistError
from rag.composition import models_dir
from rag.errors import EmbedderMismatch

log = logging.getLogger(__name__)


def plain(error: object) -> str:
    """An error as a sentence for people (ours already are)."""
    if isinstance(error, ArchivistError):
        return str(error)
    return QCoreApplication.translate("MainWindow", "Something went wrong: {}. Details are in the log file.").format(error)


class MainWindow(QMainWindow):
    """Shows the backend's state; never does the work itself."""

    def __init__(self, backend: Backend, first_run: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.setWindowTitle(self.tr("Archivist"))
        self.resize(1280, 800)
        self.setAcceptDrops(True)
        self.ingest_job: Any = None
        self.ask_job: Any = None
        self.extract_job: Any = None
        self.download_job: Any = None
        self.conversation: str | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.checkup_dialog: Any = None

        self.follow = FollowedFolders(backend)
        self.library = LibraryPanel()
        self.chat = ChatPanel()
        self.sources = SourcePanel()
        split = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((self.library, 3), (self.chat, 5), (self.sources, 3)):
            split.addWidget(widget)
            split.setStretchFactor(split.indexOf(widget), stretch)
        split.setSizes([380, 620, 360])
        self.welcome = WelcomePage(models_dir(backend.settings))
        self.pages = QStackedWidget()
        self.pages.addWidget(split)
        self.pages.addWidget(self.welcome)
        self.setCentralWidget(self.pages)
        if first_run:
            self.pages.setCurrentWidget(self.welcome)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self._menus()
        self._connect()
        self.setEnabled(True)
        self.status.showMessage(self.tr("Opening the knowledge base…"))
        self._poll = QTimer(self)
        self._poll.setInterval(2000)
        self._poll.timeout.connect(self._refresh_status_bar)
        self._poll.start()

    # -- set-up -----------------------------------------------------------------------------

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu(self.tr("&File"))
        add_files = QAction(self.tr("Add files…"), self, shortcut=QKeySequence("Ctrl+O"), triggered=self.library.choose_files)
        add_folder = QAction(self.tr("Add folder…"), self, triggered=self.library.choose_folder)
        settings = QAction(self.tr("Settings…"), self, shortcut=QKeySequence("Ctrl+,"), triggered=self.open_settings)
        unload = QAction(self.tr("Unload the model now"), self, triggered=lambda: self.backend.kb and self.backend.unload_model())
        checkup = QAction(self.tr("Check-up…"), self, triggered=self.open_checkup)
        quit_action = QAction(self.tr("Quit"), self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        file_menu.addActions([add_files, add_folder])
        file_menu.addSeparator()
        file_menu.addActions([settings, checkup, unload])
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        chat_menu = self.menuBar().addMenu(self.tr("&Conversation"))
        chat_menu.addAction(QAction(self.tr("New conversation"), self, shortcut=QKeySequence("Ctrl+N"), triggered=self.new_conversation))
        chat_menu.addAction(QAction(self.tr("Ask a question"), self, shortcut=QKeySequence("Ctrl+L"),
                                    triggered=lambda: self.chat.question.setFocus()))
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        help_menu.addAction(QAction(self.tr("Getting started"), self, triggered=lambda: self.pages.setCurrentWidget(self.welcome)))
        help_menu.addAction(QAction(self.tr("About Archivist"), self, triggered=lambda: show_about(self)))

    def _connect(self) -> None:
        b = self.backend
        b.ready.connect(self._ready)
        b.failed.connect(lambda error: self._error(self.tr("The knowledge base could not be opened"), error))
        b.model_status.connect(self.status.show_model)
        lib = self.library
        lib.collection_chosen.connect(self.choose_collection)
        lib.add_paths.connect(self.add_paths)
        lib.remove_paths.connect(self.remove_paths)
        lib.cancel_ingest.connect(lambda: self.ingest_job and self.ingest_job.stop())
        lib.follow_folder.connect(lambda folder: (self.follow.follow(b.collection, folder), self._show_followed()))
        lib.unfollow_folder.connect(lambda folder: (self.follow.unfollow(b.collection, folder), self._show_followed()))
        self.follow.changed.connect(self._followed_changed)
        lib.create_collection.connect(lambda name: self._collection_op(lambda kb: kb.create_collection(name), name))
        lib.rename_collection.connect(lambda old, new: self._collection_op(lambda kb: kb.rename_collection(old, new), new))
        lib.delete_collection.connect(lambda name: self._collection_op(lambda kb: kb.delete_collection(name), None))
        lib.set_adapter.connect(lambda name, path: self._collection_op(lambda kb: kb.set_adapter(name, path), name))
        c = self.chat
        c.ask.connect(self.ask)
        c.stop.connect(lambda: self.ask_job and self.ask_job.stop())
        c.citation_clicked.connect(self.sources.show_citation)
        c.conversation_chosen.connect(self.open_conversation)
        c.conversation_new.connect(self.new_conversation)
        c.conversation_rename.connect(lambda cid, title: self._conversation_op(lambda kb: kb.rename_conversation(b.collection, cid, title)))
        c.conversation_delete.connect(self.delete_conversation)
        c.conversation_export.connect(self.export_conversation)
        c.structured.extract_requested.connect(self.extract)
        c.structured.source_clicked.connect(self.sources.show_citation)
        c.structured.cancel_extract.clicked.connect(lambda: self.extract_job and self.extract_job.stop())
        w = self.welcome
        w.use_starter.connect(lambda: self.pages.setCurrentIndex(0))
        w.download.connect(self.open_settings)
        w.download_embedder.connect(lambda: self.open_settings("paraphrase-multilingual-MiniLM-L12-v2"))
        w.choose_model.connect(self.use_model_file)
        w.try_samples.connect(self.load_samples)

    # -- drag and drop ----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = _local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.pages.setCurrentIndex(0)
            self.add_paths(paths, False)

    # -- knowledge base ---------------------------------------------------------------------

    def _ready(self) -> None:
        self.status.showMessage(self.tr("Ready"), 3000)
        self.refresh_collections()
        self.follow.start()
        self._show_followed()

    def _show_followed(self, last_change: str | None = None) -> None:
        self.library.set_followed(self.follow.folders(self.backend.collection), last_change)

    def _followed_changed(self, collection: str, summary: str) -> None:
        if collection == self.backend.collection:
            self._show_followed(summary)
            self.refresh()

    def refresh_collections(self) -> None:
        job = self.backend.run("io", "collections", lambda _job: [c.name for c in self.backend.kb.collections()])
        job.done.connect(lambda names: (self.library.set_collections(names, self.backend.collection), self.refresh()))

    def choose_collection(self, name: str) -> None:
        self.backend.collection = name
        self.conversation = None
        self.chat.show_turns([])
        self._show_followed("")
        self.refresh()

    def refresh(self) -> None:
        """Reload the documents and conversations of the current collection."""
        if self.backend.kb is None:
            return
        status = self.backend.status()
        status.done.connect(self._show_status)
        status.failed.connect(lambda e: self._error(self.tr("Cannot read the collection"), e))
        self._load_conversations()

    def _show_status(self, status: Any) -> None:
        self.library.set_status(status)
        self.status.show_collection(status.info.name, status.count("indexed"), status.chunks)

    def add_paths(self, paths: list[Path], force: bool) -> None:
        if self.backend.kb is None:
            QTimer.singleShot(300, lambda: self.add_paths(paths, force))  # still opening; try again shortly
            return
        if self.ingest_job is not None:
            self.status.showMessage(self.tr("Already indexing; add these when it finishes."), 5000)
            return
        self.library.mark_queued(paths)
        job = self.backend.ingest(paths, force)
        self.ingest_job = job
        job.progress.connect(self.library.show_progress)
        job.done.connect(self._ingested)
        job.failed.connect(self._ingest_failed)

    def _ingested(self, report: Any) -> None:
        self.ingest_job = None
        self.library.set_ingesting(False)
        self.library.model.clear_live()
        message = self.tr("{} indexed, {} unchanged, {} failed").format(
            report.count("indexed"), report.count("unchanged"), report.count("failed"))
        if report.cancelled:
            message = self.tr("Indexing stopped; what was done is kept. ") + message
        self.status.showMessage(message, 8000)
        self.refresh()

    def _ingest_failed(self, error: object) -> None:
        self.ingest_job = None
        self.library.set_ingesting(False)
        self.library.model.clear_live()
        self._error(self.tr("Indexing stopped"), error)
        self.refresh()

    def remove_paths(self, paths: list[Path]) -> None:
        job = self.backend.remove(paths)
        job.done.connect(lambda _r: self.refresh())
        job.failed.connect(lambda e: self._error(self.tr("Cannot remove"), e))

    def _collection_op(self, op: Any, select: str | None) -> None:
        job = self.backend.run("io", "collection", lambda _job: op(self.backend.kb))

        def after(_result: Any) -> None:
            if select:
                self.backend.collection = select
            elif self.backend.kb is not None:
                names = [c.name for c in self.backend.kb.collections()]
                self.backend.collection = names[0] if names else self.backend.settings.collection
            self.refresh_collections()

        job.done.connect(after)
        job.failed.connect(lambda e: self._error(self.tr("Cannot change the collection"), e))

    # -- asking -----------------------------------------------------------------------------

    def ask(self, question: str, regenerate: bool) -> None:
        if self.backend.kb is None:
            self.status.showMessage(self.tr("Still opening the knowledge base…"), 3000)
            return
        from rag.ask import AskOptions

        schema = self.chat.structured.schema()
        settings = self.backend.settings
        if self.conversation is None and schema is None:
            self.conversation = self.backend.kb.new_conversation(self.backend.collection).id
        options = AskOptions(
            schema=schema, conversation=self.conversation if schema is None else None,
            effort=settings.reasoning_effort, use_cache=not regenerate,
        )
        self.chat.begin(question)
        job = self.backend.ask(question, options)
        self.ask_job = job
        job.partial.connect(self._ask_event)
        job.done.connect(lambda _last: setattr(self, "ask_job", None))
        job.failed.connect(self._ask_failed)

    def _ask_failed(self, error: object) -> None:
        self.ask_job = None
        self.chat.fail(plain(error))
        if isinstance(error, EmbedderMismatch):
            offer_reembed(self, self.backend, error, self.refresh)

    def _ask_event(self, event: Any) -> None:
        from rag.ask import AnswerText, Answered, AskFailed, ModelLoading, Reasoning, Retrieved

        if isinstance(event, Retrieved):
            self.status.showMessage(self.tr("{} sources ({})").format(len(event.sources), event.mode), 4000)
        elif isinstance(event, ModelLoading):
            self.status.showMessage(self.tr("Loading {}…").format(event.model))
        elif isinstance(event, Reasoning):
            self.chat.add_reasoning(event.text)
        elif isinstance(event, AnswerText):
            self.chat.add_answer(event.text)
        elif isinstance(event, Answered):
            self.chat.finish(event.result)
            if event.result.data is not None:
                self.chat.structured.show_result(event.result.data, event.result.field_sources)
            if event.result.citations:
                self.sources.show_citation(event.result.citations[0])
            self.status.clearMessage()
            self._load_conversations()
        elif isinstance(event, AskFailed):
            self.chat.fail(plain(event.error))
            self.status.clearMessage()

    def extract(self, schema: Any, out: str) -> None:
        from rag.extract import extract, write_csv, write_jsonl

        collection = self.backend.collection

        def work(job: Any) -> int:
            rows = list(extract(self.backend.kb, collection, schema, job.report, job.cancel, self.backend.settings.reasoning_effort))
            writer = write_jsonl if out.lower().endswith(".jsonl") else write_csv
            return writer(rows, Path(out))

        job = self.backend.run("model", "extract", work)
        self.extract_job = job
        job.progress.connect(lambda p: self.chat.structured.show_extract_progress(p.done, p.total))
        job.done.connect(lambda n: (self.chat.structured.show_extract_progress(1, 1), setattr(self, "extract_job", None),
                                    self.status.showMessage(self.tr("{} documents written to {}").format(n, out), 8000)))
        job.failed.connect(lambda e: (self.chat.structured.show_extract_progress(1, 1), self._error(self.tr("Extraction stopped"), e)))

    # -- conversations ----------------------------------------------------------------------

    def _load_conversations(self) -> None:
        collection = self.backend.collection
        job = self.backend.run("io", "conversations", lambda _job: self.backend.kb.list_conversations(collection))
        job.done.connect(lambda items: self.chat.set_conversations([(c.id, c.title) for c in items], self.conversation))

    def new_conversation(self) -> None:
        self.conversation = None
        self.chat.show_turns([])
        self.chat.question.setFocus()
        self._load_conversations()

    def open_conversation(self, conversation_id: str) -> None:
        if not conversation_id:
            return
        collection = self.backend.collection
        job = self.backend.run("io", "conversation", lambda _job: self.backend.kb.conversations.get(
            self.backend.kb._find(collection).id, conversation_id))

        def show(conversation: Any) -> None:
            self.conversation = conversation.id
            turns = [ShownTurn(t.question, t.answer, citations=[_Cited(c) for c in t.citations], mode=t.mode, data=t.data)
                     for t in conversation.turns]
            self.chat.show_turns(turns)

        job.done.connect(show)

    def delete_conversation(self, conversation_id: str) -> None:
        if conversation_id == self.conversation:
            self.conversation = None
            self.chat.show_turns([])
        self._conversation_op(lambda kb: kb.delete_conversation(self.backend.collection, conversation_id))

    def export_conversation(self, conversation_id: str, path: str) -> None:
        job = self.backend.run("io", "export", lambda _job: Path(path).write_text(
            self.backend.kb.export_conversation(self.backend.collection, conversation_id), encoding="utf-8"))
        job.done.connect(lambda _n: self.status.showMessage(self.tr("Exported to {}").format(path), 5000))
        job.failed.connect(lambda e: self._error(self.tr("Cannot export"), e))

    def _conversation_op(self, op: Any) -> None:
        job = self.backend.run("io", "conversation", lambda _job: op(self.backend.kb))
        job.done.connect(lambda _r: self._load_conversations())

    # -- settings, first run ----------------------------------------------------------------

    def open_checkup(self) -> None:
        if self.backend.kb is None:
            return
        from desktop.checkup_dialog import CheckupDialog

        self.checkup_dialog = CheckupDialog(self.backend, self)
        self.checkup_dialog.open()

    def open_settings(self, catalog_key: str = "") -> None:
        dialog = SettingsDialog(self.backend.settings, self)
        if catalog_key:
            dialog.download.select(catalog_key)
        self.settings_dialog = dialog
        dialog.saved.connect(self.apply_settings)
        dialog.clear_cache.connect(self.clear_cache)
        dialog.download.start.connect(self.start_download)
        dialog.download.cancel.connect(lambda: self.download_job and self.download_job.stop())
        dialog.open()

    def apply_settings(self, settings: Any) -> None:
        self.status.showMessage(self.tr("Applying the new settings…"))
        self.backend.reopen(settings)

    def use_model_file(self, path: str) -> None:
        settings = dataclasses.replace(self.backend.settings, model_path=path)
        settings.save()
        self.pages.setCurrentIndex(0)
        self.apply_settings(settings)

    def clear_cache(self) -> None:
        job = self.backend.run("io", "clear cache", lambda _job: self.backend.kb.cache and self.backend.kb.cache.clear())
        job.done.connect(lambda _r: self.status.showMessage(self.tr("The answer cache is empty."), 4000))

    def start_download(self, model: Any) -> None:
        from engine.download import download

        folder = models_dir(self.backend.settings)
        mirror = self.backend.settings.download_mirror

        def work(job: Any) -> Path:
            for file in model.files:  # an unverified model was accepted as such in the download box
                download(file.url, model.folder(folder) / file.name, file.sha256, mirror, job.report, job.cancel,
                         accept_unverified=not model.verified)
            return model.entry(folder)

        job = self.backend.run("io", "download", work)
        self.download_job = job
        box = self.settings_dialog.download if self.settings_dialog else None
        if box is not None:
            job.progress.connect(box.show_progress)
            job.failed.connect(lambda e: box.finished(plain(e)))
            done = (self.tr("Downloaded and verified. It is used from now on.") if model.verified else
                    self.tr("Downloaded; checked against the server's checksum only. It is used from now on."))
            job.done.connect(lambda _p: box.finished(done))
        job.done.connect(lambda path: self._downloaded(model, path))

    def _downloaded(self, model: Any, path: Path) -> None:
        self.download_job = None
        settings = self.backend.settings
        if model.kind == "embedding":  # used from now on; collections built before offer to re-embed
            settings = dataclasses.replace(settings, embedding_model=str(path))
            settings.save()
        self.apply_settings(settings)

    def load_samples(self) -> None:
        from resources import resource_path

        self.pages.setCurrentIndex(0)
        samples = resource_path("samples")

        def go() -> None:
            if self.backend.kb is None:
                QTimer.singleShot(300, go)
                return
            job = self.backend.run("io", "samples collection", lambda _job: self.backend.kb.collections())

            def ready(infos: Any) -> None:
                if not any(i.name == "Samples" for i in infos):
                    self.backend.kb.create_collection("Samples")
                self.backend.collection = "Samples"
                self.refresh_collections()
                self.add_paths([samples], False)

            job.done.connect(ready)

        go()

    # -- status and errors ------------------------------------------------------------------

    def _refresh_status_bar(self) -> None:
        status = self.backend.model_now()
        if status is not None:
            self.status.show_model(status)
        if self.backend.kb is not None:
            self.status.show_embedder(self.backend.kb.embedder.status())
        cache = self.backend.kb.cache if self.backend.kb is not None else None
        if self.backend.kb is not None:
            if cache is None:
                self.status.show_cache(0, 0, enabled=False)
            else:
                job = self.backend.run("io", "cache stats", lambda _job: cache.stats())
                job.done.connect(lambda s: self.status.show_cache(s.hits, s.misses))

    def _error(self, title: str, error: object) -> None:
        log.warning("%s: %s", title, error)
        if isinstance(error, EmbedderMismatch):
            offer_reembed(self, self.backend, error, self.refresh)
            return
        QMessageBox.warning(self, title, plain(error))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        busy = self.ingest_job is not None or self.ask_job is not None or self.download_job is not None
        if busy and QMessageBox.question(
            self, self.tr("Quit Archivist"), self.tr("Work is still running. Stop it and quit? Finished work is kept.")
        ) != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self._poll.stop()
        self.follow.stop()
        self.backend.shutdown()
        event.accept()


@dataclasses.dataclass
class _Cited:
    """A citation read back from a saved conversation."""

    raw: dict

    def __getattr__(self, name: str) -> Any:
        if name == "path":
            from rag.documents import text_to_path

            return text_to_path(self.raw["path"])
        return self.raw[name]


def _local_paths(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
