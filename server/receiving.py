"""Receiving a user's files for ingesting: which of them the server lacks or holds older copies of
(``/v1/uploads``, which also deletes the copies of files gone from the folders the user names),
and keeping one the user sends (``/v1/upload``). Where the copies are kept, and how one is written
whole, is ``server.uploads``'s.
"""

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import Executor
from pathlib import Path
from stat import S_ISREG

from fastapi import Request

from rag.errors import AccessDenied, BadCall, StoreUnavailable
from rag.indexing.discovery import content_hash
from server.accounts import User
from server.config import ServerConfig
from server.incoming import address_of, json_body, same_site
from server.policy import Policy
from server.refusals import Refusal, Refusals
from server.slots import Slots
from server.uploads import PARTIAL, Uploads

log = logging.getLogger(__name__)

_MAX_FILES = 100_000  # names in one question of which files the server lacks


class Receiver:
    """Takes in the files users send for the collections they may edit (or make)."""

    def __init__(self, uploads: Uploads, policy: Policy, refusals: Refusals, slots: Slots, workers: Executor,
                 config: ServerConfig) -> None:
        self._uploads = uploads
        self._policy = policy
        self._refusals = refusals
        self._slots = slots
        self._workers = workers
        self._config = config
        self._hashes = _Hashes()

    async def needed(self, request: Request, user: User) -> dict[str, list[str]]:
        """Which of the user's files (path on their machine: content hash) the server lacks; the
        copies of files gone from the folders they name are deleted."""
        body = await json_body(request, self._config.max_body_kb * 64)  # a folder of a hundred thousand files
        collection, files, folders = body.get("collection"), body.get("files", {}), body.get("folders", [])
        if not isinstance(collection, str) or not _strings(files, _MAX_FILES) or not _strings(folders, _MAX_FILES):
            raise BadCall(f"uploads: collection is a string, files an object of at most {_MAX_FILES:,} names and "
                          f"hashes, folders a list of at most {_MAX_FILES:,} names")
        await self._may_upload(user, collection, request)
        copies = {}
        for name in files:  # type: ignore[union-attr]
            with contextlib.suppress(AccessDenied):  # a name this server cannot keep: not asked for, reported by the ingest
                copies[name] = self._uploads.copy_of(user.name, name)
        if len(set(copies.values())) < len(copies):
            raise BadCall("uploads: two of the names are one file")
        self._slots.take(user)  # hashing is work: it counts among the user's calls
        try:
            needed = await asyncio.get_running_loop().run_in_executor(
                self._workers, self._compare, user, copies, dict(files), list(folders))  # type: ignore[arg-type]
        finally:
            self._slots.give_back(user)
        return {"needed": needed}

    async def keep(self, request: Request, user: User, collection: str, path: str) -> dict[str, bool]:
        """Keep a file of the user's machine (``path``, as it names it) for ingesting into ``collection``."""
        same_site(request)
        await self._may_upload(user, collection, request)
        target = self._uploads.copy_of(user.name, path)
        limit, size = self._config.max_upload_mb * 2**20, 0
        try:
            with self._uploads.writing(target) as out:  # whole or not at all, whichever replica reads it
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise Refusal(413, BadCall(f"{target.name} is over this server's upload limit of "
                                                   f"{self._config.max_upload_mb} MB"))
                    out.write(chunk)
        except OSError as exc:  # a full disk, or a name this file system cannot hold
            raise Refusal(507, StoreUnavailable(f"the server cannot keep {target.name}: {exc.strerror}")) from None
        return {"kept": True}

    async def _may_upload(self, user: User, collection: str, request: Request) -> None:
        """``AccessDenied`` unless ``user`` may send files for ``collection``; a refusal is on the audit log."""
        try:
            await asyncio.to_thread(self._policy.may_upload, user, collection)
        except AccessDenied as exc:
            self._refusals.refuse(user, "upload", collection, exc.reason, address_of(request))
            raise

    def _compare(self, user: User, copies: dict[str, Path], files: dict[str, str], folders: list[str]) -> list[str]:
        """On a worker thread: the names whose copies are missing or differ from the user's hashes,
        once the copies of files gone from ``folders`` are deleted."""
        kept = set(copies.values())
        for folder in folders:
            try:
                for copy in self._uploads.copy_of(user.name, folder).rglob("*"):
                    if copy.is_file() and copy not in kept and not copy.name.startswith(PARTIAL):
                        copy.unlink(missing_ok=True)  # another request of the user's may be at work here too
            except (AccessDenied, OSError) as exc:
                log.info("uploads of %s: left %r as it is (%s)", user.name, folder, exc)
        return [name for name, copy in copies.items() if self._hashes.of(copy) != files[name]]


def _strings(value: object, limit: int) -> bool:
    if isinstance(value, dict):
        return len(value) <= limit and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return isinstance(value, list) and len(value) <= limit and all(isinstance(v, str) for v in value)


class _Hashes:
    """Content hashes of uploaded copies, kept while a copy's size and time stay the same: asking
    which files the server lacks costs a file's hashing once, not once per question."""

    def __init__(self, keep: int = 100_000) -> None:
        self._known: dict[Path, tuple[int, int, str]] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def of(self, path: Path) -> str:
        """The copy's content hash, or "" when there is no such file."""
        try:
            stat = path.stat()
        except OSError:
            return ""
        if not S_ISREG(stat.st_mode):
            return ""
        with self._lock:
            known = self._known.get(path)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        try:
            digest = content_hash(path)
        except OSError:  # gone or unreadable since: the client sends it again
            return ""
        with self._lock:
            if len(self._known) >= self._keep:
                self._known.clear()
            self._known[path] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest
