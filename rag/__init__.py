"""The knowledge base: documents -> chunks -> vectors -> answers.

``KnowledgeBase`` is the one facade; ``KnowledgeBaseClient`` reaches one in another process
or on another machine with the same methods. Everything a client needs to read what they
return (messages, results, errors) is exported here, so that a client imports nothing below.
"""

from __future__ import annotations

from engine import (
    CATALOG,
    AnswerDelta,
    ArchivistError,
    CancelToken,
    CatalogModel,
    Loading,
    ModelState,
    ModelStatus,
    Reading,
    ReasoningDelta,
    SchemaInvalid,
)
from engine.catalog import installed_model
from engine.download import DownloadProgress
from rag.answering.answer_cache import CacheStats
from rag.answering.ask import Answered, AnswerResult, AskEvent, AskFailed, AskOptions, Retrieved, collect_answer
from rag.answering.checkup import TOP, CheckQuestion, CheckRun, CheckupReport, CheckupState
from rag.answering.citations import Citation, link_marks
from rag.answering.claims import Claim, Quote
from rag.answering.conversations import Conversation, Turn
from rag.answering.field_sources import FieldSource
from rag.answering.schemas import NamedSchema
from rag.answering.schemas import parse as parse_schema
from rag.answering.schemas import shipped as shipped_schemas
from rag.answering.sources import Source
from rag.documents import Passage, display_path
from rag.errors import AccessDenied, EmbedderMismatch, KnowledgeBaseError, NotSignedIn, ServiceError, ServiceStopped
from rag.indexing.following import Followed
from rag.indexing.ingest import FileOutcome, IngestProgress, IngestReport
from rag.knowledge_base import CollectionStatus, KnowledgeBase, StepProgress
from rag.service.client import KnowledgeBaseClient
from rag.storage.manifest import FileRecord
from rag.storage.vectors import CollectionInfo

__all__ = [
    "AccessDenied",
    "CATALOG",
    "TOP",
    "AnswerDelta",
    "AnswerResult",
    "Answered",
    "ArchivistError",
    "AskEvent",
    "AskFailed",
    "AskOptions",
    "CacheStats",
    "CancelToken",
    "CatalogModel",
    "CheckQuestion",
    "CheckRun",
    "CheckupReport",
    "CheckupState",
    "Citation",
    "Claim",
    "CollectionInfo",
    "CollectionStatus",
    "Conversation",
    "DownloadProgress",
    "EmbedderMismatch",
    "FieldSource",
    "FileOutcome",
    "FileRecord",
    "Followed",
    "IngestProgress",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeBaseClient",
    "KnowledgeBaseError",
    "Loading",
    "Reading",
    "ModelState",
    "ModelStatus",
    "NamedSchema",
    "Passage",
    "Quote",
    "ReasoningDelta",
    "Retrieved",
    "SchemaInvalid",
    "ServiceError",
    "NotSignedIn",
    "ServiceStopped",
    "Source",
    "StepProgress",
    "Turn",
    "collect_answer",
    "display_path",
    "installed_model",
    "link_marks",
    "parse_schema",
    "shipped_schemas",
]
