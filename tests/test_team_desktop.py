"""The window in team mode: no knowledge-base process of its own, the team server's collections
(only those given to the user), files dropped on it sent to the server."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
import pytest
from servers import serving
from test_desktop import PUMP, ingest, statuses

from archivist import save_token
from archivist.settings import Settings
from desktop.backend import Backend
from desktop.main_window import MainWindow
from rag.knowledge_base import KnowledgeBase
from server.accounts import Accounts, Role
from server.app import ServerConfig, create_app
from server.audit import AuditLog


@pytest.fixture
def team_window(qtbot, kb: KnowledgeBase, tmp_path: Path):
    home = tmp_path / "server"
    accounts = Accounts(home / "accounts.db")
    token = accounts.add_user("alice")
    accounts.grant("alice", "Handbook", Role.EDITOR)
    for name in ("Handbook", "Board"):
        kb.create_collection(name)
    with serving(create_app(kb, accounts, AuditLog(home / "audit.jsonl"), ServerConfig(home=home))) as url:
        save_token(url, token)  # as the settings dialog does (a file here: this machine has no keyring)
        settings = Settings(data_dir=str(tmp_path / "data"), server_url=url, collection="Board")
        before = set(_spawned_children())  # an earlier test's, not this window's
        backend = Backend(settings)
        win = MainWindow(backend)
        qtbot.addWidget(win)
        win.show()
        with qtbot.waitSignal(backend.ready, timeout=60_000):
            backend.open()
        assert set(_spawned_children()) <= before  # no knowledge-base process: the server is the knowledge base
        yield win
        backend.shutdown()


def _spawned_children() -> list[psutil.Process]:
    """Children started by ``multiprocessing`` to run a knowledge base or a model (not its resource
    tracker)."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def test_the_window_shows_the_team_s_collections_and_sends_dropped_files(qtbot, team_window: MainWindow,
                                                                           tmp_path: Path):
    backend = team_window.backend
    assert backend.team and backend.process.pid is None
    qtbot.waitUntil(lambda: team_window.library.collections.count() == 1, timeout=10_000)
    assert team_window.library.collections.itemText(0) == "Handbook" and backend.collection == "Handbook"

    (tmp_path / "pump.txt").write_text(PUMP)
    ingest(qtbot, team_window, [tmp_path / "pump.txt"])
    assert statuses(team_window) == {"pump.txt": "Indexed"}
    assert backend.kb.search("how often does the pump need oil", "Handbook")[0].path == tmp_path / "pump.txt"
