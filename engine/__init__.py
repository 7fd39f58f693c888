"""The language model behind Archivist: load, prompt, generate, structure, unload.

Knows nothing of documents or Qt. Everything a caller needs is exported here; the
modules behind it (llama.cpp, harmony) stay private to the package.
"""

from engine.cancel import CancelToken
from engine.catalog import CATALOG, STARTER_NAME, STARTER_NOTE, CatalogModel, starter_model_path
from engine.errors import (
    ArchivistError,
    ChecksumMismatch,
    ContextTooLong,
    DownloadCancelled,
    DownloadError,
    EngineCrashed,
    EngineError,
    GenerationCancelled,
    GenerationFailed,
    ModelInvalid,
    ModelNotFound,
    ModelTooLarge,
    NotEnoughDisk,
    RemoteError,
    SchemaInvalid,
    UnverifiedDownload,
)
from engine.gguf_info import check_adapter
from engine.interface import (
    AnswerDelta,
    ChatMessage,
    Collected,
    Done,
    EngineEvent,
    Failed,
    GenerationRequest,
    LanguageModel,
    Loading,
    ModelState,
    ModelStatus,
    Reading,
    ReasoningDelta,
    Timings,
    Usage,
    collect,
)
from engine.llama import LlamaEngine, LlamaSettings
from engine.process import ProcessEngine
from engine.remote import RemoteEngine
from engine.schema import check as check_schema
from engine.schema import validate as validate_json

__all__ = [
    "CATALOG", "STARTER_NAME", "STARTER_NOTE", "AnswerDelta", "ArchivistError", "CancelToken", "CatalogModel",
    "ChatMessage", "ChecksumMismatch", "Collected", "ContextTooLong", "Done", "DownloadCancelled", "DownloadError",
    "EngineCrashed", "EngineError", "EngineEvent", "Failed", "GenerationCancelled", "GenerationFailed",
    "GenerationRequest", "LanguageModel", "LlamaEngine", "LlamaSettings", "Loading", "ModelInvalid", "ModelNotFound",
    "ModelState", "ModelStatus", "ModelTooLarge", "NotEnoughDisk", "ProcessEngine", "Reading", "ReasoningDelta", "RemoteEngine", "RemoteError", "SchemaInvalid", "UnverifiedDownload",
    "Timings", "Usage", "check_adapter", "check_schema", "collect", "starter_model_path", "validate_json",
]
