"""The main window: library, chat and sources side by side; it wires gestures to backend jobs."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDialog, QMainWindow, QMessageBox, QSplitter, QStackedWidget

from archivist import Settings, models_dir
from desktop.about import show_about
from desktop.asking import Asking, plain
from desktop.backend import Backend
from desktop.chat_view import ChatPanel
from desktop.library_view import LibraryPanel
from desktop.plain_text import warn
from desktop.reembed_dialog import offer_reembed
from desktop.settings_dialog import SettingsDialog
from desktop.source_view import SourcePanel
from desktop.status_bar import StatusBar
from desktop.welcome import WelcomePage
from desktop.workers import Job
from rag import (
    CatalogModel,
    CollectionStatus,
    EmbedderMismatch,
    Followed,
    IngestReport,
    KnowledgeBaseClient,
    ServiceStopped,
)

log = logging.getLogger(__name__)
DEFAULT_SIZE = (1280, 800)


class MainWindow(QMainWindow):
    """Shows the backend's state; never does the work itself."""

    def __init__(self, backend: Backend, first_run: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.setWindowTitle(self.tr("Archivist"))
        self.setAcceptDrops(True)
        self.ingest_job: Job | None = None
        self.download_job: Job | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.checkup_dialog: QDialog | None = None
        self.stopped_notice: QMessageBox | None = None
        self.library = LibraryPanel()
        self.chat = ChatPanel()
        self.sources = SourcePanel()
        split = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((self.library, 3), (self.chat, 5), (self.sources, 3)):
            split.addWidget(widget)
            split.setStretchFactor(split.indexOf(widget), stretch)
        split.setSizes([380, 620, 360])
        self.split = split
        self.welcome = WelcomePage(models_dir(backend.settings))
        self.pages = QStackedWidget()
        self.pages.addWidget(split)
        self.pages.addWidget(self.welcome)
        self.setCentralWidget(self.pages)
        if first_run:
            self.pages.setCurrentWidget(self.welcome)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.asking = Asking(self, backend, self.chat, self.sources, self.status, self._error, self.refresh)
        self._menus()
        self._connect()
        self.setEnabled(True)
        self.status.showMessage(self.tr("Opening the knowledge base…"))
        self.fit_screen()

    def fit_screen(self, size: tuple[int, int] = DEFAULT_SIZE) -> None:
        """Open at ``size`` (logical pixels), or smaller where the screen is smaller, as a scaled screen
        is (1600×1000 at 1.5x holds 1066×666): the whole window, its title bar too, on the screen."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(*size)
            return
        room = screen.availableGeometry()
        width = min(size[0], int(room.width() * 0.96))
        height = min(size[1], int(room.height() * 0.92))  # the title bar and frame come on top
        self.resize(width, height)
        self.move(room.topLeft() + QPoint((room.width() - width) // 2, max(0, (room.height() - height) // 3)))

    # -- set-up -----------------------------------------------------------------------------

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu(self.tr("&File"))
        add_files = QAction(self.tr("Add files…"), self, shortcut=QKeySequence("Ctrl+O"), triggered=self.library.choose_files)
        add_folder = QAction(self.tr("Add folder…"), self, triggered=self.library.choose_folder)
        settings = QAction(self.tr("Settings…"), self, shortcut=QKeySequence("Ctrl+,"), triggered=self.open_settings)
        unload = QAction(self.tr("Unload the model now"), self, triggered=lambda: self.backend.call("model", "unload", lambda kb, _job: kb.unload_model()))
        checkup = QAction(self.tr("Check-up…"), self, triggered=self.open_checkup)
        quit_action = QAction(self.tr("Quit"), self, triggered=self.close)
        # Ctrl+Q everywhere (Windows has no standard Quit key), wherever the focus is, from the first moment.
        quit_action.setShortcuts(QKeySequence.keyBindings(QKeySequence.StandardKey.Quit) or [QKeySequence("Ctrl+Q")])
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        file_menu.addActions([add_files, add_folder])
        file_menu.addSeparator()
        file_menu.addActions([settings, checkup, unload])
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        chat_menu = self.menuBar().addMenu(self.tr("&Conversation"))
        chat_menu.addAction(QAction(self.tr("New conversation"), self, shortcut=QKeySequence("Ctrl+N"), triggered=lambda: self.asking.new_conversation()))
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
        b.changed.connect(self.refresh_collections)
        b.polled.connect(self._refresh_status_bar)
        b.stopped.connect(self._stopped)
        lib = self.library
        lib.collection_chosen.connect(self.choose_collection)
        lib.add_paths.connect(self.add_paths)
        lib.remove_paths.connect(self.remove_paths)
        lib.cancel_ingest.connect(lambda: self.ingest_job and self.ingest_job.stop())
        lib.follow_folder.connect(lambda folder: self._follow_op(lambda kb, c: kb.follow(c, folder)))
        lib.unfollow_folder.connect(lambda folder: self._follow_op(lambda kb, c: kb.unfollow(c, folder)))
        lib.create_collection.connect(lambda name: self._collection_op(lambda kb: kb.create_collection(name), name))
        lib.rename_collection.connect(lambda old, new: self._collection_op(lambda kb: kb.rename_collection(old, new), new))
        lib.delete_collection.connect(lambda name: self._collection_op(lambda kb: kb.delete_collection(name), None))
        lib.set_adapter.connect(lambda name, path: self._collection_op(lambda kb: kb.set_adapter(name, path), name))
        self.chat.citation_clicked.connect(lambda _c: self._room_for_sources())
        w = self.welcome
        w.use_starter.connect(self.use_starter)
        w.download.connect(self.open_settings)
        w.download_embedder.connect(lambda: self.open_settings("paraphrase-multilingual-MiniLM-L12-v2"))
        w.choose_model.connect(self.use_model_file)
        w.try_samples.connect(self.load_samples)

    # -- drag and drop ----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.pages.setCurrentIndex(0)
            self.add_paths(paths, False)

    # -- knowledge base ---------------------------------------------------------------------

    def _ready(self) -> None:
        self.status.showMessage(self.tr("Ready"), 3000)
        self.refresh_collections()

    def _stopped(self, error: object) -> None:
        """The knowledge-base process died: what ran is lost, what was indexed is not; it restarts."""
        for job in (self.ingest_job, self.asking.ask_job, self.asking.extract_job):
            if job is not None:
                job.stop()
        self.status.showMessage(self.tr("The knowledge base stopped unexpectedly; restarting it…"))
        self.stopped_notice = QMessageBox(QMessageBox.Icon.Warning, self.tr("The knowledge base stopped"), plain(error),
                                          parent=self)
        self.stopped_notice.open()  # not modal: the window goes on while the knowledge base restarts

    def refresh_collections(self) -> None:
        job = self.backend.call("io", "collections", lambda kb, _job: [c.name for c in kb.collections()])
        job.done.connect(lambda names: (self.library.set_collections(names, self.backend.collection), self.refresh()))

    def choose_collection(self, name: str) -> None:
        self.backend.collection = name
        self.asking.clear()
        self.refresh()

    def refresh(self) -> None:
        """Reload the documents, followed folders, conversations and status bar of the current collection."""
        if self.backend.kb is None:
            return
        collection = self.backend.collection
        status = self.backend.call("io", "status", lambda kb, _job: kb.status(collection))
        status.done.connect(self._show_status)
        status.failed.connect(lambda e: self._error(self.tr("Cannot read the collection"), e))
        followed = self.backend.call("io", "followed", lambda kb, _job: kb.followed(collection))
        followed.done.connect(self._show_followed)
        self.asking.load_conversations()
        self._refresh_status_bar()

    def _show_status(self, status: CollectionStatus) -> None:
        self.library.set_status(status)
        self.status.show_collection(status.info.name, status.count("indexed"), status.chunks)

    def _show_followed(self, followed: Followed) -> None:
        names = {"indexed": self.tr("indexed"), "removed": self.tr("removed"), "failed": self.tr("failed")}
        words = followed.error or ", ".join(f"{followed.changes[s]} {names[s]}" for s in names if followed.changes.get(s))
        last = self.tr("{}: {}").format(time.strftime("%H:%M", time.localtime(followed.changed_at)), words) if words else ""
        self.library.set_followed(followed.folders, last)

    def _follow_op(self, op: Callable[[KnowledgeBaseClient, str], Followed]) -> None:
        collection = self.backend.collection
        job = self.backend.call("io", "follow", lambda kb, _job: op(kb, collection))
        job.done.connect(self._show_followed)
        job.failed.connect(lambda e: self._error(self.tr("Cannot follow the folder"), e))

    def add_paths(self, paths: list[Path], force: bool) -> None:
        if self.backend.kb is None:
            QTimer.singleShot(300, lambda: self.add_paths(paths, force))  # still opening; try again shortly
            return
        if self.ingest_job is not None:
            self.status.showMessage(self.tr("Already indexing; add these when it finishes."), 5000)
            return
        self.library.mark_queued(paths)
        collection = self.backend.collection
        job = self.backend.call("ingest", "index", lambda kb, job: kb.ingest(
            paths, collection, progress=job.report, cancel=job.cancel, force=force))
        self.ingest_job = job
        job.progress.connect(self.library.show_progress)
        job.done.connect(self._ingested)
        job.failed.connect(self._ingest_failed)

    def _ingest_ended(self) -> None:
        """The live states give way to the manifest's once it is read again, not before: a file
        the window knew only from the progress reports would vanish from the list meanwhile."""
        self.ingest_job = None
        self.library.set_ingesting(False)
        collection = self.backend.collection
        job = self.backend.call("io", "status", lambda kb, _job: kb.status(collection))
        job.done.connect(lambda status: (self.library.model.clear_live(), self._show_status(status)))
        job.failed.connect(lambda _e: self.library.model.clear_live())

    def _ingested(self, report: IngestReport) -> None:
        self._ingest_ended()
        message = self.tr("{} indexed, {} unchanged, {} failed").format(
            report.count("indexed"), report.count("unchanged"), report.count("failed"))
        if report.cancelled:
            message = self.tr("Indexing stopped; what was done is kept. ") + message
        self.status.showMessage(message, 8000)
        self.refresh()

    def _ingest_failed(self, error: object) -> None:
        self._ingest_ended()
        self._error(self.tr("Indexing stopped"), error)
        self.refresh()

    def remove_paths(self, paths: list[Path]) -> None:
        collection = self.backend.collection
        job = self.backend.call("ingest", "remove", lambda kb, _job: kb.remove(paths, collection))
        job.done.connect(lambda _r: self.refresh())
        job.failed.connect(lambda e: self._error(self.tr("Cannot remove"), e))

    def _collection_op(self, op: Callable[[KnowledgeBaseClient], object], select: str | None) -> None:
        def work(kb: KnowledgeBaseClient, _job: Job) -> str:
            op(kb)
            names = [c.name for c in kb.collections()]
            return select or (names[0] if names else self.backend.settings.collection)

        job = self.backend.call("io", "collection", work)
        job.done.connect(lambda name: (setattr(self.backend, "collection", name), self.refresh_collections()))
        job.failed.connect(lambda e: self._error(self.tr("Cannot change the collection"), e))

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

    def apply_settings(self, settings: Settings) -> None:
        self.status.showMessage(self.tr("Applying the new settings…"))
        self.backend.reopen(settings)

    def _room_for_sources(self) -> None:
        """A cited page is read, not glanced at: the source pane gets at least two fifths of the width."""
        sizes = self.split.sizes()
        total = sum(sizes)
        want = int(total * 0.4)
        if total and sizes[2] < want:
            taken = want - sizes[2]
            library = min(max(0, sizes[0] - 300), taken // 2)  # the library keeps room for its names
            self.split.setSizes([sizes[0] - library, sizes[1] - (taken - library), want])

    def use_starter(self) -> None:
        """The starter model, chosen: the choice is saved, so the first-run page does not come back."""
        self.backend.settings.save()
        self.pages.setCurrentIndex(0)

    def use_model_file(self, path: str) -> None:
        settings = dataclasses.replace(self.backend.settings, model_path=path)
        settings.save()
        self.pages.setCurrentIndex(0)
        self.apply_settings(settings)

    def clear_cache(self) -> None:
        job = self.backend.call("io", "clear cache", lambda kb, _job: kb.clear_cache())
        job.done.connect(lambda _r: self.status.showMessage(self.tr("The answer cache is empty."), 4000))

    def start_download(self, model: CatalogModel) -> None:
        folder, mirror = models_dir(self.backend.settings), self.backend.settings.download_mirror
        # An unverified model was accepted as such in the download box.
        job = self.backend.call("io", "download", lambda kb, job: kb.download_model(
            model.key, folder, mirror, not model.verified, job.report, job.cancel))
        self.download_job = job
        box = self.settings_dialog.download if self.settings_dialog else None
        if box is not None:
            job.progress.connect(box.show_progress)
            job.failed.connect(lambda e: box.finished(plain(e)))
            done = (self.tr("Downloaded and verified. It is used from now on.") if model.verified else
                    self.tr("Downloaded; checked against the server's checksum only. It is used from now on."))
            job.done.connect(lambda _p: box.finished(done))
        job.done.connect(lambda path: self._downloaded(model, path))

    def _downloaded(self, model: CatalogModel, path: Path) -> None:
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

            def make(kb: KnowledgeBaseClient, _job: Job) -> None:
                if not any(i.name == "Samples" for i in kb.collections()):
                    kb.create_collection("Samples")

            job = self.backend.call("io", "samples collection", make)
            job.done.connect(lambda _r: (setattr(self.backend, "collection", "Samples"), self.refresh_collections(),
                                         self.add_paths([samples], False)))

        go()

    # -- status and errors ------------------------------------------------------------------

    def _refresh_status_bar(self) -> None:
        job = self.backend.call("io", "status bar", lambda kb, _job: (kb.model_status(), kb.embedder_status(), kb.cache_stats()))

        def show(states: tuple[object, ...]) -> None:
            model, embedder, cache = states
            if model is not None:
                self.status.show_model(model)
            self.status.show_embedder(embedder)
            if cache is None:
                self.status.show_cache(0, 0, enabled=False)
            else:
                self.status.show_cache(cache.hits, cache.misses)

        job.done.connect(show)

    def _error(self, title: str, error: object) -> None:
        log.warning("%s: %s", title, error)
        if isinstance(error, ServiceStopped):
            return  # the knowledge base stopped or is restarting: said once, by ``_stopped``
        if isinstance(error, EmbedderMismatch):
            offer_reembed(self, self.backend, error, self.refresh)
            return
        warn(self, title, plain(error))

    def closeEvent(self, event: QCloseEvent) -> None:
        busy = any(job is not None and job.running for job in (
            self.ingest_job, self.asking.ask_job, self.asking.extract_job, self.download_job))
        if busy and QMessageBox.question(
            self, self.tr("Quit Archivist"), self.tr("Work is still running. Stop it and quit? Finished work is kept.")
        ) != QMessageBox.StandardButton.Yes:
            event.ignore()
            return
        self.backend.shutdown()
        event.accept()


def _local_paths(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
