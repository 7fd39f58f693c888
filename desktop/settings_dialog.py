"""Settings: the model (and downloading it), context, effort, GPU, idle time, cache, folders, the team server."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QDir, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from archivist import Settings, load_token, models_dir, save_token
from rag import CATALOG, CatalogModel, DownloadProgress, installed_model


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000
    return f"{n:.1f} TB"


def _start_in(current: str) -> str:
    """Where a file dialog opens: at the file or folder already chosen, else in the home folder
    (never in the folder the app was started from)."""
    path = Path(current).expanduser() if current.strip() else None
    if path is not None and path.is_absolute() and path.exists():
        return str(path)
    return QDir.homePath()


def _path_row(edit: QLineEdit, pick: Any) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    browse = QPushButton(QCoreApplication.translate("SettingsDialog", "Browse…"))
    browse.clicked.connect(pick)
    layout.addWidget(browse)
    return row


class DownloadBox(QGroupBox):
    """Download a catalog model: size and free disk first, then bytes, rate and time left."""

    start = Signal(object)
    cancel = Signal()

    def __init__(self, folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Get a model"), parent)
        self.folder = folder
        self.choice = QComboBox()
        for model in CATALOG:
            self.choice.addItem(model.title, model.key)
        self.choice.currentIndexChanged.connect(self.describe)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.button = QPushButton(self.tr("Download"))
        self.button.clicked.connect(self._start)
        self.stop = QPushButton(self.tr("Cancel"))
        self.stop.clicked.connect(self.cancel.emit)
        self.stop.hide()
        self.bar = QProgressBar()
        self.bar.hide()
        self.detail = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.choice, 1)
        row.addWidget(self.button)
        row.addWidget(self.stop)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addWidget(self.bar)
        layout.addWidget(self.detail)
        self.describe()

    def model(self) -> CatalogModel:
        return CATALOG[self.choice.currentIndex()]

    def select(self, key: str) -> None:
        """Show the catalog entry called ``key``."""
        self.choice.setCurrentIndex(max(0, self.choice.findData(key)))

    def describe(self) -> None:
        model = self.model()
        self.folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.folder).free
        have = installed_model(self.folder, model) is not None
        # The catalog's notes are sentences: their own full stop gives way to the one the line puts after them.
        note = model.note.rstrip().rstrip(".")
        text = self.tr("{}. Download size {}; {} free on this disk.").format(note, human_bytes(model.approx_bytes), human_bytes(free))
        if have:
            text += " " + self.tr("Already downloaded.")
        elif free < model.approx_bytes:
            text += " " + self.tr("Not enough free space.")
        self.info.setText(text)
        self.button.setEnabled(not have and free >= model.approx_bytes)

    def _start(self) -> None:
        model = self.model()
        if not model.verified and QMessageBox.warning(
            self, self.tr("Download an unverified file?"),
            self.tr("No checksum of {} has been published for Archivist to check it against, so Archivist cannot "
                    "prove that the file you receive is the one its authors released (a damaged transfer is still "
                    "caught). Download it only from a source you trust. Download anyway?").format(model.title),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        ) != QMessageBox.StandardButton.Yes:
            return
        self.start.emit(model)

    def show_progress(self, progress: DownloadProgress) -> None:
        self.bar.show()
        self.stop.show()
        self.button.setEnabled(False)
        self.bar.setMaximum(1000)
        self.bar.setValue(int(progress.fraction * 1000))
        left = f"{progress.eta / 60:.0f} min" if progress.eta is not None else "…"
        self.detail.setText(self.tr("{} of {}, {}/s, {} left").format(
            human_bytes(progress.done), human_bytes(progress.total), human_bytes(progress.rate), left))

    def finished(self, message: str) -> None:
        self.stop.hide()
        self.bar.hide()
        self.detail.setText(message)
        self.describe()


class SettingsDialog(QDialog):
    """Edits a copy of the settings; ``saved`` carries the new settings after OK."""

    saved = Signal(object)
    clear_cache = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Settings"))
        self.resize(620, 520)
        self.settings = dataclasses.replace(settings)
        s = self.settings

        self.model_path = QLineEdit(s.model_path)
        self.model_path.setPlaceholderText(self.tr("Automatic: gpt-oss if downloaded, else the starter model"))
        self.model_folder = QLineEdit(s.model_folder)
        self.model_folder.setPlaceholderText(self.tr("A folder an administrator filled with models (optional)"))
        self.context = QSpinBox()
        self.context.setRange(0, 131072)
        self.context.setSingleStep(4096)
        self.context.setSpecialValueText(self.tr("Automatic (what memory allows)"))
        self.context.setValue(s.context_size)
        self.effort = QComboBox()
        for value, label in (("low", self.tr("Low (fast)")), ("medium", self.tr("Medium")), ("high", self.tr("High (thorough)"))):
            self.effort.addItem(label, value)
        self.effort.setCurrentIndex(max(0, self.effort.findData(s.reasoning_effort)))
        self.starts_within = QDoubleSpinBox()
        self.starts_within.setRange(0, 600)
        self.starts_within.setSuffix(self.tr(" s"))
        self.starts_within.setSpecialValueText(self.tr("No limit (as many sources as the context holds)"))
        self.starts_within.setValue(s.answer_starts_within)
        self.starts_within.setToolTip(self.tr(
            "The model reads its sources before it writes a word: on a computer without a graphics card that is "
            "most of the wait. Archivist learns how fast this model reads here and sends the best sources it can "
            "read in this time. Questions about whole files you chose are not limited."))
        self.cite = QCheckBox(self.tr("End every sentence of an answer with the source it comes from"))
        self.cite.setChecked(s.cite_every_sentence)
        self.cite.setToolTip(self.tr(
            "The model may then only write sentences that end with a source's number, [1] say, so that each "
            "can be checked. A citation forced this way is not always right: the checked sentences are still "
            "marked when their source does not bear them out. The small starter model cites this way, but "
            "what it cites is rarely true."))
        self.gpu = QSpinBox()
        self.gpu.setRange(-1, 999)
        self.gpu.setSpecialValueText(self.tr("Automatic"))
        self.gpu.setValue(s.gpu_layers)
        self.idle = QDoubleSpinBox()
        self.idle.setRange(0, 1440)
        self.idle.setSuffix(self.tr(" min"))
        self.idle.setSpecialValueText(self.tr("Never"))
        self.idle.setValue(s.idle_minutes)
        self.memory_floor = QDoubleSpinBox()
        self.memory_floor.setRange(0, 256)
        self.memory_floor.setSingleStep(0.5)
        self.memory_floor.setSuffix(self.tr(" GB free"))
        self.memory_floor.setSpecialValueText(self.tr("Never"))
        self.memory_floor.setValue(s.memory_floor_gb)
        self.memory_floor.setToolTip(self.tr("Between answers, give the model's memory back when the computer's "
                                             "available memory falls below this."))
        self.download = DownloadBox(models_dir(s))

        model_tab = QWidget()
        form = QFormLayout(model_tab)
        form.addRow(self.tr("Model file"), _path_row(self.model_path, self._pick_model))
        form.addRow(self.tr("Models folder"), _path_row(self.model_folder, lambda: self._pick_folder(self.model_folder)))
        form.addRow(self.tr("Context size (tokens)"), self.context)
        form.addRow(self.tr("Reasoning effort"), self.effort)
        form.addRow(self.tr("Answer starts within"), self.starts_within)
        form.addRow(self.tr("Citations"), self.cite)
        form.addRow(self.tr("GPU layers"), self.gpu)
        form.addRow(self.tr("Unload the model after"), self.idle)
        form.addRow(self.tr("Unload the model below"), self.memory_floor)
        form.addRow(self.download)

        self.cache = QCheckBox(self.tr("Remember answers to repeated questions"))
        self.cache.setChecked(s.cache_enabled)
        self.similar = QCheckBox(self.tr("Also for questions worded differently (marked as such)"))
        self.similar.setChecked(s.cache_similar)
        self.recognize = QCheckBox(self.tr("Read the text of scanned pages and images (text recognition)"))
        self.recognize.setChecked(s.recognize_text)
        clear = QPushButton(self.tr("Clear the answer cache"))
        clear.clicked.connect(self.clear_cache.emit)
        self.embedding = QLineEdit(s.embedding_model)
        self.embedding.setPlaceholderText(self.tr("Bundled all-MiniLM-L6-v2"))
        self.data_dir = QLineEdit(s.data_dir)
        self.data_dir.setPlaceholderText(str(s.data_path))
        data_tab = QWidget()
        data_form = QFormLayout(data_tab)
        data_form.addRow(self.cache)
        data_form.addRow(self.similar)
        data_form.addRow(clear)
        data_form.addRow(self.recognize)
        data_form.addRow(self.tr("Embedding model folder"), _path_row(self.embedding, lambda: self._pick_folder(self.embedding)))
        data_form.addRow(self.tr("Data folder"), _path_row(self.data_dir, lambda: self._pick_folder(self.data_dir)))

        self.server_url = QLineEdit(s.server_url)
        self.server_url.setPlaceholderText(self.tr("Empty: this computer only. For example https://archivist.intranet:8700"))
        self.server_token = QLineEdit(load_token(s.server_url) if s.server_url else "")
        self.server_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.server_token.setPlaceholderText(self.tr("The personal token your administrator gave you"))
        team_note = QLabel(self.tr(
            "With a team server, the library, the answers and the answer cache are your team's: you see the "
            "collections you were given, and the files you add are sent to the server. Your token is kept in "
            "the system keyring where there is one."))
        team_note.setWordWrap(True)
        team_tab = QWidget()
        team_form = QFormLayout(team_tab)
        team_form.addRow(team_note)
        team_form.addRow(self.tr("Team server"), self.server_url)
        team_form.addRow(self.tr("Your token"), self.server_token)

        tabs = QTabWidget()
        tabs.addTab(model_tab, self.tr("Model"))
        tabs.addTab(data_tab, self.tr("Data"))
        tabs.addTab(team_tab, self.tr("Team"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)

    def _pick_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a GGUF model"), _start_in(self.model_path.text()),
                                              self.tr("GGUF models (*.gguf)"))
        if path:
            self.model_path.setText(path)

    def _pick_folder(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Choose a folder"), _start_in(edit.text()))
        if folder:
            edit.setText(folder)

    def collect(self) -> Settings:
        """The settings as the form shows them."""
        return dataclasses.replace(
            self.settings,
            model_path=self.model_path.text().strip(),
            model_folder=self.model_folder.text().strip(),
            context_size=self.context.value(),
            reasoning_effort=self.effort.currentData(),
            answer_starts_within=self.starts_within.value(),
            cite_every_sentence=self.cite.isChecked(),
            gpu_layers=self.gpu.value(),
            idle_minutes=self.idle.value(),
            memory_floor_gb=self.memory_floor.value(),
            cache_enabled=self.cache.isChecked(),
            cache_similar=self.similar.isChecked(),
            recognize_text=self.recognize.isChecked(),
            embedding_model=self.embedding.text().strip(),
            data_dir=self.data_dir.text().strip(),
            server_url=self.server_url.text().strip().rstrip("/"),
        )

    def accept(self) -> None:
        settings = self.collect()
        if settings.server_url:
            save_token(settings.server_url, self.server_token.text().strip())
        settings.save()
        self.saved.emit(settings)
        super().accept()
