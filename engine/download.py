"""Resumable, verified downloads of model files.

A transfer writes ``NAME.part`` beside the target, with ``NAME.part.json`` recording the
address, size and expected sha256; an interrupted download resumes with an HTTP Range
request. Only a file whose sha256 matches is renamed to ``NAME``, so a partial or corrupt
file is never mistaken for a model. The expected sha256 is a pinned value (the catalog's,
from the model card). Without a pin the download is refused unless the user accepts an
unverified file explicitly; it is then checked against the sha256 the server publishes
(the Hugging Face hub sends an LFS file's sha256 as ``X-Linked-ETag``), which catches a
damaged transfer but not a replaced file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from engine.cancel import CancelToken
from engine.errors import ChecksumMismatch, DownloadCancelled, DownloadError, NotEnoughDisk, UnverifiedDownload

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

_CHUNK = 1 << 18
_SHA256 = re.compile(r'^(?:W/)?"?([0-9a-f]{64})"?$')
_DISK_MARGIN = 256 << 20


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """How far a download is: bytes, rate (bytes/s, smoothed) and seconds left."""

    url: str
    done: int
    total: int
    rate: float
    eta: float | None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def mirrored(url: str, mirror: str) -> str:
    """The same file on an intranet mirror: the mirror's base plus the original path."""
    if not mirror:
        return url
    return mirror.rstrip("/") + urlsplit(url).path


def _published_sha256(response: httpx.Response) -> str | None:
    for r in [*response.history, response]:
        for header in ("x-linked-etag", "etag"):
            match = _SHA256.match(r.headers.get(header, "").strip())
            if match:
                return match.group(1)
    return None


def _total_size(response: httpx.Response, start: int) -> int | None:
    content_range = response.headers.get("content-range", "")
    if "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    for r in [*response.history, response]:
        if linked := r.headers.get("x-linked-size"):
            return int(linked)
    length = response.headers.get("content-length")
    return int(length) + start if length is not None else None


def download(
    url: str,
    target: Path,
    sha256: str | None = None,
    mirror: str = "",
    progress: Callable[[DownloadProgress], None] | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 30.0,
    client: httpx.Client | None = None,
    accept_unverified: bool = False,
) -> Path:
    """Download ``url`` to ``target``, resuming a previous partial transfer; return ``target``.

    Without a pinned ``sha256`` it raises ``UnverifiedDownload`` before any transfer, unless
    ``accept_unverified`` says the user accepted that risk.
    """
    cancel = cancel or CancelToken()
    source = mirrored(url, mirror)
    if sha256 is None and not accept_unverified:
        raise UnverifiedDownload(source)
    part = target.with_name(target.name + ".part")
    ledger = target.with_name(target.name + ".part.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    recorded = _read_ledger(ledger)
    if recorded.get("url") != source:
        part.unlink(missing_ok=True)
        recorded = {}
    expected = sha256 or recorded.get("sha256")
    start = part.stat().st_size if part.exists() else 0
    digest = hashlib.sha256()
    if start:
        with part.open("rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
    owns_client = client is None
    import httpx  # here, not at the top: the window's process imports this module but never downloads

    client = client or httpx.Client(follow_redirects=True, timeout=timeout)
    try:
        headers = {"Range": f"bytes={start}-"} if start else {}
        with client.stream("GET", source, headers=headers) as response:
            if response.status_code == 416 and start:
                total = start  # the partial file already holds everything
            else:
                if response.status_code >= 400:
                    raise DownloadError(source, f"the server answered {response.status_code} {response.reason_phrase}")
                if start and response.status_code != 206:
                    log.info("server ignored the range request; restarting %s", source)
                    start, digest = 0, hashlib.sha256()
                published = _published_sha256(response)
                if expected and published and published != expected and not sha256:
                    log.info("the file changed on the server; restarting %s", source)
                    start, digest = 0, hashlib.sha256()
                expected = sha256 or published or expected
                total = _total_size(response, start) or 0
                _check_disk(source, target.parent, total - start)
                _write_ledger(ledger, {"url": source, "sha256": expected, "total": total})
                _receive(response, part, start, total, digest, source, progress, cancel)
    except httpx.TimeoutException as exc:
        raise DownloadError(source, "the server stopped answering (timed out); try again to resume") from exc
    except httpx.HTTPError as exc:
        raise DownloadError(source, f"the connection failed ({exc}); try again to resume") from exc
    finally:
        if owns_client:
            client.close()
    actual = digest.hexdigest()
    if expected and actual != expected:
        part.unlink(missing_ok=True)
        ledger.unlink(missing_ok=True)
        raise ChecksumMismatch(source, expected, actual)
    if not expected:
        log.warning("no checksum known for %s; kept unverified (sha256 %s)", source, actual)
    os.replace(part, target)
    ledger.unlink(missing_ok=True)
    return target


def _receive(
    response: httpx.Response, part: Path, start: int, total: int, digest: hashlib._Hash, source: str,
    progress: Callable[[DownloadProgress], None] | None, cancel: CancelToken,
) -> None:
    done = start
    rate = 0.0
    last_time, last_done = 0.0, done
    with part.open("r+b" if start else "wb") as f:
        f.seek(start)
        f.truncate()
        for block in response.iter_bytes(_CHUNK):
            if cancel.cancelled:
                raise DownloadCancelled(source)
            f.write(block)
            digest.update(block)
            done += len(block)
            now = time.monotonic()
            if progress is not None and (now - last_time >= 0.25 or done == total):
                instant = (done - last_done) / max(now - last_time, 1e-6) if last_time else 0.0
                rate = instant if rate == 0 else 0.7 * rate + 0.3 * instant
                eta = (total - done) / rate if rate > 0 and total else None
                progress(DownloadProgress(source, done, total, rate, eta))
                last_time, last_done = now, done
    if total and done < total:
        raise DownloadError(source, f"the transfer stopped after {done:,} of {total:,} bytes; try again to resume")


def _check_disk(source: str, folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed + _DISK_MARGIN > free:
        raise NotEnoughDisk(source, needed, free)


def _read_ledger(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_ledger(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
