"""The status bar: what the model is doing for the question asked (loading its weights, reading
the sources, writing), each model's state and memory, the collection's size, the answer cache's hits."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QProgressBar, QStatusBar, QWidget

from desktop.elided_label import ElidedLabel
from desktop.plain_text import tooltip
from rag import ModelState, ModelStatus

LOADING, READING, THINKING, WRITING, SEARCHING, EXTRACTING = (
    "loading", "reading", "thinking", "writing", "searching", "extracting")


class StatusBar(QStatusBar):
    """The activity of the moment (a line and a progress bar, on the left), four permanent fields
    on the right, and the usual transient messages."""

    activity_changed = Signal(str)  # the activity's line as shown ("" once it ends)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.activity = ElidedLabel(elide=Qt.TextElideMode.ElideRight)
        self.activity.setObjectName("activity")
        self.activity_bar = QProgressBar()
        self.activity_bar.setTextVisible(False)
        self.activity_bar.setMaximumWidth(self.fontMetrics().horizontalAdvance("0") * 16)
        self.addWidget(self.activity, 1)
        self.addWidget(self.activity_bar)
        self.phase = ""
        self._status: ModelStatus | None = None
        self.model = ElidedLabel(self.tr("Model: starting…"), Qt.TextElideMode.ElideRight)
        self.collection = ElidedLabel(elide=Qt.TextElideMode.ElideRight)
        self.cache = ElidedLabel(elide=Qt.TextElideMode.ElideRight)
        self.embedder = ElidedLabel(elide=Qt.TextElideMode.ElideRight)
        for label in (self.collection, self.cache, self.embedder, self.model):
            self.addPermanentWidget(label)
        self.end_activity()

    # -- what the model is doing for the question -----------------------------------------------

    def show_searching(self) -> None:
        """The question is asked: the sources are being looked for."""
        self._activity(SEARCHING, self.tr("Looking for sources…"), busy=True)

    def show_found(self, sources: int) -> None:
        """The sources are chosen; the model is not loaded yet (the engine says when it loads)."""
        text = self.tr("Found 1 source…") if sources == 1 else self.tr("Found {} sources…").format(sources)
        self._activity(SEARCHING, text, busy=True)

    def model_loaded(self) -> bool:
        """Whether the model's weights were in memory at its last report."""
        return self._status is not None and self._status.state in (ModelState.READY, ModelState.GENERATING)

    def show_loading(self, model: str) -> None:
        """The model's weights are being loaded: said only until it reads or writes."""
        self._activity(LOADING, self.tr("Loading {}…").format(model), busy=True)

    def show_reading(self, sources: int, done: int = 0, total: int = 0, seconds_left: int | None = None) -> None:
        """The model reads its prompt: "Reading 4 sources (1,240 of 1,980 tokens)…", a bar, the
        time left at the pace so far. Without counts (a prompt read in one go), the bar only moves."""
        if sources == 1:
            what = self.tr("Reading 1 source")
        elif sources:
            what = self.tr("Reading {} sources").format(sources)
        else:
            what = self.tr("Reading the question")
        if not total:
            self._activity(READING, what + "…", busy=True)
            return
        tokens = self.tr("({} of {} tokens)").format(f"{done:,}", f"{total:,}")
        if seconds_left is None:
            text = f"{what} {tokens}…"
        else:
            text = self.tr("{} {}, about {} s left…").format(what, tokens, max(1, seconds_left))
        self._activity(READING, text, value=(done, total))

    def show_writing(self, reasoning: bool = False) -> None:
        """The first words are coming: the model thinks (its reasoning) or writes the answer."""
        if reasoning:
            self._activity(THINKING, self.tr("Thinking it over…"), busy=True)
        else:
            self._activity(WRITING, self.tr("Writing the answer…"), busy=True)

    def show_extracting(self, done: int, total: int) -> None:
        self._activity(EXTRACTING, self.tr("Extracting: {} of {} documents").format(done, total), value=(done, total))

    def end_activity(self) -> None:
        """Nothing is being done for a question any more."""
        self.phase = ""
        self.activity.setText("")
        self.activity.hide()
        self.activity_bar.hide()
        self._show_model_label()
        self.activity_changed.emit("")

    def _activity(self, phase: str, text: str, busy: bool = False, value: tuple[int, int] = (0, 0)) -> None:
        self.phase = phase
        self.activity.setText(text)
        self.activity.show()
        if busy:
            self.activity_bar.setRange(0, 0)  # moving, without a measure
        else:
            done, total = value
            self.activity_bar.setRange(0, max(1, total))
            self.activity_bar.setValue(min(done, max(1, total)))
        self.activity_bar.show()
        self._show_model_label()
        self.activity_changed.emit(text)

    # -- the permanent fields ---------------------------------------------------------------------

    def show_model(self, status: ModelStatus) -> None:
        self._status = status
        self._show_model_label()

    def _show_model_label(self) -> None:
        status = self._status
        if status is None:
            return
        self.model.setText(self.tr("Model: {} — {}").format(status.name, self._state(status)))
        self.model.setToolTip(tooltip(status.detail))

    def show_embedder(self, status: ModelStatus) -> None:
        self.embedder.setText(self.tr("Search model: {}").format(self._state(status)))
        self.embedder.setToolTip(tooltip(status.name))

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
        if status.state in (ModelState.GENERATING, ModelState.LOADING) and self.phase:
            # The engine says "generating" from the first token read to the last written: say which.
            text = {LOADING: self.tr("loading its weights…"), READING: self.tr("reading the sources…"),
                    THINKING: self.tr("thinking…"), WRITING: self.tr("writing…")}.get(self.phase, text)
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
