"""The app's shell around the knowledge base: settings, logs, the offline guard, the composition
root, the window's knowledge-base process (or its team server), the self-test and the CLI.

The window imports this module and ``rag``, nothing below them.
"""

from __future__ import annotations

from rag.app.composition import find_model, models_dir
from rag.app.credentials import load_token, save_token
from rag.app.kb_process import KnowledgeBaseProcess
from rag.app.logs import configure as configure_logs
from rag.app.logs import crash_reports
from rag.app.self_test import run as run_self_test
from rag.app.settings import Settings, config_dir
from rag.app.team import TeamConnection, connect, server_url
from rag.offline import enforce as enforce_offline

__all__ = [
    "KnowledgeBaseProcess",
    "Settings",
    "TeamConnection",
    "config_dir",
    "configure_logs",
    "connect",
    "crash_reports",
    "enforce_offline",
    "find_model",
    "load_token",
    "models_dir",
    "run_self_test",
    "save_token",
    "server_url",
]
