"""The chat panel: the conversations, the transcript with clickable citations, the reasoning, the controls.

The panel holds the widgets and says what the user asks for through its signals; the transcript is
built and written into its document by ``desktop.transcript`` (the model's words only ever as text),
and a click on one of its links is read back through ``desktop.transcript_links``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.claim_marks import source_to_open
from desktop.structured_view import StructuredPanel
from desktop.transcript import ShownTurn, ending_of, linked_claim, linked_source, transcript_text, write_transcript
from desktop.transcript_links import CHECK, CITE, TranscriptLink, parse_link
from rag import AnswerResult, Quote, Source


class QuestionBox(QPlainTextEdit):
    """Enter asks; Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not shift:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatPanel(QWidget):
    """Shows turns and streams; emits what the user asks for."""

    ask = Signal(str, bool)  # question, regenerate (skip the cache)
    stop = Signal()
    citation_clicked = Signal(object)
    conversation_chosen = Signal(str)
    conversation_new = Signal()
    conversation_rename = Signal(str, str)
    conversation_delete = Signal(str)
    conversation_export = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.turns: list[ShownTurn] = []
        self.busy = False
        self._dirty = False

        self.structured = StructuredPanel()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self._transcript_pane())
        split.addWidget(self.structured.result)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        # Two short rows rather than one long one: the chat can then be narrow and the cited page wide.
        layout.addLayout(self._shape_row())
        layout.addWidget(self._question_box())
        layout.addLayout(self._controls_row())

        self._render_timer = QTimer(self)
        self._render_timer.setInterval(50)  # at most 20 repaints a second while streaming
        self._render_timer.timeout.connect(self._flush)
        self._render_timer.start()
        self.set_busy(False)

    # -- construction -----------------------------------------------------------------------

    def _transcript_pane(self) -> QWidget:
        """The conversation's bar, the transcript, and under it the reasoning with its toggle and the cache's badge."""
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._anchor)
        self.transcript.setPlaceholderText(self.tr("Ask a question about your documents."))
        self.reasoning = QPlainTextEdit()
        self.reasoning.setReadOnly(True)
        self.reasoning.setMaximumHeight(140)
        self.reasoning.hide()
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._conversation_bar())
        layout.addWidget(self.transcript, 1)
        layout.addLayout(self._badges_row())
        layout.addWidget(self.reasoning)
        return pane

    def _conversation_bar(self) -> QHBoxLayout:
        """Which conversation is shown, a new one, and a menu to rename, delete or export it."""
        self.conversations = QComboBox()
        self.conversations.setAccessibleName(self.tr("Conversation"))
        self.conversations.activated.connect(
            lambda i: self.conversation_chosen.emit(self.conversations.itemData(i) or ""))
        new = QPushButton(self.tr("New"))
        new.setToolTip(self.tr("New conversation (Ctrl+N)"))
        new.clicked.connect(self.conversation_new.emit)
        manage = QToolButton()
        manage.setText("⋯")
        manage.setToolTip(self.tr("Rename, delete or export this conversation"))
        manage.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(manage)
        menu.addAction(self.tr("Rename"), self._rename)
        menu.addAction(self.tr("Delete"), self._delete)
        menu.addAction(self.tr("Export…"), self._export)
        manage.setMenu(menu)
        bar = QHBoxLayout()
        bar.addWidget(QLabel(self.tr("Conversation:")))
        bar.addWidget(self.conversations, 1)
        bar.addWidget(new)
        bar.addWidget(manage)
        return bar

    def _badges_row(self) -> QHBoxLayout:
        """The toggle that shows the reasoning, and the badge of an answer that came from the cache."""
        self.reasoning_toggle = QToolButton()
        self.reasoning_toggle.setText(self.tr("Reasoning ▸"))
        self.reasoning_toggle.setCheckable(True)
        self.reasoning_toggle.setAutoRaise(True)
        self.reasoning_toggle.toggled.connect(self._toggle_reasoning)
        self.badge = QLabel()
        self.badge.setObjectName("cacheBadge")
        self.badge.setStyleSheet(
            "#cacheBadge { background: #2e86c1; color: white; border-radius: 6px; padding: 2px 8px; }")
        self.badge.hide()
        row = QHBoxLayout()
        row.addWidget(self.reasoning_toggle)
        row.addStretch(1)
        row.addWidget(self.badge)
        return row

    def _shape_row(self) -> QHBoxLayout:
        """The structured answer's switch, its schema and the schema's editor."""
        row = QHBoxLayout()
        row.addWidget(self.structured.toggle)
        row.addWidget(self.structured.picker, 1)
        row.addWidget(self.structured.edit_button)
        return row

    def _question_box(self) -> QuestionBox:
        self.question = QuestionBox()
        self.question.setPlaceholderText(self.tr("Ask a question (Enter asks, Shift+Enter for a new line)"))
        self.question.setMaximumHeight(90)
        self.question.submitted.connect(self._submit)
        return self.question

    def _controls_row(self) -> QHBoxLayout:
        """Copy or regenerate the last answer; stop the one being written (Esc too), or ask."""
        self.ask_button = QPushButton(self.tr("Ask"))
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self._submit)
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setToolTip(self.tr("Stop the answer (Esc)"))
        self.stop_button.clicked.connect(self.stop.emit)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop.emit)
        self.copy_button = QPushButton(self.tr("Copy"))
        self.copy_button.clicked.connect(self.copy_answer)
        self.regenerate_button = QPushButton(self.tr("Regenerate"))
        self.regenerate_button.clicked.connect(self._regenerate)
        row = QHBoxLayout()
        row.addWidget(self.copy_button)
        row.addWidget(self.regenerate_button)
        row.addStretch(1)
        row.addWidget(self.stop_button)
        row.addWidget(self.ask_button)
        return row

    # -- conversations ----------------------------------------------------------------------

    def set_conversations(self, items: list[tuple[str, str]], current: str | None) -> None:
        self.conversations.blockSignals(True)
        self.conversations.clear()
        for conversation_id, title in items:
            self.conversations.addItem(title or self.tr("New conversation"), conversation_id)
        index = self.conversations.findData(current) if current else -1
        self.conversations.setCurrentIndex(index)
        self.conversations.blockSignals(False)

    def current_conversation(self) -> str | None:
        return self.conversations.currentData() or None

    def _rename(self) -> None:
        current = self.current_conversation()
        if not current:
            return
        title, ok = QInputDialog.getText(self, self.tr("Rename conversation"), self.tr("Title:"),
                                         text=self.conversations.currentText())
        if ok and title.strip():
            self.conversation_rename.emit(current, title.strip())

    def _delete(self) -> None:
        current = self.current_conversation()
        if not current:
            return
        answer = QMessageBox.question(self, self.tr("Delete conversation"), self.tr("Delete this conversation?"))
        if answer == QMessageBox.StandardButton.Yes:
            self.conversation_delete.emit(current)

    def _export(self) -> None:
        current = self.current_conversation()
        if not current:
            return
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export conversation"),
                                              str(Path.home() / f"{self.conversations.currentText()}.md"),
                                              "Markdown (*.md)")
        if path:
            self.conversation_export.emit(current, path)

    # -- turns ------------------------------------------------------------------------------

    def show_turns(self, turns: list[ShownTurn]) -> None:
        self.turns = turns
        self.reasoning.setPlainText(turns[-1].reasoning if turns else "")
        self.badge.hide()
        self._dirty = True
        self._flush()

    def begin(self, question: str) -> ShownTurn:
        turn = ShownTurn(question)
        self.turns.append(turn)
        self.reasoning.clear()
        self.badge.hide()
        self.set_busy(True)
        self._dirty = True
        return turn

    def add_reasoning(self, text: str) -> None:
        self.turns[-1].reasoning += text
        self.reasoning.moveCursor(self.reasoning.textCursor().MoveOperation.End)
        self.reasoning.insertPlainText(text)

    def show_retrieved(self, found: int, read_speed: float, starts_within: float,
                       sources: list[Source] | None = None) -> None:
        """How many passages were found, the model's pace that bounded those it reads, and the
        sources it reads (listed, and its marks clickable, even if the answer never finishes)."""
        turn = self.turns[-1]
        turn.found, turn.read_speed, turn.starts_within = found, read_speed, starts_within
        if sources is not None:
            turn.sources = list(sources)
        self._dirty = True

    def show_quote(self, quote: Quote) -> None:
        """The best source sentence, word for word, above the answer being written."""
        self.turns[-1].quote = quote
        self._dirty = True

    def add_answer(self, text: str) -> None:
        self.turns[-1].answer += text
        self._dirty = True

    def finish(self, result: AnswerResult) -> None:
        turn = self.turns[-1]
        turn.answer = result.answer if result.data is None else turn.answer
        turn.citations = result.citations
        turn.sources = result.sources
        turn.cached = result.cached
        turn.mode = result.mode
        turn.data = result.data
        turn.claims = result.claims
        turn.model = result.model
        turn.stand_in = result.stand_in
        turn.quote = result.quote or turn.quote
        turn.ending = ending_of(result.finish)
        if result.cached:
            if result.cached == "exact":
                self.badge.setText(self.tr("From the answer cache"))
            else:
                self.badge.setText(self.tr("Cached answer to a similar question"))
            self.badge.setToolTip(self.tr("Regenerate to ask the model again."))
            self.badge.show()
        self.set_busy(False)
        self._dirty = True
        self._flush()

    def fail(self, message: str) -> None:
        """The answer being written ended in an error: ``message`` says why in plain words."""
        if self.turns:
            self.turns[-1].error = message
        self.set_busy(False)
        self._dirty = True
        self._flush()

    def stopped(self) -> None:
        """The user stopped the answer being written: what it wrote so far stays, with a note."""
        if self.turns:
            self.turns[-1].ending = "stopped"
        self.set_busy(False)
        self._dirty = True
        self._flush()

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.stop_button.setEnabled(busy)
        self.ask_button.setEnabled(not busy)
        self.regenerate_button.setEnabled(not busy and bool(self.turns))
        self.copy_button.setEnabled(not busy and bool(self.turns))

    def copy_answer(self) -> None:
        if self.turns:
            QGuiApplication.clipboard().setText(self.turns[-1].answer)

    # -- rendering --------------------------------------------------------------------------

    def text(self) -> str:
        """The transcript as plain text, as it is shown."""
        return transcript_text(self.turns, self.busy)

    def _flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        bar = self.transcript.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        write_transcript(self.transcript.document(), self.turns, self.busy, self.palette())
        if at_end:
            bar.setValue(bar.maximum())

    # -- gestures ---------------------------------------------------------------------------

    def _submit(self) -> None:
        question = self.question.toPlainText().strip()
        if question and not self.busy:
            self.question.clear()
            self.ask.emit(question, False)

    def _regenerate(self) -> None:
        if self.turns and not self.busy:
            question = self.turns.pop().question
            self._dirty = True
            self.ask.emit(question, True)

    def _anchor(self, url: QUrl) -> None:
        """A citation's link opens its source; a sentence to check opens the source that holds it."""
        link = parse_link(url.toString())
        if link is not None and link.kind == CHECK:
            claim = linked_claim(self.turns, link)
            number = None if claim is None else source_to_open(claim)
            link = None if number is None else TranscriptLink(CITE, link.turn, number)
        source = None if link is None else linked_source(self.turns, link)
        if source is not None:
            self.citation_clicked.emit(source)

    def _toggle_reasoning(self, shown: bool) -> None:
        self.reasoning.setVisible(shown)
        self.reasoning_toggle.setText(self.tr("Reasoning ▾") if shown else self.tr("Reasoning ▸"))
