"""Errors raised by Archivist, rooted in one base class.

The tree (rag adds its own branch under ArchivistError in ``rag.errors``)::

    ArchivistError
    ├── EngineError
    │   ├── ModelNotFound(path)
    │   ├── ModelInvalid(path, reason)          not a GGUF, truncated, unknown architecture
    │   ├── ModelTooLarge(path, needed, available)
    │   ├── ContextTooLong(tokens, limit)
    │   ├── SchemaInvalid(reason)
    │   ├── GenerationCancelled
    │   ├── GenerationFailed(reason)
    │   └── RemoteError(reason)                 inference server: refused, 401, 429, 5xx, time-out
    └── DownloadError(url, reason)
        ├── DownloadCancelled
        ├── ChecksumMismatch(path, expected, actual)
        └── NotEnoughDisk(path, needed, free)

Each error's ``str()`` is a plain sentence a user can act on.
"""

from __future__ import annotations

from pathlib import Path


class ArchivistError(Exception):
    """Base of every error Archivist raises on purpose."""


class EngineError(ArchivistError):
    """The language model could not do what was asked."""


class ModelNotFound(EngineError):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(f"Model file not found: {self.path}. Choose a GGUF file in Settings.")


class ModelInvalid(EngineError):
    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot use {self.path.name} as a model: {reason}.")


class ModelTooLarge(EngineError):
    def __init__(self, path: Path | str, needed: int, available: int) -> None:
        self.path = Path(path)
        self.needed = needed
        self.available = available
        super().__init__(
            f"{self.path.name} needs about {needed / 2**30:.1f} GiB of memory but only "
            f"{available / 2**30:.1f} GiB is free. Close other programs, lower the context "
            "size, or choose a smaller model."
        )


class ContextTooLong(EngineError):
    def __init__(self, tokens: int, limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        super().__init__(
            f"The prompt has {tokens} tokens but the model's context holds {limit}. "
            "Ask about fewer documents or raise the context size."
        )


class SchemaInvalid(EngineError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The JSON schema cannot be used: {reason}")


class GenerationCancelled(EngineError):
    def __init__(self) -> None:
        super().__init__("Generation was stopped.")


class GenerationFailed(EngineError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The model failed: {reason}")


class RemoteError(EngineError):
    def __init__(self, reason: str, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class DownloadError(ArchivistError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Download of {url} failed: {reason}")


class DownloadCancelled(DownloadError):
    def __init__(self, url: str) -> None:
        super().__init__(url, "cancelled; it resumes where it stopped next time")


class ChecksumMismatch(DownloadError):
    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(url, f"the file's sha256 is {actual}, expected {expected}; it was deleted")


class NotEnoughDisk(DownloadError):
    def __init__(self, url: str, needed: int, free: int) -> None:
        self.needed = needed
        self.free = free
        super().__init__(
            url, f"it needs {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free"
        )
