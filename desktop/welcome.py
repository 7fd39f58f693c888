"""The first-run page: start now with the starter model, get gpt-oss, or choose a GGUF file."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QDir, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop.settings_dialog import human_bytes
from rag import CATALOG


class WelcomePage(QWidget):
    """Three ways to begin, and the sample documents one click away."""

    use_starter = Signal()
    download = Signal()
    download_embedder = Signal()
    choose_model = Signal(str)
    try_samples = Signal()

    def __init__(self, models_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        models_folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(models_folder).free
        gpt = CATALOG[0]
        title = QLabel(self.tr("<h1>Welcome to Archivist</h1>"))
        title.setWordWrap(True)
        intro = QLabel(self.tr(
            "Archivist answers questions about your documents, on this computer. It needs a language model: "
            "no gpt-oss model was found here yet."
        ))
        intro.setWordWrap(True)
        starter = QPushButton(self.tr("Start now with the small starter model"))
        starter.clicked.connect(self.use_starter.emit)
        starter_note = QLabel(self.tr("SmolLM2-135M, a small stand-in for gpt-oss-20b: it answers quickly but far less well."))
        download = QPushButton(self.tr("Download gpt-oss-20b ({})").format(human_bytes(gpt.approx_bytes)))
        download.clicked.connect(self.download.emit)
        download.setEnabled(free > gpt.approx_bytes)
        download_note = QLabel(self.tr("{} free on this disk. The download can be paused and resumed.").format(human_bytes(free)))
        multilingual = next(m for m in CATALOG if m.kind == "embedding")
        languages = QPushButton(self.tr("Documents in Chinese or another language? Get multilingual search ({})").format(
            human_bytes(multilingual.approx_bytes)))
        languages.setFlat(True)
        languages.clicked.connect(self.download_embedder.emit)
        choose = QPushButton(self.tr("Choose a GGUF model file…"))
        choose.clicked.connect(self._choose)
        samples = QPushButton(self.tr("Try it on sample documents"))
        samples.setFlat(True)
        samples.clicked.connect(self.try_samples.emit)
        column = QWidget()
        column.setMaximumWidth(560)
        inner = QVBoxLayout(column)
        inner.addWidget(title)
        inner.addWidget(intro)
        inner.addSpacing(12)
        for button, note in ((starter, starter_note), (download, download_note), (choose, None)):
            inner.addWidget(button)
            if note is not None:
                note.setWordWrap(True)
                inner.addWidget(note)
            inner.addSpacing(8)
        inner.addWidget(samples, 0, Qt.AlignmentFlag.AlignLeft)
        inner.addWidget(languages, 0, Qt.AlignmentFlag.AlignLeft)
        # Centred by stretches, not by an alignment flag: an aligned widget is given its size hint,
        # and word-wrapped labels then get one line's height and overlap (heightForWidth is skipped).
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column, 100)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        for note in (starter_note, download_note):
            note.setStyleSheet("color: palette(mid);")

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a GGUF model"), QDir.homePath(),
                                              self.tr("GGUF models (*.gguf)"))
        if path:
            self.choose_model.emit(path)
