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
from desktop.status_bar import THINKING, WRITING, StatusBar
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
        self._drop_answer()
        self.conversation = None
        self.chat.show_turns([])
        self.sources.clear()

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
        self.status.show_searching()
        job = self.backend.call("model", "ask", work)
        self.ask_job = job
        job.partial.connect(self._ask_event)
        job.done.connect(lambda _r: self._ask_ended(job))
        job.failed.connect(self._ask_failed)

    def _ask_ended(self, job: Job) -> None:
        if self.ask_job is job:  # not an answer dropped meanwhile
            self.ask_job = None
            self.status.end_activity()

    def _drop_answer(self) -> None:
        """The transcript changes under a streaming answer (New, another conversation, another
        collection): the answer stops, and nothing more of it reaches the view."""
        job, self.ask_job = self.ask_job, None
        if job is not None:
            job.silenced = True
            job.stop()
            self.status.end_activity()

    def _ask_failed(self, error: object) -> None:
        self._ended_short(error)
        self.ask_job = None
        self.status.end_activity()
        if isinstance(error, EmbedderMismatch):
            offer_reembed(self._window, self.backend, error, self._refresh)

    def _ask_event(self, event: object) -> None:
        if isinstance(event, Conversation):
            self.conversation = event.id  # a new conversation, started for this question
        elif isinstance(event, Retrieved):
            self._reading = (len(event.sources), 0.0, 0)
            self.chat.show_retrieved(event.found, event.speed, event.starts_within, event.sources)
            # Next the model reads them (a short prompt is read without reports, so it is said now),
            # unless its weights must be loaded first: the engine says so at once ("Loading …").
            if self.status.model_loaded():
                self.status.show_reading(len(event.sources))
            else:
                self.status.show_found(len(event.sources))
            if event.quote is not None:
                self.chat.show_quote(event.quote)
        elif isinstance(event, Loading):
            self.status.show_loading(event.model)
        elif isinstance(event, Reading):
            self._show_reading(event)
        elif isinstance(event, ReasoningDelta):
            if self.status.phase not in (THINKING, WRITING):
                self.status.show_writing(reasoning=True)
            self.chat.add_reasoning(event.text)
        elif isinstance(event, AnswerDelta):
            if self.status.phase != WRITING:
                self.status.show_writing()
            self.chat.add_answer(event.text)
        elif isinstance(event, Answered):
            self.status.end_activity()
            self.chat.finish(event.result)
            if event.result.data is not None:
                self.chat.structured.show_result(event.result.data, event.result.field_sources)
            if event.result.citations:
                self.sources.show_citation(event.result.citations[0])
            self.load_conversations()
        elif isinstance(event, AskFailed):
            self.status.end_activity()
            self._ended_short(event.error)

    def _ended_short(self, error: object) -> None:
        """The answer ended without a result: stopped by the user (what it wrote stays, with a
        note), or failed (the error, in plain words)."""
        job = self.ask_job
        if job is not None and job.cancel.cancelled:
            self.chat.stopped()
        else:
            self.chat.fail(plain(error))

    def _show_reading(self, event: Reading) -> None:
        """"Reading 4 sources (1,240 of 1,980 tokens), about 3 s left…", the time left at the pace
        read so far (none yet at the first report)."""
        sources, began, first = self._reading
        now = time.monotonic()
        if not began:
            self._reading = (sources, now, event.done)
            self.status.show_reading(sources, event.done, event.total)
            return
        pace = (event.done - first) / max(1e-6, now - began)
        left = round((event.total - event.done) / pace) if pace > 0 else None
        self.status.show_reading(sources, event.done, event.total, left)

    def extract(self, schema: NamedSchema, out: str) -> None:
        collection, effort = self.backend.collection, self.backend.settings.reasoning_effort
        job = self.backend.call("model", "extract", lambda kb, job: extract_to(
            kb, collection, schema, Path(out), job.report, job.cancel, effort))
        self.extract_job = job
        job.progress.connect(lambda p: (self.chat.structured.show_extract_progress(p.done, p.total),
                                        self.status.show_extracting(p.done, p.total)))
        job.done.connect(lambda n: (self._extract_ended(),
                                    self.status.showMessage(self.tr("{} documents written to {}").format(n, out), 8000)))
        job.failed.connect(lambda e: (self._extract_ended(), self._report(self.tr("Extraction stopped"), e)))

    def _extract_ended(self) -> None:
        self.extract_job = None
        self.chat.structured.show_extract_progress(1, 1)
        self.status.end_activity()

    def load_conversations(self) -> None:
        collection = self.backend.collection
        job = self.backend.call("io", "conversations", lambda kb, _job: kb.list_conversations(collection))
        job.done.connect(lambda items: self.chat.set_conversations([(c.id, c.title) for c in items], self.conversation))

    def new_conversation(self) -> None:
        self._drop_answer()
        self.conversation = None
        self.chat.show_turns([])
        self.sources.clear()
        self.chat.question.setFocus()
        self.load_conversations()

    def open_conversation(self, conversation_id: str) -> None:
        if not conversation_id:
            return
        collection = self.backend.collection
        job = self.backend.call("io", "conversation", lambda kb, _job: kb.get_conversation(collection, conversation_id))

        def show(conversation: Conversation) -> None:
            self._drop_answer()
            self.conversation = conversation.id
            self.sources.clear()
            self.chat.show_turns([ShownTurn(t.question, t.answer, citations=t.cited(), mode=t.mode, data=t.data,
                                            claims=t.checked(), quote=t.quoted(), model=t.model,
                                            stand_in=t.stand_in)
                                  for t in conversation.turns])

        job.done.connect(show)

    def delete_conversation(self, conversation_id: str) -> None:
        if conversation_id == self.conversation:
            self._drop_answer()
            self.conversation = None
            self.chat.show_turns([])
            self.sources.clear()
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
