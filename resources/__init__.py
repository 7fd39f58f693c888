"""Bundled data (vocabulary, schemas, icons, translations, samples), found the same way
whether Archivist runs from a checkout, an installed wheel or a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """The path of a bundled resource, e.g. ``resource_path("schemas", "key_facts.json")``."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    root = Path(frozen_root) / "resources" if frozen_root else Path(__file__).resolve().parent
    return root.joinpath(*parts)
