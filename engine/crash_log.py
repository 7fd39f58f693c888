"""Crash reports: every Archivist process writes its fatal tracebacks to the log folder.

``enable`` points faulthandler (native crashes: segfault, abort, illegal instruction, with
every thread's Python stack) and the hook for uncaught Python exceptions at
``crash-<process>.log``. A file that is not empty holds a crash nobody has been told of
yet; ``collect`` moves such reports aside and returns them, so the window can say once, at
its next start, that something went wrong and where the details are.
"""

from __future__ import annotations

import datetime as dt
import faulthandler
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import TextIO

log = logging.getLogger(__name__)

_PREFIX = "crash-"
_open: list[TextIO] = []  # faulthandler writes to the file descriptor: keep it open for the process's life


def enable(log_dir: Path, process: str) -> Path:
    """Write this process's native and Python crash tracebacks to ``log_dir/crash-<process>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{_PREFIX}{process}.log"
    file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open on purpose, see _open
    _open.append(file)
    faulthandler.enable(file, all_threads=True)

    def header() -> None:
        file.write(f"\n== {process} (pid {os.getpid()}) crashed at {dt.datetime.now().isoformat(timespec='seconds')}\n")

    previous_hook = sys.excepthook

    def python_crash(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            header()
            file.write("".join(traceback.format_exception(kind, value, tb)))
            file.flush()
        previous_hook(kind, value, tb)

    def thread_crash(args: threading.ExceptHookArgs) -> None:
        log.error("uncaught exception in thread %s", args.thread.name if args.thread else "?",
                  exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = python_crash
    threading.excepthook = thread_crash
    return path


def collect(log_dir: Path) -> list[Path]:
    """Crash reports written since the last call, moved to ``log_dir/crashes/`` (oldest first)."""
    reports: list[Path] = []
    if not log_dir.is_dir():
        return reports
    for path in sorted(log_dir.glob(f"{_PREFIX}*.log")):
        try:
            if path.stat().st_size == 0:
                continue
            stamp = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
            target = log_dir / "crashes" / f"{path.stem}-{stamp}.log"
            target.parent.mkdir(exist_ok=True)
            path.replace(target)
        except OSError as exc:
            log.warning("cannot move crash report %s aside: %s", path, exc)
            continue
        reports.append(target)
    return reports
