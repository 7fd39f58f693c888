"""Logging to a rotating file in the user's log folder (and to stderr when asked)."""

from __future__ import annotations

import logging
import logging.handlers
import warnings
from pathlib import Path


def configure(log_dir: Path, verbose: bool = False) -> Path:
    """Send Archivist's log records to ``log_dir/archivist.log`` (rotated at 2 MB, 5 kept)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    file = log_dir / "archivist.log"
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if any(getattr(h, "baseFilename", None) == str(file.absolute()) for h in root.handlers):
        return file
    handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    logging.captureWarnings(True)
    warnings.filterwarnings("default")
    # Libraries that narrate every request at INFO would drown our own records.
    for noisy in ("httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3", "pypdf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return file
