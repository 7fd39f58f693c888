"""Where a user's uploaded files are kept on the server, and the names each user sees for them.

A desktop sends the files it indexes; each is kept under ``home/uploads/<user id>/`` at the path
it has on the user's machine (``C:\\Reports\\q3.pdf`` becomes ``<user id>/C:/Reports/q3.pdf`` on a
POSIX server and ``<user id>\\C$\\Reports\\q3.pdf`` on a Windows one, ``/home/ann/q3.pdf`` becomes
``<user id>/home/ann/q3.pdf``). The uploader sees their own name for
it; everyone else sees ``/uploads/<user id>/...``, never the server's own folders. Every name is
checked part by part, so no path a client sends can reach outside its user's folder, on a POSIX
or a Windows server.

The uploads folder is ``home/uploads``, or ``[server] uploads_folder``: a share (NFS, SMB) that every
replica mounts at the same path. A copy is written whole or not at all (:meth:`Uploads.writing`):
into a temporary file of its own in the same folder, flushed to disk, then renamed over the copy's
name, so a reader on any replica sees the old copy or the new one, never part of one, and two
replicas writing one copy at once leave one of the two whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from rag.errors import AccessDenied

PARTIAL = ".upload-"  # how the name of a copy being written starts
SHOWN_ROOT = PurePosixPath("/uploads")  # how other users see an upload
_DRIVE = re.compile(r"^([A-Za-z]):$")
_KEPT_DRIVE = re.compile(r"^([A-Za-z])\$$")  # a drive letter as kept on the server: "C$"
# Characters no part of a kept path may hold: NUL and other controls; on Windows also a colon,
# which would name a drive or an alternate data stream.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_FORBIDDEN_WINDOWS = re.compile(r"[\x00-\x1f\x7f:*?\"<>|]|^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$", re.IGNORECASE)


def user_id(name: str) -> str:
    """The folder name of ``name``'s uploads and conversations."""
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def parts_of(client_path: str, windows: bool = os.name == "nt") -> list[str]:
    """The parts of a path as the user's machine names it, each safe as one folder or file name on
    the server (a Windows one when ``windows``); ``AccessDenied`` for a path that is not one (NUL,
    controls, ``..``; on Windows a colon but the drive's)."""
    if len(client_path) > 4096:
        raise AccessDenied("a file's path is over 4,096 characters.")
    pieces = [p for p in re.split(r"[/\\]", client_path) if p not in ("", ".")]
    if not pieces:
        raise AccessDenied("an upload needs a file name.")
    kept: list[str] = []
    for number, piece in enumerate(pieces):
        if number == 0 and windows and (drive := _DRIVE.match(piece)):
            kept.append(drive.group(1).upper() + "$")  # "C:" joined to a Windows path would be a drive
            continue
        bad = (_FORBIDDEN_WINDOWS if windows else _FORBIDDEN).search(piece)
        if piece.strip(" .") == "" or bad or len(piece.encode("utf-8", "surrogatepass")) > 255:
            raise AccessDenied(f"{client_path!r} is not a file's path this server can keep.")
        kept.append(piece)
    return kept


class Uploads:
    """The uploads folder: ``root``, else the server's home's ``uploads``. ``replica`` names this
    replica in the names of the files it is writing (the host's name and the process's id when "")."""

    def __init__(self, home: Path, windows: bool = os.name == "nt", root: Path | None = None,
                 replica: str = "") -> None:
        self.root = root if root is not None else home / "uploads"
        self._writer = replica or f"{socket.gethostname().split('.')[0]}.{os.getpid()}"
        self._windows = windows
        self._flavour: type[PurePath] = PureWindowsPath if windows else PurePosixPath

    def folder(self, user: str) -> Path:
        """Where ``user``'s uploads are kept."""
        return self.root / user_id(user)

    def copy_of(self, user: str, client_path: str) -> Path:
        """Where ``user``'s file ``client_path`` (as their machine names it) is kept on the server."""
        folder = self.folder(user)
        target = folder.joinpath(*parts_of(client_path, self._windows))
        # The parts are checked above; this states the promise in the server's own path rules too.
        pure_root, pure_target = self._flavour(str(folder)), self._flavour(str(target))
        if not pure_target.is_relative_to(pure_root) or ".." in pure_target.parts:
            raise AccessDenied(f"{client_path!r} is not a file's path this server can keep.")
        return target

    def shown(self, user: str, path: Path) -> Path:
        """The name ``user`` sees for ``path``: their own name for their uploads, ``/uploads/...``
        for someone else's, the path itself for anything else (a file in an offered folder)."""
        if not path.is_relative_to(self.root):
            return path
        relative = path.relative_to(self.root).parts
        if relative[:1] != (user_id(user),):
            return Path(SHOWN_ROOT, *relative)
        parts = relative[1:]
        if parts and (drive := _KEPT_DRIVE.match(parts[0])):
            return Path(drive.group(1) + ":\\" + "\\".join(parts[1:]))
        if parts and parts[0].endswith(":"):  # kept by an earlier version, before drives became "C$"
            return Path(parts[0] + "\\" + "\\".join(parts[1:]))
        return Path("/" + "/".join(parts))

    def meant(self, user: str, path: Path) -> Path:
        """The server's file a path ``user`` sent stands for: their upload of it when there is one,
        the upload it names under ``/uploads/``, else the path itself (checked elsewhere)."""
        text = str(path)
        if PurePosixPath(path.as_posix()).is_relative_to(SHOWN_ROOT):
            relative = PurePosixPath(path.as_posix()).relative_to(SHOWN_ROOT).parts
            if not relative or not re.fullmatch(r"[0-9a-f]{16}", relative[0]):
                raise AccessDenied(f"{text!r} names no upload.")
            return self.root.joinpath(relative[0], *parts_of("/".join(relative[1:]), self._windows))
        try:
            copy = self.copy_of(user, text)
            return copy if copy.exists() else path
        except (AccessDenied, OSError):  # not a name this server could keep: no upload of it
            return path

    @contextlib.contextmanager
    def writing(self, target: Path) -> Iterator[BinaryIO]:
        """A file to write ``target``'s new content into. When the block ends without an error it
        becomes ``target``, whole (flushed to disk, then renamed over it); on an error it is deleted
        and ``target`` stays as it was. ``OSError`` for a full disk or a name the folder cannot hold."""
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own, whichever replica (on whichever machine) writes the same copy at the same time.
        partial = target.with_name(f"{PARTIAL}{self._writer}-{secrets.token_hex(8)}")
        # The server's account's alone, whatever the umask; closed below, before the rename, whatever happens.
        out = os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600), "wb")
        try:
            try:
                yield out
                out.flush()
                os.fsync(out.fileno())
            finally:
                out.close()
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (the rename) to disk where the system can; Windows and some shares cannot."""
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
