"""Where Chroma's, SQLite's, the network's and the disk's errors become ``StoreUnavailable``: one place."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from rag.errors import CollectionExists, CollectionNotFound, StoreUnavailable


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn Chroma, SQLite, network and disk errors into ``StoreUnavailable``, in one place."""
    from chromadb.errors import ChromaError

    try:
        yield
    except (CollectionNotFound, CollectionExists):
        raise
    except (ChromaError, sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"{action} failed: {_plain(exc)}") from exc
    except Exception as exc:
        # httpx, the Rust core's bindings and friends raise their own types; name them plainly.
        if type(exc).__module__.split(".")[0] in {"httpx", "httpcore", "chromadb", "chromadb_rust_bindings"}:
            raise StoreUnavailable(f"{action} failed: {_plain(exc)}") from exc
        raise


def _plain(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "disk is full" in lowered or "no space left" in lowered:
        return "the disk is full; free some space and try again"
    if "connect" in lowered and ("refused" in lowered or "error" in lowered):
        return f"cannot reach the Chroma server ({text})"
    return text
