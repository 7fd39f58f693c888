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
    │   ├── EngineCrashed(exit_code)            the engine process died (segfault, abort, killed)
    │   └── RemoteError(reason)                 inference server: refused, 401, 429, 5xx, time-out
    └── DownloadError(url, reason)
        ├── DownloadCancelled
        ├── ChecksumMismatch(path, expected, actual)
        ├── UnverifiedDownload(url)             no pinned checksum, and the user did not accept that
        └── NotEnoughDisk(path, needed, free)

Each error's ``str()`` is a plain sentence a user can act on. Every error pickles with its
fields intact, so it crosses a process boundary as the same typed error.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any


def _rebuild(cls: type[ArchivistError], args: tuple[Any, ...], state: dict[str, Any]) -> ArchivistError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ArchivistError(Exception):
    """Base of every error Archivist raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take their fields, not the message, in __init__: rebuild without calling it.
        return _rebuild, (type(self), self.args, dict(self.__dict__))


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


class EngineCrashed(EngineError):
    """The engine's process ended in the middle of a job; ``exit_code`` < 0 is the signal."""

    def __init__(self, exit_code: int | None) -> None:
        self.exit_code = exit_code
        super().__init__(f"The model stopped unexpectedly ({describe_exit(exit_code)}); it will restart for the next question.")


def describe_exit(exit_code: int | None) -> str:
    """How a process ended, in words: ``signal 11, SIGSEGV`` or ``exit code 1``."""
    if exit_code is not None and exit_code < 0:
        try:
            return f"signal {-exit_code}, {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"signal {-exit_code}"
    return f"exit code {exit_code}"


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


class UnverifiedDownload(DownloadError):
    def __init__(self, url: str) -> None:
        super().__init__(
            url, "Archivist has no published checksum to check this file against, so it cannot prove the file is the "
                 "one its authors released. It was not downloaded; accept the warning to download it anyway"
        )


class NotEnoughDisk(DownloadError):
    def __init__(self, url: str, needed: int, free: int) -> None:
        self.needed = needed
        self.free = free
        super().__init__(
            url, f"it needs {needed / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free"
        )
