"""Logging to a rotating file in the user's log folder (and to stderr when asked), and crash reports beside it."""

from __future__ import annotations

import logging
import logging.handlers
import warnings
from pathlib import Path

from engine import crash_log


def crash_reports(log_dir: Path) -> list[Path]:
    """Crash reports no one has been told of yet, moved to ``log_dir/crashes/``."""
    return crash_log.collect(log_dir)


def configure(log_dir: Path, verbose: bool = False, process: str = "", label: str = "") -> Path:
    """Send Archivist's log records to ``log_dir/archivist.log`` (rotated at 2 MB, 5 kept), and
    this ``process``'s fatal tracebacks (native ones too) to ``log_dir/crash-<process>.log``.
    Every line carries ``label`` when given (a server replica's name), so that lines gathered from
    several processes still say which one wrote them."""
    log_dir.mkdir(parents=True, exist_ok=True)
    if process:
        crash_log.enable(log_dir, process)
    file = log_dir / "archivist.log"
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if any(getattr(h, "baseFilename", None) == str(file.absolute()) for h in root.handlers):
        return file
    tag = label.replace("%", "%%") + " " if label else ""
    handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter(f"%(asctime)s {tag}%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(f"{tag}%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    logging.captureWarnings(True)
    warnings.filterwarnings("default")
    # Libraries that narrate every request at INFO would drown our own records.
    for noisy in ("httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3", "pypdf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return file
