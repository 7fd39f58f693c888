"""Which files an ingest reads: folders expanded into the documents under them, and each
file's content digest (what tells a changed file from an unchanged one). Light on purpose:
the team server and the HTTP client use it without the indexing pipeline."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from engine.cancel import CancelToken
from rag.indexing import loaders

_HASH_BLOCK = 1 << 20


def content_hash(path: Path, cancel: CancelToken | None = None) -> str:
    """A digest of the file's bytes, read in blocks (never the whole file at once)."""
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            if cancel is not None and cancel.cancelled:
                break
    return digest.hexdigest()


def within(file: Path, folder: Path) -> bool:
    """Whether ``file`` lies inside ``folder`` (resolved) once symbolic links are followed."""
    try:
        return file.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a loop of links
        return False


def discover(paths: Iterable[Path], confine: bool = False) -> tuple[list[Path], list[Path], int]:
    """Expand folders (recursively, hidden entries skipped) into files.

    Returns ``(files, folders, skipped)``: files named directly are kept whatever their
    type, so an unsupported one is reported; files found in folders are kept only when a
    loader exists for them and, with ``confine``, when they lie inside the folder (a
    symbolic link out of it is skipped: a folder a server offers must not lead to the rest
    of its disk), the rest counted as skipped.
    """
    files: list[Path] = []
    folders: list[Path] = []
    skipped = 0
    seen: set[Path] = set()
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_dir():
            folders.append(path)
            inside = path.resolve() if confine else None
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    file = Path(root) / name
                    if not loaders.is_supported(file) or (inside is not None and not within(file, inside)):
                        skipped += 1
                    elif file not in seen:
                        seen.add(file)
                        files.append(file)
        elif path not in seen:
            seen.add(path)
            files.append(path)
    return files, folders, skipped
