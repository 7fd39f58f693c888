"""The knowledge base: documents -> chunks -> vectors -> answers.

``KnowledgeBase`` is the one facade; ``KnowledgeBaseClient`` reaches one in another process
or on another machine with the same methods. Everything a client needs to read what they
return (messages, results, errors) is exported here, so that a client imports nothing below.
"""

from __future__ import annotations

from engine import (
    CATALOG,
    STARTER_NAME,
    AnswerDelta,
    ArchivistError,
    CancelToken,
    CatalogModel,
    Loading,
    ModelState,
    ModelStatus,
    ReasoningDelta,
    SchemaInvalid,
)
from engine.catalog import installed_model
from engine.download import DownloadProgress
from rag.answer_cache import CacheStats
from rag.ask import AnswerResult, Answered, AskEvent, AskFailed, AskOptions, Retrieved
from rag.checkup import TOP, CheckQuestion, CheckupReport, CheckupState, CheckRun
from rag.citations import Citation, link_marks
from rag.claims import Claim, Quote
from rag.conversations import Conversation, Turn
from rag.documents import Passage, display_path
from rag.errors import AccessDenied, EmbedderMismatch, KnowledgeBaseError, NotSignedIn, ServiceError, ServiceStopped
from rag.extract import ExtractionProgress, extract_to
from rag.field_sources import FieldSource
from rag.following import Followed
from rag.ingest import FileOutcome, IngestProgress, IngestReport
from rag.knowledge_base import CollectionStatus, KnowledgeBase, StepProgress
from rag.schemas import NamedSchema
from rag.schemas import parse as parse_schema
from rag.schemas import shipped as shipped_schemas
from rag.service import KnowledgeBaseClient
from rag.sources import Source
from rag.store import CollectionInfo, FileRecord

__all__ = [
    "AccessDenied",
    "CATALOG",
    "STARTER_NAME",
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
    "ExtractionProgress",
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
    "display_path",
    "extract_to",
    "installed_model",
    "link_marks",
    "parse_schema",
    "shipped_schemas",
]
