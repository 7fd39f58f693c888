"""The one facade every client talks to: collections, documents, search, answers and the rest.

The CLI and the tests hold a ``KnowledgeBase`` in their own process; the window and a team's
desktops reach one through ``rag.service.dispatch`` (a pipe or HTTP) with the same methods, the same
messages and the same errors. Progress arrives through one ``progress`` callback taking one
message, Stop through a ``CancelToken``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from annotated_types import Interval

from engine import CATALOG, CancelToken, LanguageModel, ModelStatus, check_adapter
from engine.download import DownloadProgress, download
from rag.answering.answer_cache import AnswerCache, CacheStats
from rag.answering.ask import AskContext, AskEvent, AskOptions, answer
from rag.answering.checkup import CheckQuestion, Checkup, CheckupFiles, CheckupReport, CheckupState, CheckupStore
from rag.answering.conversations import Conversation, ConversationFiles, ConversationStore
from rag.answering.reading_speed import ReadingSpeeds
from rag.answering.retrieval import SearchMode, search, to_passage
from rag.calls import Access, offered
from rag.documents import Passage, document_key
from rag.embedding import Embedder
from rag.errors import CollectionExists, CollectionNotFound, EmbedderMismatch, KnowledgeBaseError
from rag.indexing.discovery import within
from rag.indexing.folder_changes import Changes, apply_changes
from rag.indexing.following import Followed, FollowedFolders, FollowFile, FollowList
from rag.indexing.ingest import ChunkOptions, FileOutcome, Ingestor, IngestReport, ProgressCallback
from rag.indexing.reembedding import reembed
from rag.storage.collection import StoredCollection
from rag.storage.keyword_index import KeywordIndex
from rag.storage.manifest import FileRecord
from rag.storage.open_collections import OpenCollections, sync_keyword
from rag.storage.vectors import CollectionInfo, VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepProgress:
    """``done`` of ``total`` steps (chunks re-embedded, check-up questions searched)."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class CollectionStatus:
    """A knowledge base at a glance: its files (with their states) and its size."""

    info: CollectionInfo
    files: list[FileRecord]
    chunks: int

    def count(self, status: str) -> int:
        """How many files are in ``status``."""
        return sum(1 for f in self.files if f.status == status)


class KnowledgeBase:
    """Collections of documents, searchable by meaning and by keyword.

    Built from a vector store, an embedder and a folder for the keyword indexes, each
    passed in; nothing here loads a model until it is needed.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        keyword_dir: Path,
        chunking: ChunkOptions = ChunkOptions(),
        model: LanguageModel | None = None,
        cache: AnswerCache | None = None,
        conversations: ConversationStore | None = None,
        checkups: CheckupStore | None = None,
        following: FollowList | None = None,
        confine_folders: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.keyword_dir = keyword_dir
        self.model = model
        self.cache = cache
        self.conversations = conversations or ConversationFiles(keyword_dir.parent / "conversations")
        self.checkups = checkups or CheckupFiles(keyword_dir.parent / "checkups")
        self.speeds = ReadingSpeeds(keyword_dir.parent / "reading-speeds.json")
        self.chunking = dataclasses.replace(chunking, max_tokens=min(chunking.max_tokens, embedder.max_tokens - 2))
        self.opened = OpenCollections(store, keyword_dir)
        self._indexing = threading.Lock()  # one indexing route: drops, followed folders, re-embedding
        self.following = FollowedFolders(following or FollowFile(keyword_dir.parent / "followed.json"),
                                         self._apply_followed)
        # A server's: a symbolic link in a folder being indexed is followed only within that folder.
        self.confine_folders = confine_folders

    # -- collections ------------------------------------------------------------------------

    @offered(Access.ANYONE, None)
    def collections(self) -> list[CollectionInfo]:
        """Every knowledge base, sorted by name."""
        return self.store.collections()

    @offered(Access.ANYONE, "name", audited=True, creates=True)
    def create_collection(self, name: str) -> CollectionInfo:
        """A new, empty knowledge base built with this knowledge base's embedder."""
        info = self.store.create(name, self.embedder.model_id, self.embedder.dimension)
        self._forget(info.id)  # left by a collection of the same name deleted by another client or a crash
        self.following.forget(info.name)  # followed folders are kept by name
        return info

    @offered(Access.OWNER, "name", audited=True)
    def rename_collection(self, name: str, new_name: str) -> CollectionInfo:
        """Rename a knowledge base."""
        info = self.store.rename(name, new_name)
        self.opened.reopen(info.id)
        self.opened.forget_name()
        self.following.rename(name, info.name)  # the name as stored (stripped)
        return info

    @offered(Access.OWNER, "name", server_paths=("adapter",), audited=True)
    def set_adapter(self, name: str, adapter: Path | None) -> CollectionInfo:
        """Make answers from ``name`` use a LoRA adapter (a GGUF file made for the model), or none.

        For fields where the base model is weak (law, medicine); the file is checked now, and
        applied by the engine when a question is asked of this collection.
        """
        if adapter is not None:
            check_adapter(adapter)
        info = self.store.set_adapter(name, str(adapter.absolute()) if adapter else "")
        self.opened.reopen(info.id)
        self.opened.forget_name()
        return info

    @offered(Access.OWNER, "name", audited=True)
    def delete_collection(self, name: str) -> None:
        """Delete a knowledge base and everything indexed in it (the files themselves stay)."""
        info = self.store.find(name)
        self.following.forget(name)  # first: a round of changes must not make the collection again
        self.opened.forget_name()
        self.store.delete(name)
        self._forget(info.id)

    def _forget(self, collection_id: str) -> None:
        """What is kept beside the store for a collection: ids follow from names, so a later
        collection of the same name must not find its keyword index, check-up or conversations."""
        self.opened.forget(collection_id)
        self.checkups.forget(collection_id)
        self.conversations.forget(collection_id)

    def _find(self, name: str) -> CollectionInfo:
        return self.opened.find(name)

    def _collection(self, name: str, create: bool = False) -> tuple[StoredCollection, KeywordIndex]:
        try:
            info = self._find(name)
        except CollectionNotFound:
            if not create:
                raise
            try:
                info = self.create_collection(name)
            except CollectionExists:  # another client created it a moment ago
                self.opened.forget_name(name)
                info = self._find(name)
        return self.opened.open(info)

    @offered(Access.READER)
    def check_embedder(self, collection: str) -> None:
        """Raise ``EmbedderMismatch`` when ``collection`` exists and was built with another model."""
        try:
            stored, _ = self._collection(collection)
        except CollectionNotFound:
            return
        self._check_embedder(stored)

    def _check_embedder(self, collection: StoredCollection) -> None:
        if collection.info.embedder != self.embedder.model_id:
            raise EmbedderMismatch(collection.info.name, collection.info.embedder, self.embedder.model_id)

    # -- documents --------------------------------------------------------------------------

    @offered(Access.EDITOR, server_paths=("paths",), client_paths=("paths",), audited=True, creates=True)
    def ingest(
        self,
        paths: Sequence[Path],
        collection: str,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        force: bool = False,
    ) -> IngestReport:
        """Index files and folders into ``collection`` (created if new); see ``Ingestor.run``."""
        stored, keyword = self._collection(collection, create=True)
        self._check_embedder(stored)
        with self._indexing:
            sync_keyword(stored, keyword)
            report = Ingestor(stored, keyword, self.embedder, self.chunking, confine=self.confine_folders).run(
                paths, progress, cancel, force)
            # In step with the store, this ingest's rows and any another client wrote meanwhile: the rows
            # written since the sync above (this ingest's own are passed over, their hashes the same).
            sync_keyword(stored, keyword)
        return report

    @offered(Access.EDITOR, client_paths=("paths",), audited=True)
    def remove(self, paths: Sequence[Path], collection: str) -> list[FileOutcome]:
        """Forget files, or every file under a folder; the files on disk are not touched."""
        stored, keyword = self._collection(collection)
        with self._indexing:
            outcomes = Ingestor(stored, keyword, self.embedder, self.chunking).remove(paths)
            sync_keyword(stored, keyword)  # in step: this removal's tombstones, and what others wrote meanwhile
        return outcomes

    @offered(Access.READER)
    def status(self, collection: str) -> CollectionStatus:
        """The files of ``collection`` with their states, and its chunk count."""
        stored, _ = self._collection(collection)
        files = sorted(stored.files().values(), key=lambda r: str(r.path))
        return CollectionStatus(stored.info, files, stored.count())

    @offered(Access.READER)
    def fingerprint(self, collection: str) -> str:
        """A token of ``collection``'s indexed files alone: it changes when a file is indexed or
        removed, by anyone (what a cached answer or a search depends on; see ``revision`` for views)."""
        stored, _ = self._collection(collection)
        return f"{stored.info.id}:{stored.generation()}"

    @offered(Access.EDITOR, audited=True)
    def reembed(
        self, collection: str, progress: Callable[[StepProgress], None] | None = None, cancel: CancelToken | None = None,
        batch: Annotated[int, Interval(ge=1, le=4096)] = 256,
    ) -> CollectionInfo:
        """Rebuild ``collection``'s vectors with this knowledge base's embedding model.

        The new vectors go into a hidden collection; the old ones stay (and stay usable with
        the old model) until every chunk is done, then the two are swapped. Stopped or
        failed, the hidden one is dropped and nothing is lost.
        """
        with self._indexing:
            stored, _ = self._collection(collection)
            info = reembed(stored, self.store, self.embedder, batch,
                           progress and (lambda done, total: progress(StepProgress(done, total))), cancel)
            # The swapped collection is a new Chroma object behind the same id.
            self.opened.reopen(info.id)
            self.opened.forget_name(collection)
            return info

    # -- search -----------------------------------------------------------------------------

    @offered(Access.READER, client_paths=("paths",))
    def search(
        self,
        query: str,
        collection: str,
        limit: Annotated[int, Interval(ge=1, le=200)] = 10,
        paths: Sequence[Path] | None = None,
        mode: SearchMode = SearchMode(),
        query_vector: np.ndarray | None = None,
    ) -> list[Passage]:
        """The best passages for ``query``, from every file or only from ``paths``."""
        stored, keyword = self._collection(collection)
        self._check_embedder(stored)
        generation, unfinished = stored.state()
        sync_keyword(stored, keyword, generation, unfinished)
        docs = None if paths is None else [document_key(Path(p).absolute()) for p in paths]
        return search(
            query, stored, self.embedder, keyword, limit=limit, docs=docs, exclude=list(unfinished), mode=mode,
            query_vector=query_vector, searchable_by_words=list(keyword.words_only()),
        )

    @offered(Access.READER, client_paths=("path",))
    def document_passages(self, path: Path, collection: str) -> list[Passage]:
        """Every chunk of one indexed file, in order."""
        stored, _ = self._collection(collection)
        return [to_passage(c) for c in stored.document_chunks(document_key(Path(path).absolute()))]

    # -- answers ----------------------------------------------------------------------------

    @offered(Access.READER, client_paths=("options.paths",), audited=True)
    def ask(
        self, question: str, collection: str, options: AskOptions = AskOptions(), cancel: CancelToken | None = None
    ) -> Iterator[AskEvent]:
        """Answer from the collection's documents, streaming events (see ``rag.answering.ask``)."""
        if self.model is None:
            raise KnowledgeBaseError("No language model is set up; choose one in Settings.")
        stored, _ = self._collection(collection)
        self._check_embedder(stored)
        context = AskContext(
            model=self.model,
            collection_id=stored.info.id,
            adapter=Path(stored.info.adapter) if stored.info.adapter else None,
            fingerprint=lambda: f"{stored.info.id}:{stored.generation()}",
            search=lambda q, limit, paths, vector: self.search(q, collection, limit, paths, query_vector=vector),
            document_chunks=lambda path: self.document_passages(path, collection),
            embed_query=self.embedder.embed_query,
            embed=self.embedder.embed,
            cache=self.cache,
            conversations=self.conversations,
            quote=self.model.stand_in,
            speeds=self.speeds,
        )
        return answer(question, context, options, cancel)

    # -- check-up ---------------------------------------------------------------------------

    @offered(Access.READER)
    def checkup(self, collection: str) -> CheckupState:
        """The saved test questions of ``collection`` and its last run."""
        return Checkup(self.checkups, self._find(collection).id).state()

    @offered(Access.EDITOR, audited=True)
    def add_check(self, collection: str, question: CheckQuestion) -> CheckupState:
        checkup = Checkup(self.checkups, self._find(collection).id)
        checkup.add(question)
        return checkup.state()

    @offered(Access.EDITOR, audited=True)
    def remove_check(self, collection: str, question: str) -> CheckupState:
        checkup = Checkup(self.checkups, self._find(collection).id)
        checkup.remove(question)
        return checkup.state()

    @offered(Access.READER, audited=True)
    def run_checkup(self, collection: str, progress: Callable[[StepProgress], None] | None = None) -> CheckupReport:
        """Search every saved question as asking does; the run, with the one before it."""
        checkup = Checkup(self.checkups, self._find(collection).id)
        return checkup.run(lambda question: self.search(question, collection, limit=10), self.embedder.model_id,
                           progress and (lambda done, total: progress(StepProgress(done, total))))

    # -- followed folders -------------------------------------------------------------------

    @offered(Access.READER)
    def followed(self, collection: str) -> Followed:
        """The folders ``collection`` follows, and what their last changes did."""
        return self.following.get(collection)

    @offered(Access.EDITOR, server_paths=("folder",), audited=True, creates=True)
    def follow(self, collection: str, folder: Path) -> Followed:
        """Index ``folder`` now and keep ``collection`` in step with it from now on."""
        return self.following.follow(collection, folder)

    @offered(Access.EDITOR, audited=True)
    def unfollow(self, collection: str, folder: Path) -> Followed:
        """Stop following ``folder``; what was indexed from it stays."""
        return self.following.unfollow(collection, folder)

    def _apply_followed(self, collection: str, changes: Changes | None, folders: Sequence[Path]) -> list[FileOutcome]:
        self.store.find(collection)  # CollectionNotFound for one deleted meanwhile: a round never makes one
        if changes is None:
            return self.ingest(folders, collection).outcomes
        if self.confine_folders:
            roots = [Path(folder).resolve() for folder in folders]
            changes.changed = {p for p in changes.changed if any(within(p, root) for root in roots)}
        return apply_changes(self, collection, changes)

    # -- model, embedder, cache -------------------------------------------------------------

    @offered(Access.ANYONE, None)
    def model_status(self) -> ModelStatus | None:
        """Where the language model stands, or None when none is set up."""
        return self.model.status() if self.model is not None else None

    @offered(Access.ANYONE, None)
    def embedder_status(self) -> ModelStatus:
        return self.embedder.status()

    def add_listener(self, listener: Callable[[ModelStatus], None]) -> None:
        """Call ``listener`` with the model's status whenever it changes (loading, ready, unloaded)."""
        if self.model is not None:
            self.model.add_listener(listener)

    @offered(Access.ADMIN, None, audited=True)
    def unload_model(self) -> None:
        """Give the language model's memory back now; it loads again for the next question."""
        if self.model is not None:
            self.model.unload()

    @offered(Access.ANYONE, None)
    def cache_stats(self) -> CacheStats | None:
        """Hits and misses of the answer cache, or None when it is off."""
        return self.cache.stats() if self.cache is not None else None

    @offered(Access.ADMIN, None, audited=True)
    def clear_cache(self) -> None:
        if self.cache is not None:
            self.cache.clear()

    @offered(Access.ADMIN, None, server_paths=("folder",), audited=True)
    def download_model(
        self, key: str, folder: Path, mirror: str = "", accept_unverified: bool = False,
        progress: Callable[[DownloadProgress], None] | None = None, cancel: CancelToken | None = None,
    ) -> Path:
        """Download the catalog model ``key`` into ``folder``; the path to use it from.

        A model with no pinned checksum downloads only with ``accept_unverified`` (the user said yes).
        """
        model = next((m for m in CATALOG if m.key == key), None)
        if model is None:
            raise KnowledgeBaseError(f"There is no model {key!r} in the catalog.")
        for file in model.files:
            download(file.url, model.folder(folder) / file.name, file.sha256, mirror, progress, cancel,
                     accept_unverified=accept_unverified)
        return model.entry(folder)

    @offered(Access.ANYONE)
    def revision(self, collection: str) -> str:
        """A token of everything a window shows about ``collection``: the list of collections, its
        files (``fingerprint``), its conversations, its followed folders. A view polls it and
        redraws when it changes, whoever changed it."""
        names = ",".join(sorted(c.name for c in self.collections()))
        try:
            info = self._find(collection)
            files = self.fingerprint(collection)
        except CollectionNotFound:
            return names
        talks = self.conversations.revision(info.id)
        return f"{names}|{files}|{talks}|{self.following.get(collection).changed_at}"

    def start(self) -> None:
        """Start the background work a long-running knowledge base does: following folders."""
        self.following.start()

    def warm(self, collection: str) -> None:
        """Load what a search needs into memory now, not at the first search: the embedding model,
        and the collection's vector index (at a million passages, seconds of Chroma reading its
        index from disk) and keyword index. A collection that does not exist warms the model alone."""
        try:
            self.embedder.embed_query("warm up")
            self.search("warm up", collection, limit=1)
        except KnowledgeBaseError as exc:  # the first real search says it to the user
            log.info("warming %s stopped: %s", collection, exc)

    def close(self) -> None:
        """Stop following folders, end the model's process, close the cache, the indexes and the store."""
        self.following.stop()
        if self.model is not None:
            self.model.close()
        if self.cache is not None:
            self.cache.close()
        self.opened.close()
        self.store.close()

    # -- conversations ----------------------------------------------------------------------

    def with_conversations(self, conversations: ConversationStore) -> KnowledgeBase:
        """This knowledge base, sharing everything (store, indexes, locks, model, cache) but
        keeping its conversations in ``conversations``: one person's on a team server."""
        view = copy.copy(self)
        view.conversations = conversations
        return view

    @offered(Access.READER)
    def list_conversations(self, collection: str) -> list[Conversation]:
        """The collection's conversations, most recent first."""
        return self.conversations.list(self._find(collection).id)

    @offered(Access.READER)
    def get_conversation(self, collection: str, conversation_id: str) -> Conversation:
        return self.conversations.get(self._find(collection).id, conversation_id)

    @offered(Access.READER, audited=True)
    def new_conversation(self, collection: str, title: str = "") -> Conversation:
        return self.conversations.create(self._find(collection).id, title)

    @offered(Access.READER)
    def rename_conversation(self, collection: str, conversation_id: str, title: str) -> Conversation:
        return self.conversations.rename(self._find(collection).id, conversation_id, title)

    @offered(Access.READER, audited=True)
    def delete_conversation(self, collection: str, conversation_id: str) -> None:
        self.conversations.delete(self._find(collection).id, conversation_id)

    @offered(Access.READER)
    def export_conversation(self, collection: str, conversation_id: str) -> str:
        """The conversation as Markdown."""
        return self.conversations.export_markdown(self._find(collection).id, conversation_id)
