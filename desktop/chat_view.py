"""The chat: conversations, the streaming answer with clickable citations, reasoning, controls."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QGuiApplication, QKeyEvent, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
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

from desktop.structured_view import StructuredPanel
from rag import STARTER_NAME, AnswerResult, Citation, Claim, Quote, Source, link_marks


@dataclass
class ShownTurn:
    """One question and its answer as the window shows them."""

    question: str
    answer: str = ""
    reasoning: str = ""
    citations: list[Citation] = field(default_factory=list)
    cached: str | None = None
    mode: str = ""
    error: str = ""
    sources: list[Source] = field(default_factory=list)
    data: Any = None
    claims: list[Claim] = field(default_factory=list)
    model: str = ""
    quote: Quote | None = None


class QuestionBox(QPlainTextEdit):
    """Enter asks; Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
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

        self.conversations = QComboBox()
        self.conversations.setAccessibleName(self.tr("Conversation"))
        self.conversations.activated.connect(lambda i: self.conversation_chosen.emit(self.conversations.itemData(i) or ""))
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

        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._anchor)
        self.transcript.setPlaceholderText(self.tr("Ask a question about your documents."))
        self.badge = QLabel()
        self.badge.setObjectName("cacheBadge")
        self.badge.setStyleSheet("#cacheBadge { background: #2e86c1; color: white; border-radius: 6px; padding: 2px 8px; }")
        self.badge.hide()
        self.reasoning_toggle = QToolButton()
        self.reasoning_toggle.setText(self.tr("Reasoning ▸"))
        self.reasoning_toggle.setCheckable(True)
        self.reasoning_toggle.setAutoRaise(True)
        self.reasoning_toggle.toggled.connect(self._toggle_reasoning)
        self.reasoning = QPlainTextEdit()
        self.reasoning.setReadOnly(True)
        self.reasoning.setMaximumHeight(140)
        self.reasoning.hide()

        self.structured = StructuredPanel()
        self.question = QuestionBox()
        self.question.setPlaceholderText(self.tr("Ask a question (Enter asks, Shift+Enter for a new line)"))
        self.question.setMaximumHeight(90)
        self.question.submitted.connect(self._submit)
        self.ask_button = QPushButton(self.tr("Ask"))
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self._submit)
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setToolTip(self.tr("Stop the answer (Esc)"))
        self.stop_button.clicked.connect(self.stop.emit)
        self.copy_button = QPushButton(self.tr("Copy"))
        self.copy_button.clicked.connect(self.copy_answer)
        self.regenerate_button = QPushButton(self.tr("Regenerate"))
        self.regenerate_button.clicked.connect(self._regenerate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop.emit)

        bar = QHBoxLayout()
        bar.addWidget(QLabel(self.tr("Conversation:")))
        bar.addWidget(self.conversations, 1)
        bar.addWidget(new)
        bar.addWidget(manage)
        badges = QHBoxLayout()
        badges.addWidget(self.reasoning_toggle)
        badges.addStretch(1)
        badges.addWidget(self.badge)
        # Two short rows rather than one long one: the chat can then be narrow and the cited page wide.
        shape = QHBoxLayout()
        shape.addWidget(self.structured.toggle)
        shape.addWidget(self.structured.picker, 1)
        shape.addWidget(self.structured.edit_button)
        controls = QHBoxLayout()
        controls.addWidget(self.copy_button)
        controls.addWidget(self.regenerate_button)
        controls.addStretch(1)
        controls.addWidget(self.stop_button)
        controls.addWidget(self.ask_button)

        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(bar)
        upper_layout.addWidget(self.transcript, 1)
        upper_layout.addLayout(badges)
        upper_layout.addWidget(self.reasoning)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(self.structured.result)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(shape)
        layout.addWidget(self.question)
        layout.addLayout(controls)

        self._render_timer = QTimer(self)
        self._render_timer.setInterval(50)  # at most 20 repaints a second while streaming
        self._render_timer.timeout.connect(self._flush)
        self._render_timer.start()
        self.set_busy(False)

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
        title, ok = QInputDialog.getText(self, self.tr("Rename conversation"), self.tr("Title:"), text=self.conversations.currentText())
        if ok and title.strip():
            self.conversation_rename.emit(current, title.strip())

    def _delete(self) -> None:
        current = self.current_conversation()
        if current and QMessageBox.question(self, self.tr("Delete conversation"), self.tr("Delete this conversation?")) == QMessageBox.StandardButton.Yes:
            self.conversation_delete.emit(current)

    def _export(self) -> None:
        current = self.current_conversation()
        if not current:
            return
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export conversation"), self.conversations.currentText() + ".md", "Markdown (*.md)")
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
        turn.quote = result.quote or turn.quote
        if result.cached:
            text = self.tr("From the answer cache") if result.cached == "exact" else self.tr("Cached answer to a similar question")
            self.badge.setText(text)
            self.badge.setToolTip(self.tr("Regenerate to ask the model again."))
            self.badge.show()
        self.set_busy(False)
        self._dirty = True
        self._flush()

    def fail(self, message: str) -> None:
        if self.turns:
            self.turns[-1].error = message
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

    def markdown(self) -> str:
        """The transcript as Markdown; citation marks become ``cite:TURN/N`` links."""
        parts = []
        you, sources = self.tr("You"), self.tr("Sources")
        for index, turn in enumerate(self.turns):
            parts.append(f"**{you}:** {_escape(turn.question)}\n")
            if turn.quote is not None:
                n = turn.quote.number
                parts.append(f"> “{_escape(turn.quote.text)}” [\\[{n}\\]](cite:{index}/{n})\n")
            answer = turn.answer if turn.data is None else self.tr("(structured answer below)")
            linked = _linked(answer, index, turn.claims if turn.data is None else [])
            parts.append(linked or ("…" if self.busy and index == len(self.turns) - 1 else ""))
            if turn.error:
                parts.append(f"\n*{_escape(turn.error)}*")
            parts.extend(self._sources_lines(index, turn, sources))
            parts.append("\n\n---\n")
        return "\n".join(parts)

    def _sources_lines(self, index: int, turn: ShownTurn, heading: str) -> list[str]:
        """Under an answer: what it cites, what else it was drawn from, and what to check."""
        lines = []
        cited = {c.number for c in turn.citations}
        if turn.citations:
            links = " · ".join(f"[{c.number}: {_escape(c.label)}](cite:{index}/{c.number})" for c in turn.citations)
            lines.append(f"\n<small>{heading}: {links}</small>")
        read = [s for s in turn.sources if s.number not in cited]
        if read and (turn.citations or turn.answer) and not self._streaming(index):
            links = " · ".join(f"[{s.number}: {_escape(s.label)}](cite:{index}/{s.number})" for s in read)
            label = self.tr("Also read") if turn.citations else self.tr("The answer cites none of its sources; it was drawn from")
            lines.append(f"\n<small>{label}: {links}</small>")
        if turn.model == STARTER_NAME:
            note = self.tr("Written by the small starter model, a stand-in for gpt-oss-20b: check each sentence "
                           "against its source.")
            lines.append(f"\n<small>ℹ {note}</small>")
        flagged = [c for c in turn.claims if c.flagged]
        if flagged and turn.data is None:
            note = self.tr("Sentences to check: {} (underlined; hover for why).").format(len(flagged))
            lines.append(f"\n<small>⚠ {note}</small>")
        return lines

    def _streaming(self, index: int) -> bool:
        return self.busy and index == len(self.turns) - 1

    def _flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        bar = self.transcript.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.transcript.setMarkdown(self.markdown())
        self._mark_claims()
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

    def _mark_claims(self) -> None:
        """Underline, subtly, each sentence its source does not bear out, with the reason on hover."""
        document = self.transcript.document()
        spans = []
        block = document.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                href = fragment.charFormat().anchorHref()
                if href.startswith("check:"):
                    spans.append((fragment.position(), fragment.length(), fragment.charFormat(), href))
                it += 1
            block = block.next()
        for position, length, old, href in spans:
            claim = self._claim(href)
            if claim is None:
                continue
            mark = QTextCharFormat(old)
            mark.setForeground(self.palette().text())
            mark.setFontUnderline(True)
            mark.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
            mark.setUnderlineColor(QColor("#c07000"))
            mark.setToolTip(self.why(claim))
            cursor = QTextCursor(document)
            cursor.setPosition(position)
            cursor.setPosition(position + length, QTextCursor.MoveMode.KeepAnchor)
            cursor.setCharFormat(mark)

    def why(self, claim: Claim) -> str:
        """The hover text of a flagged sentence."""
        if claim.supported is None:
            text = self.tr("This sentence cites no source.")
        else:
            text = self.tr("Not borne out by its source: {}.").format(claim.problem)
        if claim.suggested is not None:
            text += " " + self.tr("[{}] holds it; click to open it.").format(claim.suggested)
        return text

    def _claim(self, href: str) -> Claim | None:
        turn, _, number = href.removeprefix("check:").partition("/")
        try:
            return self.turns[int(turn)].claims[int(number)]
        except (ValueError, IndexError):
            return None

    def _anchor(self, url: QUrl) -> None:
        if url.scheme() == "check":
            claim = self._claim(url.toString())
            turn = url.path().partition("/")[0]
            number = None if claim is None else claim.suggested if claim.suggested is not None else \
                next(iter(claim.cited), None)
            if number is None:
                return
            url = QUrl(f"cite:{turn}/{number}")
        if url.scheme() != "cite":
            return
        turn, _, number = url.path().partition("/")
        try:
            shown = self.turns[int(turn)]
            citation = next(c for c in [*shown.citations, *shown.sources] if c.number == int(number))
        except (ValueError, IndexError, StopIteration):
            return
        self.citation_clicked.emit(citation)

    def _toggle_reasoning(self, shown: bool) -> None:
        self.reasoning.setVisible(shown)
        self.reasoning_toggle.setText(self.tr("Reasoning ▾") if shown else self.tr("Reasoning ▸"))


_LEAD = re.compile(r"\s*(?:(?:[-*+]|\d+[.)]|#{1,6})\s+)?")  # spaces, and a list's bullet or a heading's #


def _linked(answer: str, turn: int, claims: list[Claim]) -> str:
    """The answer as Markdown: ``[n]`` marks become ``cite:TURN/N`` links, and each flagged
    sentence's words a ``check:TURN/K`` link (``_mark_claims`` restyles those)."""

    def cite(text: str) -> str:
        return link_marks(text, lambda n: f"[\\[{n}\\]](cite:{turn}/{n})")

    out, at = [], 0
    for k, claim in enumerate(claims):
        if not claim.flagged or claim.start < at:
            continue
        out.append(cite(answer[at:claim.start]))
        # The sentence's words around its marks: each run of words one link (marks cannot nest in one).
        pieces = re.split(r"\x00(\d+)\x00", link_marks(answer[claim.start:claim.end], lambda n: f"\x00{n}\x00"))
        for j, piece in enumerate(pieces):
            if j % 2:
                out.append(f"[\\[{piece}\\]](cite:{turn}/{piece})")
            elif piece[len(_LEAD.match(piece).group()):].strip():  # type: ignore[union-attr]
                lead = _LEAD.match(piece).group()  # type: ignore[union-attr] - it matches the empty string too
                words, trail = piece[len(lead):].rstrip(), piece[len(piece.rstrip()):]
                label = words.replace("[", "\\[").replace("]", "\\]")
                out.append(f"{lead}[{label}](check:{turn}/{k}){trail}")
            else:
                out.append(piece)
        at = claim.end
    out.append(cite(answer[at:]))
    return "".join(out)


def _escape(text: str) -> str:
    return html.escape(text).replace("*", "\\*").replace("_", "\\_")
