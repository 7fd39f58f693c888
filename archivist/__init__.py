"""The app's shell around the knowledge base: settings, logs, the offline guard, the composition
root, the window's knowledge-base process (or its team server), the self-test and the CLI.

The window imports this module and ``rag``, nothing below them.
"""

from __future__ import annotations

from archivist.composition import find_model, models_dir
from archivist.credentials import load_token, save_token
from archivist.extract import ExtractionProgress, extract_to
from archivist.kb_process import KnowledgeBaseProcess
from archivist.logs import configure as configure_logs
from archivist.logs import crash_reports
from archivist.self_test import run as run_self_test
from archivist.settings import Settings, config_dir
from archivist.team import TeamConnection, connect
from rag.offline import enforce as enforce_offline

__all__ = [
    "ExtractionProgress",
    "KnowledgeBaseProcess",
    "Settings",
    "TeamConnection",
    "config_dir",
    "configure_logs",
    "connect",
    "crash_reports",
    "enforce_offline",
    "extract_to",
    "find_model",
    "load_token",
    "models_dir",
    "run_self_test",
    "save_token",
]
