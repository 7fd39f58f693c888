"""The status bar: each model's state and memory, the collection's size, the answer cache's hits."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from rag import ModelState, ModelStatus


class StatusBar(QStatusBar):
    """Four permanent fields plus the usual transient messages."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QLabel(self.tr("Model: starting…"))
        self.collection = QLabel()
        self.cache = QLabel()
        self.embedder = QLabel()
        for label in (self.collection, self.cache, self.embedder, self.model):
            self.addPermanentWidget(label)

    def show_model(self, status: ModelStatus) -> None:
        self.model.setText(self.tr("Model: {} — {}").format(status.name, self._state(status)))
        self.model.setToolTip(status.detail)

    def show_embedder(self, status: ModelStatus) -> None:
        self.embedder.setText(self.tr("Search model: {}").format(self._state(status)))
        self.embedder.setToolTip(status.name)

    def _state(self, status: ModelStatus) -> str:
        names = {
            ModelState.NOT_LOADED: self.tr("not loaded"),
            ModelState.LOADING: self.tr("loading…"),
            ModelState.READY: self.tr("ready"),
            ModelState.GENERATING: self.tr("generating…"),
            ModelState.UNLOADED_IDLE: self.tr("unloaded after idle"),
            ModelState.UNLOADED_LOW_MEMORY: self.tr("unloaded: memory ran low"),
        }
        text = names[status.state]
        if status.memory_bytes:
            text += self.tr(" ({:.0f} MB)").format(status.memory_bytes / 2**20)
        return text

    def show_collection(self, name: str, documents: int, chunks: int) -> None:
        self.collection.setText(self.tr("{}: {} documents, {} chunks").format(name, documents, chunks))

    def show_cache(self, hits: int, misses: int, enabled: bool = True) -> None:
        if not enabled:
            self.cache.setText(self.tr("Cache off"))
            return
        self.cache.setText(self.tr("Cache: {} hits").format(hits))
        self.cache.setToolTip(self.tr("{} answers served from the cache, {} asked of the model").format(hits, misses))
