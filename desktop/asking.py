"""Asking: questions from the chat panel to the knowledge base, the answer streamed back, and
the current collection's conversations (open, rename, delete, export) and extraction."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject
from PySide6.QtWidgets import QWidget

from archivist import extract_to
from desktop.backend import Backend
from desktop.chat_view import ChatPanel, ShownTurn
from desktop.reembed_dialog import offer_reembed
from desktop.source_view import SourcePanel
from desktop.status_bar import StatusBar
from desktop.workers import Job
from rag import (
    AnswerDelta,
    Answered,
    ArchivistError,
    AskFailed,
    AskOptions,
    Conversation,
    EmbedderMismatch,
    KnowledgeBaseClient,
    Loading,
    NamedSchema,
    Reading,
    ReasoningDelta,
    Retrieved,
)


def plain(error: object) -> str:
    """An error as a sentence for people (ours already are)."""
    if isinstance(error, ArchivistError):
        return str(error)
    return QCoreApplication.translate("MainWindow", "Something went wrong: {}. Details are in the log file.").format(error)


class Asking(QObject):
    """Drives the chat panel: one question (or extraction) at a time, and the conversation it belongs to."""

    def __init__(self, window: QWidget, backend: Backend, chat: ChatPanel, sources: SourcePanel, status: StatusBar,
                 report: Callable[[str, object], None], refresh: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self.backend = backend
        self.chat = chat
        self.sources = sources
        self.status = status
        self._report = report
        self._refresh = refresh
        self.conversation: str | None = None
        self.ask_job: Job | None = None
        self.extract_job: Job | None = None
        self._reading = (0, 0.0, 0)  # sources being read, when the first report came, and how far it was
        c = chat
        c.ask.connect(self.ask)
        c.stop.connect(lambda: self.ask_job and self.ask_job.stop())
        c.citation_clicked.connect(sources.show_citation)
        c.conversation_chosen.connect(self.open_conversation)
        c.conversation_new.connect(self.new_conversation)
        c.conversation_rename.connect(lambda cid, title: self._conversation_op(
            lambda kb: kb.rename_conversation(backend.collection, cid, title)))
        c.conversation_delete.connect(self.delete_conversation)
        c.conversation_export.connect(self.export_conversation)
        c.structured.extract_requested.connect(self.extract)
        c.structured.source_clicked.connect(sources.show_citation)
        c.structured.cancel_extract.clicked.connect(lambda: self.extract_job and self.extract_job.stop())

    def clear(self) -> None:
        """Another collection: no conversation open."""
        self.conversation = None
        self.chat.show_turns([])

    def ask(self, question: str, regenerate: bool) -> None:
        if self.backend.kb is None:
            self.status.showMessage(self.tr("Still opening the knowledge base…"), 3000)
            return
        schema = self.chat.structured.schema()
        effort, cite = self.backend.settings.reasoning_effort, self.backend.settings.cite_every_sentence
        starts_within = float(self.backend.settings.answer_starts_within)
        collection, conversation = self.backend.collection, self.conversation

        def work(kb: KnowledgeBaseClient, job: Job) -> None:
            talk = conversation
            if talk is None and schema is None:
                started = kb.new_conversation(collection)
                job.emit(started)
                talk = started.id
            options = AskOptions(schema=schema, conversation=talk if schema is None else None, effort=effort,
                                 use_cache=not regenerate, cite_every_sentence=cite, starts_within=starts_within)
            for event in kb.ask(question, collection, options, job.cancel):
                job.emit(event)

        self.chat.begin(question)
        job = self.backend.call("model", "ask", work)
        self.ask_job = job
        job.partial.connect(self._ask_event)
        job.done.connect(lambda _r: setattr(self, "ask_job", None))
        job.failed.connect(self._ask_failed)

    def _ask_failed(self, error: object) -> None:
        self.ask_job = None
        self.chat.fail(plain(error))
        if isinstance(error, EmbedderMismatch):
            offer_reembed(self._window, self.backend, error, self._refresh)

    def _ask_event(self, event: object) -> None:
        if isinstance(event, Conversation):
            self.conversation = event.id  # a new conversation, started for this question
        elif isinstance(event, Retrieved):
            self._reading = (len(event.sources), 0.0, 0)
            self.chat.show_retrieved(event.found, event.speed, event.starts_within)
            self.status.showMessage(self.tr("{} sources ({})").format(len(event.sources), event.mode), 4000)
            if event.quote is not None:
                self.chat.show_quote(event.quote)
        elif isinstance(event, Loading):
            self.status.showMessage(self.tr("Loading {}…").format(event.model))
        elif isinstance(event, Reading):
            self.status.showMessage(self._reading_message(event))
        elif isinstance(event, ReasoningDelta):
            self.chat.add_reasoning(event.text)
        elif isinstance(event, AnswerDelta):
            self.chat.add_answer(event.text)
        elif isinstance(event, Answered):
            self.chat.finish(event.result)
            if event.result.data is not None:
                self.chat.structured.show_result(event.result.data, event.result.field_sources)
            if event.result.citations:
                self.sources.show_citation(event.result.citations[0])
            self.status.clearMessage()
            self.load_conversations()
        elif isinstance(event, AskFailed):
            self.chat.fail(plain(event.error))
            self.status.clearMessage()

    def _reading_message(self, event: Reading) -> str:
        """"Reading 4 sources: 1,240 of 1,980 tokens, about 3 s left…", the time left at the pace
        read so far (none yet at the first report)."""
        sources, began, first = self._reading
        now = time.monotonic()
        if not began:
            self._reading = (sources, now, event.done)
            return self.tr("Reading {} sources: {} of {} tokens…").format(sources, f"{event.done:,}", f"{event.total:,}")
        pace = (event.done - first) / max(1e-6, now - began)
        left = round((event.total - event.done) / pace) if pace > 0 else 0
        return self.tr("Reading {} sources: {} of {} tokens, about {} s left…").format(
            sources, f"{event.done:,}", f"{event.total:,}", max(1, left))

    def extract(self, schema: NamedSchema, out: str) -> None:
        collection, effort = self.backend.collection, self.backend.settings.reasoning_effort
        job = self.backend.call("model", "extract", lambda kb, job: extract_to(
            kb, collection, schema, Path(out), job.report, job.cancel, effort))
        self.extract_job = job
        job.progress.connect(lambda p: self.chat.structured.show_extract_progress(p.done, p.total))
        job.done.connect(lambda n: (self.chat.structured.show_extract_progress(1, 1), setattr(self, "extract_job", None),
                                    self.status.showMessage(self.tr("{} documents written to {}").format(n, out), 8000)))
        job.failed.connect(lambda e: (self.chat.structured.show_extract_progress(1, 1), self._report(self.tr("Extraction stopped"), e)))

    def load_conversations(self) -> None:
        collection = self.backend.collection
        job = self.backend.call("io", "conversations", lambda kb, _job: kb.list_conversations(collection))
        job.done.connect(lambda items: self.chat.set_conversations([(c.id, c.title) for c in items], self.conversation))

    def new_conversation(self) -> None:
        self.conversation = None
        self.chat.show_turns([])
        self.chat.question.setFocus()
        self.load_conversations()

    def open_conversation(self, conversation_id: str) -> None:
        if not conversation_id:
            return
        collection = self.backend.collection
        job = self.backend.call("io", "conversation", lambda kb, _job: kb.get_conversation(collection, conversation_id))

        def show(conversation: Conversation) -> None:
            self.conversation = conversation.id
            self.chat.show_turns([ShownTurn(t.question, t.answer, citations=t.cited(), mode=t.mode, data=t.data,
                                            claims=t.checked(), quote=t.quoted(), model=t.model,
                                            stand_in=t.stand_in)
                                  for t in conversation.turns])

        job.done.connect(show)

    def delete_conversation(self, conversation_id: str) -> None:
        if conversation_id == self.conversation:
            self.conversation = None
            self.chat.show_turns([])
        collection = self.backend.collection
        self._conversation_op(lambda kb: kb.delete_conversation(collection, conversation_id))

    def export_conversation(self, conversation_id: str, path: str) -> None:
        collection = self.backend.collection
        job = self.backend.call("io", "export", lambda kb, _job: Path(path).write_text(
            kb.export_conversation(collection, conversation_id), encoding="utf-8"))
        job.done.connect(lambda _n: self.status.showMessage(self.tr("Exported to {}").format(path), 5000))
        job.failed.connect(lambda e: self._report(self.tr("Cannot export"), e))

    def _conversation_op(self, op: Callable[[KnowledgeBaseClient], object]) -> None:
        job = self.backend.call("io", "conversation", lambda kb, _job: op(kb))
        job.done.connect(lambda _r: self.load_conversations())
