"""Several replicas of the team server on one home folder: each its own name, log and settings."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port

from engine.errors import ArchivistError
from server.cli import load_config, replica_name

SERVER_TOML = """
[server]
watches_folders = false     # all replicas but one
max_calls_per_user = 8

[replica.alpha]
watches_folders = true      # this one indexes the followed folders
"""


def test_a_replica_table_overrides_the_server_table_for_that_replica_alone(tmp_path: Path):
    (tmp_path / "server.toml").write_text(SERVER_TOML, encoding="utf-8")
    _, alpha = load_config(tmp_path, "alpha")
    _, beta = load_config(tmp_path, "beta")
    _, unnamed = load_config(tmp_path)
    assert alpha.watches_folders and not beta.watches_folders and not unnamed.watches_folders
    assert alpha.max_calls_per_user == beta.max_calls_per_user == 8


def test_a_misspelt_replica_setting_is_refused_whichever_replica_starts(tmp_path: Path):
    (tmp_path / "server.toml").write_text(SERVER_TOML + "\n[replica.beta]\nwatch_folders = true\n", encoding="utf-8")
    for name in ("alpha", "beta", "gamma"):
        with pytest.raises(ArchivistError, match=r"\[replica\.beta\] sets watch_folders"):
            load_config(tmp_path, name)


def test_a_replica_is_named_by_the_flag_else_the_environment_else_the_host(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ARCHIVIST_REPLICA", "from-env")
    assert replica_name("from-flag") == "from-flag"
    assert replica_name() == "from-env"
    monkeypatch.delenv("ARCHIVIST_REPLICA")
    assert replica_name() == socket.gethostname().split(".")[0]
    for bad in ("../up", "a b", "-dash", "x" * 64):
        with pytest.raises(ArchivistError, match="cannot name a replica"):
            replica_name(bad)


@contextlib.contextmanager
def serving(home: Path, replica: str) -> Iterator[str]:
    """``archivist-server serve --replica NAME`` in a process of its own; its address."""
    port = free_port()
    argv = ["--home", str(home), "serve", "--port", str(port), "--replica", replica]
    script = f"import sys; from server.cli import main; sys.exit(main({argv!r}))"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{address}/v1/health", timeout=1) as reply:
            assert json.load(reply)["ok"]
            break
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "the server ended"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield address
    finally:
        process.terminate()
        process.wait(20)


def test_two_replicas_on_one_home_keep_their_own_logs_and_settings(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "server.toml").write_text(SERVER_TOML, encoding="utf-8")
    with serving(home, "alpha"), serving(home, "beta"):
        pass
    alpha = (home / "logs" / "alpha" / "archivist.log").read_text(encoding="utf-8").splitlines()
    beta = (home / "logs" / "beta" / "archivist.log").read_text(encoding="utf-8").splitlines()
    assert alpha and all(line.split()[2] == "alpha" for line in alpha if line[:2] == "20")  # date, time, replica
    assert beta and all(line.split()[2] == "beta" for line in beta if line[:2] == "20")
    assert any("replica alpha" in line and "watching the followed folders" in line for line in alpha)
    assert any("replica beta" in line and "not watching the followed folders" in line for line in beta)
    assert not (home / "logs" / "archivist.log").exists()


def test_the_pages_settings_are_read_with_their_shapes_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ARCHIVIST_OIDC_CLIENT_SECRET", raising=False)
    (tmp_path / "server.toml").write_text(
        '[server]\nsecure_cookies = true\npublic_url = "https://kb.example/"\nweb_answer_tokens = 512\n'
        '[server.oidc]\nissuer = "https://id.example/realms/staff/"\nclient_id = "archivist"\nsession_hours = 4\n')
    _, config = load_config(tmp_path, "alpha")
    assert (config.secure_cookies, config.public_url, config.web_answer_tokens) == (True, "https://kb.example", 512)
    assert (config.oidc_issuer, config.oidc_client_id, config.oidc_session_hours) == ("https://id.example/realms/staff", "archivist", 4.0)
    assert config.replica == "alpha" and config.oidc_user_claim == "preferred_username"
    for bad in ('secure_cookies = "false"',  # a string bool() would read as true
                "web_answer_tokens = true", "web_answer_tokens = 0", 'public_url = ["x"]', "oidc = 3",
                '[server.oidc]\nissuer = "https://id.example"'):  # no client id, no public address
        (tmp_path / "server.toml").write_text(f"[server]\n{bad}\n")
        with pytest.raises(ArchivistError):
            load_config(tmp_path)
