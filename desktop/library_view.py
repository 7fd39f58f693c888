"""The library: collections, their documents with status, and the controls to add and remove."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rag import CollectionStatus, FileRecord, IngestProgress, display_path

_Index = QModelIndex | QPersistentModelIndex


class DocumentsModel(QAbstractTableModel):
    """The documents of one collection, with live states overlaid while indexing."""

    COLUMNS = 5

    def __init__(self) -> None:
        super().__init__()
        self.records: list[FileRecord] = []
        self.live: dict[Path, str] = {}

    def set_records(self, records: list[FileRecord]) -> None:
        self.beginResetModel()
        self.records = records
        known = {r.path for r in records}
        busy = (self.tr("Indexing"), self.tr("Reading"))
        self.live = {p: s for p, s in self.live.items() if p not in known or s.startswith(busy)}
        self.endResetModel()

    def mark(self, path: Path, state: str) -> None:
        self.beginResetModel()
        self.live[path] = state
        self.endResetModel()

    def clear_live(self) -> None:
        self.beginResetModel()
        self.live.clear()
        self.endResetModel()

    def rows(self) -> list[tuple[Path, FileRecord | None]]:
        known = {r.path: r for r in self.records}
        extra = [(p, None) for p in self.live if p not in known]
        return [(r.path, r) for r in self.records] + extra

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows())

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return self.COLUMNS

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return (self.tr("Document"), self.tr("Status"), self.tr("Pages"), self.tr("Chunks"), self.tr("Details"))[section]
        return None

    def status_text(self, path: Path, record: FileRecord | None) -> str:
        if path in self.live:
            return self.live[path]
        return {"indexed": self.tr("Indexed"), "failed": self.tr("Failed"), "pending": self.tr("Unfinished"),
                "words": self.tr("Searchable by words")}.get(record.status, record.status)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        path, record = self.rows()[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return path.name
            if column == 1:
                return self.status_text(path, record)
            if record is None:
                return ""
            if column == 2:
                return record.pages or ""
            if column == 3:
                return record.chunks if record.status == "indexed" else ""
            if column == 4:
                if record.status == "failed":
                    return record.reason
                if record.status == "pending":
                    return self.tr("Indexing stopped before the end; re-index to finish it")
                if record.status == "words":
                    return self.tr("Found by its words now; by meaning once indexing finishes")
                recognized = [self.tr("Text recognized on {} page(s)").format(record.recognized)] if record.recognized else []
                return "; ".join(recognized + record.warnings)
        if role == Qt.ItemDataRole.ToolTipRole:
            detail = display_path(path)
            if record is not None and record.indexed_at:
                detail += "\n" + self.tr("Indexed {}").format(time.strftime("%Y-%m-%d %H:%M", time.localtime(record.indexed_at)))
            return detail
        if role == Qt.ItemDataRole.ForegroundRole and column == 1 and record is not None and path not in self.live:
            if record.status == "failed":
                return QColor("#c0392b")
            if record.status == "pending":
                return QColor("#d68910")
        return None


class LibraryPanel(QWidget):
    """Collections and documents. Emits what the user wants; the window runs it."""

    collection_chosen = Signal(str)
    add_paths = Signal(list, bool)
    remove_paths = Signal(list)
    cancel_ingest = Signal()
    create_collection = Signal(str)
    rename_collection = Signal(str, str)
    set_adapter = Signal(str, object)  # collection, Path of a LoRA adapter or None
    delete_collection = Signal(str)
    follow_folder = Signal(object)
    unfollow_folder = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.collections = QComboBox()
        self.collections.setAccessibleName(self.tr("Collection"))
        self.collections.currentTextChanged.connect(self._chosen)
        manage = QToolButton()
        manage.setText("⋯")
        manage.setToolTip(self.tr("New, rename or delete a collection"))
        manage.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(manage)
        menu.addAction(self.tr("New collection…"), self._new)
        menu.addAction(self.tr("Rename collection…"), self._rename)
        menu.addAction(self.tr("Delete collection…"), self._delete)
        menu.addSeparator()
        menu.addAction(self.tr("Domain adapter…"), self._adapter)
        manage.setMenu(menu)

        self.model = DocumentsModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.empty = QLabel(self.tr("Drop files or folders here, or use “Add files”."))
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)

        add_files = QPushButton(QIcon.fromTheme("document-open"), self.tr("Add files…"))
        add_files.clicked.connect(self.choose_files)
        add_folder = QPushButton(QIcon.fromTheme("folder-open"), self.tr("Add folder…"))
        add_folder.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton(self.tr("Remove"))
        self.remove_button.clicked.connect(self._remove_selected)
        self.reindex_button = QPushButton(self.tr("Re-index"))
        self.reindex_button.clicked.connect(self._reindex_selected)

        follow = QPushButton(QIcon.fromTheme("folder-sync"), self.tr("Follow folder…"))
        follow.setToolTip(self.tr("Index a folder and keep up with what is added, changed or deleted in it"))
        follow.clicked.connect(self._choose_followed)
        self.followed = QLabel()
        self.followed.setWordWrap(True)
        self.unfollow = QToolButton()
        self.unfollow.setText(self.tr("Stop following"))
        self.unfollow.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.unfollow.setMenu(QMenu(self.unfollow))
        self.last_change = ""

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel_ingest.emit)
        self.set_ingesting(False)

        top = QHBoxLayout()
        top.addWidget(QLabel(self.tr("Collection:")))
        top.addWidget(self.collections, 1)
        top.addWidget(manage)
        buttons = QHBoxLayout()  # adding on the left, what acts on the selection on the right
        for button in (add_files, add_folder, follow):
            buttons.addWidget(button)
        selection = QHBoxLayout()
        selection.addStretch(1)
        selection.addWidget(self.remove_button)
        selection.addWidget(self.reindex_button)
        following = QHBoxLayout()
        following.addWidget(self.followed, 1)
        following.addWidget(self.unfollow)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)
        layout.addLayout(buttons)
        layout.addLayout(selection)
        layout.addLayout(following)
        layout.addWidget(self.progress_label)
        layout.addLayout(busy)
        self.summary = QLabel()
        layout.addWidget(self.summary)

    # -- showing state ----------------------------------------------------------------------

    def set_collections(self, names: list[str], current: str) -> None:
        self.collections.blockSignals(True)
        self.collections.clear()
        self.collections.addItems(names)
        self.collections.setCurrentText(current)
        self.collections.blockSignals(False)

    def set_status(self, status: CollectionStatus) -> None:
        self.model.set_records(status.files)
        self.empty.setVisible(not status.files and not self.model.live)
        failed = status.count("failed")
        text = self.tr("{} documents, {} chunks").format(status.count("indexed"), status.chunks)
        if failed:
            text += self.tr(", {} could not be indexed").format(failed)
        self.summary.setText(text)

    def set_followed(self, folders: list[Path], last_change: str | None = None) -> None:
        """Show the folders the collection follows, and the last change picked up in them."""
        if last_change is not None:
            self.last_change = last_change
        text = self.tr("Following: {}").format(", ".join(f.name or str(f) for f in folders)) if folders else ""
        if folders and self.last_change:
            text += " — " + self.tr("last change {}").format(self.last_change)
        self.followed.setText(text)
        self.followed.setToolTip("\n".join(str(f) for f in folders))
        menu = self.unfollow.menu()
        menu.clear()
        for folder in folders:
            menu.addAction(str(folder), lambda f=folder: self.unfollow_folder.emit(f))
        self.followed.setVisible(bool(folders))
        self.unfollow.setVisible(bool(folders))

    def set_ingesting(self, busy: bool) -> None:
        for widget in (self.progress, self.cancel_button, self.progress_label):
            widget.setVisible(busy)
        if not busy:
            self.progress.setValue(0)

    def show_progress(self, state: IngestProgress) -> None:
        self.set_ingesting(True)
        self.progress.setMaximum(max(1, state.bytes_total))
        self.progress.setValue(state.bytes_done)
        name = state.current.name if state.current else ""
        if state.embedding:
            self.progress_label.setText(
                self.tr("Indexing by meaning, {} of {} files: {}").format(
                    min(state.files_done + 1, state.files_total), state.files_total, name)
            )
        else:
            self.progress_label.setText(
                self.tr("Reading {} of {} files: {}").format(
                    min(state.files_read + 1, state.files_total), state.files_total, name)
            )
        if state.current is not None:
            share = int(100 * state.current_fraction)
            self.model.mark(state.current, (self.tr("Indexing {}%") if state.embedding else self.tr("Reading {}%")).format(share))

    def mark_queued(self, paths: list[Path]) -> None:
        for path in paths:
            if path.is_file():
                self.model.mark(path, self.tr("Queued"))
        self.empty.hide()

    # -- gestures ---------------------------------------------------------------------------

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, self.tr("Add files"), "", self.tr("Documents (*.pdf *.txt *.md *.markdown *.html *.htm *.docx *.csv *.xlsx *.pptx *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        )
        if files:
            self.add_paths.emit([Path(f) for f in files], False)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Add folder"))
        if folder:
            self.add_paths.emit([Path(folder)], False)

    def _choose_followed(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Follow a folder"))
        if folder:
            self.follow_folder.emit(Path(folder))

    def selected_paths(self) -> list[Path]:
        rows = self.model.rows()
        return [rows[i.row()][0] for i in self.table.selectionModel().selectedRows()]

    def _remove_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            self.remove_paths.emit(paths)

    def _reindex_selected(self) -> None:
        paths = self.selected_paths() or [p for p, _ in self.model.rows()]
        if paths:
            self.add_paths.emit(paths, True)

    def _context_menu(self, point: Any) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        menu = QMenu(self)
        retry = QAction(self.tr("Retry / re-index"), menu)
        retry.triggered.connect(lambda: self.add_paths.emit(paths, True))
        remove = QAction(self.tr("Remove from the collection"), menu)
        remove.triggered.connect(lambda: self.remove_paths.emit(paths))
        menu.addActions([retry, remove])
        menu.exec(self.table.viewport().mapToGlobal(point))

    def _chosen(self, name: str) -> None:
        if name:
            self.collection_chosen.emit(name)

    def _new(self) -> None:
        name, ok = QInputDialog.getText(self, self.tr("New collection"), self.tr("Name of the new collection:"))
        if ok and name.strip():
            self.create_collection.emit(name.strip())

    def _rename(self) -> None:
        current = self.collections.currentText()
        name, ok = QInputDialog.getText(self, self.tr("Rename collection"), self.tr("New name:"), text=current)
        if ok and name.strip() and name.strip() != current:
            self.rename_collection.emit(current, name.strip())

    def _adapter(self) -> None:
        current = self.collections.currentText()
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Domain adapter"), self.tr(
            "A LoRA adapter (a GGUF file made for the model in use) can improve answers in a field where the model "
            "is weak, such as law or medicine. Answers from “{}” use it; other collections do not."
        ).format(current), parent=self)
        choose = box.addButton(self.tr("Choose a file…"), QMessageBox.ButtonRole.AcceptRole)
        remove = box.addButton(self.tr("Use none"), QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is remove:
            self.set_adapter.emit(current, None)
        elif box.clickedButton() is choose:
            path, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a LoRA adapter"), "",
                                                  self.tr("GGUF adapters (*.gguf)"))
            if path:
                self.set_adapter.emit(current, Path(path))

    def _delete(self) -> None:
        current = self.collections.currentText()
        answer = QMessageBox.question(
            self,
            self.tr("Delete collection"),
            self.tr("Delete the collection “{}” and everything indexed in it? The files on disk are not touched.").format(current),
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_collection.emit(current)
