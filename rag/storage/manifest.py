"""A collection's manifest: one row per file, saying how far its indexing got.

The manifest is the record of what is done: a file counts as indexed only once its row says
``INDEXED``, and that row is written after its last chunk (``rag.storage.collection`` keeps the
rows, ``rag.indexing.ingest`` the order of writes).

Every row is stamped, when written, with its writer's clock time (``CHANGED``), so that a
process whose keyword index follows the store reads only the rows written since it last
synced (``rag.storage.open_collections.sync_keyword``). A removed file's row stays a while as
a tombstone (``REMOVED``), stamped too, so that such a read learns of removals as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.documents import text_to_path

PENDING, INDEXED, FAILED = "pending", "indexed", "failed"
# Read, and searchable by keyword where it was read, while its vectors are being made.
WORDS = "words"
# A removed file's row: no file, only the news that it went (see ``StoredCollection.drop_file``).
REMOVED = "removed"
# The metadata field holding the time a row was written (seconds since the epoch, the writer's clock).
CHANGED = "changed"


@dataclass(slots=True)
class FileRecord:
    """One file's row in a collection's manifest."""

    key: str
    path: Path
    status: str
    content_hash: str = ""
    reason: str = ""
    pages: int = 0
    chunks: int = 0
    size: int = 0
    indexed_at: float = 0.0
    warnings: list[str] = field(default_factory=list)
    path_text: str = ""
    recognized: int = 0  # pages whose text was recognized from their image

    def metadata(self) -> dict[str, Any]:
        return {
            "path": self.path_text,
            "status": self.status,
            "hash": self.content_hash,
            "reason": self.reason,
            "pages": self.pages,
            "chunks": self.chunks,
            "size": self.size,
            "indexed_at": self.indexed_at,
            "warnings": json.dumps(self.warnings, ensure_ascii=False),
            "recognized": self.recognized,
        }

    @classmethod
    def from_metadata(cls, key: str, meta: dict[str, Any]) -> FileRecord:
        return cls(
            key=key,
            path=text_to_path(meta["path"]),
            path_text=meta["path"],
            status=meta["status"],
            content_hash=meta.get("hash", ""),
            reason=meta.get("reason", ""),
            pages=int(meta.get("pages", 0)),
            chunks=int(meta.get("chunks", 0)),
            size=int(meta.get("size", 0)),
            indexed_at=float(meta.get("indexed_at", 0.0)),
            warnings=json.loads(meta.get("warnings") or "[]"),
            recognized=int(meta.get("recognized", 0)),
        )
