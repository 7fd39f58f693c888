"""Errors of the knowledge base, under the one ``ArchivistError`` root.

::

    ArchivistError                       (engine.errors)
    └── KnowledgeBaseError
        ├── CollectionNotFound(name)
        ├── CollectionExists(name)
        ├── EmbedderMismatch(collection, built_with, requested)
        ├── EmbedderNotFound(path)
        ├── StoreUnavailable(reason)     Chroma down, disk full, data folder unreadable
        ├── IngestCancelled
        ├── ReembedCancelled             the old vectors stay in use
        ├── ServiceError(reason)         the knowledge-base service failed (a bug; details in its log)
        ├── ServiceStopped(exit_code)    the knowledge-base process died; it is restarted
        ├── NotSignedIn(reason)          a team server wants a valid token (HTTP 401)
        ├── AccessDenied(reason)         a team server refused: the user lacks the right (HTTP 403)
        ├── BadCall(reason)              a call whose arguments do not fit its signature or bounds (HTTP 400)
        ├── TooBusy(reason)              a team server's limit on calls at once was reached (HTTP 429)
        └── DocumentError(path, reason)  one file that cannot be indexed
            ├── DocumentEncrypted
            ├── DocumentEmpty
            ├── DocumentCorrupt
            ├── DocumentUnsupported
            └── DocumentUnreadable

Each error crosses every transport (pickle, and ``rag.service.codec``'s JSON) with its fields.
A ``DocumentError`` never stops a batch: ingestion records it against the file and goes on.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ArchivistError, describe_exit


class KnowledgeBaseError(ArchivistError):
    """The knowledge base could not do what was asked."""


class CollectionNotFound(KnowledgeBaseError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"There is no collection named {name!r}.")


class CollectionExists(KnowledgeBaseError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"A collection named {name!r} already exists.")


class EmbedderMismatch(KnowledgeBaseError):
    def __init__(self, collection: str, built_with: str, requested: str) -> None:
        self.collection = collection
        self.built_with = built_with
        self.requested = requested
        super().__init__(
            f"Collection {collection!r} was built with the embedding model {built_with!r}, "
            f"not {requested!r}; re-embed it with the new model first (archivist-cli reembed -c NAME)."
        )


class EmbedderNotFound(KnowledgeBaseError):
    def __init__(self, path: Path | str, reason: str = "no sentence-transformers model there") -> None:
        self.path = Path(path)
        super().__init__(f"Cannot load the embedding model at {self.path}: {reason}.")


class StoreUnavailable(KnowledgeBaseError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The vector store is unavailable: {reason}")


class IngestCancelled(KnowledgeBaseError):
    def __init__(self) -> None:
        super().__init__("Indexing was cancelled; files already indexed are kept.")


class ReembedCancelled(KnowledgeBaseError):
    def __init__(self, collection: str) -> None:
        super().__init__(f"Re-embedding {collection!r} was stopped; it keeps its old vectors.")


class ServiceError(KnowledgeBaseError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The knowledge base failed: {reason}. Details are in the log file.")


class ServiceStopped(KnowledgeBaseError):
    def __init__(self, exit_code: int | None) -> None:
        self.exit_code = exit_code
        super().__init__(
            f"The knowledge-base process stopped unexpectedly ({describe_exit(exit_code)}); it is being restarted. "
            "Everything already indexed is kept; work that was running must be started again."
        )


class NotSignedIn(KnowledgeBaseError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The team server did not accept your sign-in: {reason}")


class AccessDenied(KnowledgeBaseError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Not allowed: {reason}")


class BadCall(KnowledgeBaseError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The knowledge base cannot take this call: {reason}")


class TooBusy(KnowledgeBaseError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The team server is busy: {reason}")


class DocumentError(KnowledgeBaseError):
    """One file could not be indexed; ``reason`` is the plain-words cause."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class DocumentEncrypted(DocumentError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path, "password-protected, skipped")


class DocumentEmpty(DocumentError):
    def __init__(self, path: Path | str, reason: str = "no text found") -> None:
        super().__init__(path, reason)


class DocumentCorrupt(DocumentError):
    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(path, f"damaged or not a valid file ({detail})")
        self.detail = detail


class DocumentTooLarge(DocumentError):
    """Refused before reading: reading it would take more memory than a desktop can spare."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(path, f"too large ({detail})")


class DocumentUnsupported(DocumentError):
    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(path, detail)


class DocumentUnreadable(DocumentError):
    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(path, f"cannot be read ({detail})")
