"""The library: collections, their documents with status, and the controls to add and remove."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QDir, QModelIndex, QPersistentModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QResizeEvent
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
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.elided_label import ElidedLabel
from desktop.plain_text import plain_label, tooltip
from rag import CollectionStatus, FileRecord, IngestProgress, display_path

_Index = QModelIndex | QPersistentModelIndex

# What the window knows of a file before the manifest says it (the manifest is read again every
# few seconds): waiting its turn, being read or embedded now, read (so searchable by its words),
# or passed over without being read (unchanged, or failed: the manifest will say which).
QUEUED, READING, INDEXING, WORDS, CHECKED = "queued", "reading", "indexing", "words", "checked"
NAME, STATUS, PAGES, CHUNKS, DETAILS = range(5)
_WIDE = 480  # from this width on, the table also shows pages, chunks and details (else only on hover)


@dataclass(frozen=True, slots=True)
class LiveState:
    """A file's state during an ingest, from its progress reports, until the manifest catches up."""

    state: str
    fraction: float = 0.0
    since: float = 0.0  # when the ingest began (time.time()): a manifest row older than this is stale


class DocumentsModel(QAbstractTableModel):
    """The documents of one collection, with live states overlaid while indexing.

    Only the file being read or embedded shows a percentage; a file read before it is
    "Searchable by words" until the manifest says it is indexed (or failed)."""

    COLUMNS = 5

    def __init__(self) -> None:
        super().__init__()
        self.records: list[FileRecord] = []
        self.live: dict[Path, LiveState] = {}
        self.current: Path | None = None
        self.ingesting = False
        self._since = 0.0

    def set_records(self, records: list[FileRecord]) -> None:
        known = {r.path: r for r in records}
        for path, mark in list(self.live.items()):
            record = known.get(path)
            if record is None or (path == self.current and mark.state in (READING, INDEXING)):
                continue
            fresh = record.status == "words" or (record.status in ("indexed", "failed") and record.indexed_at >= mark.since)
            if fresh or mark.state == CHECKED:
                del self.live[path]
        self._reset(lambda: setattr(self, "records", records))

    def begin_ingest(self) -> None:
        """An ingest starts: what the manifest says from now on is compared with this moment."""
        if not self.ingesting:
            self.ingesting = True
            self._since = time.time()

    def mark_queued(self, paths: list[Path]) -> None:
        self.begin_ingest()
        self._change({p: LiveState(QUEUED, since=self._since) for p in paths})

    def show_progress(self, state: IngestProgress) -> None:
        """The file being read or embedded gets its percentage; the one before it, what it became."""
        self.begin_ingest()
        marks: dict[Path, LiveState | None] = {}
        previous = self.current
        if previous is not None and previous != state.current and previous in self.live:
            mark = self.live[previous]
            if mark.state == INDEXING or (mark.state == READING and mark.fraction >= 1.0):
                marks[previous] = LiveState(WORDS, since=mark.since)
            elif mark.state == READING:  # passed over: unchanged, or it failed
                known = any(r.path == previous for r in self.records)
                marks[previous] = None if known else LiveState(CHECKED, since=mark.since)
        if state.current is not None:
            marks[state.current] = LiveState(INDEXING if state.embedding else READING, state.current_fraction, self._since)
        self.current = state.current
        self._change(marks)

    def clear_live(self) -> None:
        self.ingesting = False
        self.current = None
        self._reset(self.live.clear)

    def _change(self, marks: dict[Path, LiveState | None]) -> None:
        """Apply live marks (None removes one): rows repainted in place when no row comes or goes,
        so the selection survives the progress reports."""
        before = [p for p, _ in self.rows()]

        def apply() -> None:
            for path, mark in marks.items():
                if mark is None:
                    self.live.pop(path, None)
                else:
                    self.live[path] = mark

        if all(p in before for p, m in marks.items() if m is not None) and all(
                m is not None or any(r.path == p for r in self.records) for p, m in marks.items()):
            apply()
            if before:
                self.dataChanged.emit(self.index(0, 0), self.index(len(before) - 1, self.COLUMNS - 1))
        else:
            self._reset(apply)

    def _reset(self, change: Callable[[], object]) -> None:
        self.beginResetModel()
        change()
        self.endResetModel()

    def rows(self) -> list[tuple[Path, FileRecord | None]]:
        known = {r.path: r for r in self.records}
        extra = [(p, None) for p in self.live if p not in known]
        return [(r.path, r) for r in self.records] + extra

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows())

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return self.COLUMNS

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return (self.tr("Document"), self.tr("Status"), self.tr("Pages"), self.tr("Chunks"), self.tr("Details"))[section]
        return None

    def status_text(self, path: Path, record: FileRecord | None) -> str:
        mark = self.live.get(path)
        if mark is not None:
            share = int(100 * mark.fraction)
            return {QUEUED: self.tr("Queued"), READING: self.tr("Reading {}%").format(share),
                    INDEXING: self.tr("Indexing {}%").format(share), WORDS: self.tr("Searchable by words"),
                    CHECKED: self.tr("Reading")}[mark.state]
        if record is None:
            return ""
        if record.status == "pending" and self.ingesting:
            return self.tr("Queued")  # left unfinished by an ingest that stopped; this one finishes it
        return {"indexed": self.tr("Indexed"), "failed": self.tr("Failed"), "pending": self.tr("Unfinished"),
                "words": self.tr("Searchable by words")}.get(record.status, record.status)

    def details(self, path: Path, record: FileRecord | None, short: bool) -> str:
        """What more there is to say of a file: shortly for the column, whole for the tooltip."""
        mark = self.live.get(path)
        if (mark is not None and mark.state == WORDS) or (mark is None and record is not None and record.status == "words"):
            return self.tr("By meaning once indexed") if short else self.tr(
                "Found by its words now; by meaning once indexing finishes")
        if record is None:
            return ""
        if record.status == "failed":
            return record.reason
        if record.status == "pending" and not self.ingesting:
            return self.tr("Indexing stopped before the end; re-index to finish it")
        recognized = [self.tr("Text recognized on {} page(s)").format(record.recognized)] if record.recognized else []
        return "; ".join(recognized + record.warnings)

    def tooltip(self, path: Path, record: FileRecord | None) -> str:
        """Everything about the row, whatever columns the table has room for."""
        lines = [path.name, self.tr("Status: {}").format(self.status_text(path, record))]
        detail = self.details(path, record, short=False)
        if detail:
            lines.append(detail)
        if record is not None and record.status == "indexed":
            if record.pages:
                lines.append(self.tr("{} pages, {} chunks").format(record.pages, record.chunks))
            else:
                lines.append(self.tr("{} chunks").format(record.chunks))
        lines.append(display_path(path))
        if record is not None and record.indexed_at:
            lines.append(self.tr("Indexed {}").format(time.strftime("%Y-%m-%d %H:%M", time.localtime(record.indexed_at))))
        return tooltip("\n".join(lines))

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        path, record = self.rows()[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == NAME:
                return path.name
            if column == STATUS:
                return self.status_text(path, record)
            if column == DETAILS:
                return self.details(path, record, short=True)
            if record is None:
                return ""
            if column == PAGES:
                return record.pages or ""
            if column == CHUNKS:
                return record.chunks if record.status == "indexed" else ""
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(path, record)
        if role == Qt.ItemDataRole.ForegroundRole and column == STATUS and record is not None and path not in self.live:
            if record.status == "failed":
                return QColor("#c0392b")
            if record.status == "pending" and not self.ingesting:
                return QColor("#d68910")
        return None


class _DetailsDelegate(QStyledItemDelegate):
    """Details read from their start: cut at the end, not in the middle like names."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: _Index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


class DocumentsTable(QTableView):
    """The documents: names cut in the middle ("Meeting min…03-12.txt"); pages, chunks and details
    shown when there is room, and always in each row's tooltip."""

    def __init__(self, model: DocumentsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        for column in (STATUS, PAGES, CHUNKS):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(DETAILS, QHeaderView.ResizeMode.Stretch)
        self.setItemDelegateForColumn(DETAILS, _DetailsDelegate(self))
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setWordWrap(False)
        self._fit_columns()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        wide = self.viewport().width() >= _WIDE
        for column in (PAGES, CHUNKS, DETAILS):
            self.setColumnHidden(column, not wide)


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
        self.table = DocumentsTable(self.model)
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
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.modelReset.connect(self._selection_changed)
        self._selection_changed()
        self.reindex_button = QPushButton(self.tr("Re-index"))
        self.reindex_button.clicked.connect(self._reindex_selected)

        follow = QPushButton(QIcon.fromTheme("folder-sync"), self.tr("Follow folder…"))
        follow.setToolTip(self.tr("Index a folder and keep up with what is added, changed or deleted in it"))
        follow.clicked.connect(self._choose_followed)
        self.followed = plain_label(QLabel())
        self.followed.setWordWrap(True)
        self.unfollow = QToolButton()
        self.unfollow.setText(self.tr("Stop following"))
        self.unfollow.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.unfollow.setMenu(QMenu(self.unfollow))
        self.last_change = ""

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        # Cut, not widened: a long file name must not widen the pane while indexing.
        self.progress_label = ElidedLabel()
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
        self.summary = ElidedLabel(elide=Qt.TextElideMode.ElideRight)
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
        self.followed.setToolTip(tooltip("\n".join(str(f) for f in folders)))
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
        self.model.show_progress(state)
        self.empty.hide()

    def mark_queued(self, paths: list[Path]) -> None:
        self.model.mark_queued([p for p in paths if p.is_file()])
        self.empty.hide()

    # -- gestures ---------------------------------------------------------------------------

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, self.tr("Add files"), QDir.homePath(), self.tr("Documents (*.pdf *.txt *.md *.markdown *.html *.htm *.docx *.csv *.xlsx *.pptx *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        )
        if files:
            self.add_paths.emit([Path(f) for f in files], False)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Add folder"), QDir.homePath())
        if folder:
            self.add_paths.emit([Path(folder)], False)

    def _choose_followed(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Follow a folder"), QDir.homePath())
        if folder:
            self.follow_folder.emit(Path(folder))

    def selected_paths(self) -> list[Path]:
        rows = self.model.rows()
        return [rows[i.row()][0] for i in self.table.selectionModel().selectedRows()]

    def _remove_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            self.remove_paths.emit(paths)

    def _selection_changed(self) -> None:
        """Remove acts on the selection: without one it is off, and its tooltip says what to do."""
        chosen = bool(self.table.selectionModel().selectedRows())
        self.remove_button.setEnabled(chosen)
        self.remove_button.setToolTip(
            self.tr("Remove the selected documents from the collection (the files on disk stay)") if chosen
            else self.tr("Select the documents to remove in the list first"))

    def _reindex_selected(self) -> None:
        paths = self.selected_paths() or [p for p, _ in self.model.rows()]
        if paths:
            self.add_paths.emit(paths, True)

    def _context_menu(self, point: QPoint) -> None:
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
            path, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a LoRA adapter"), QDir.homePath(),
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
