"""A private Chroma server on loopback, for the desktop app.

Chroma's bindings hold Python's lock while they work, for hundreds of milliseconds at
times (index resizes, writes to disk). In the window's process that freezes the window, so
the desktop runs the same on-disk store in a child process and talks to it over loopback
(bench/desktop.py measures the difference). The server notes its port in the store's
folder, so ``archivist-cli`` run meanwhile uses it too instead of opening the folder twice.

    python -m rag.app.chroma_server PATH PORT      (what the app starts; exits with its parent)
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from rag.errors import StoreUnavailable

log = logging.getLogger(__name__)

_NOTE = ".archivist-server.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(port: int, timeout: float = 1.0) -> bool:
    """Whether a Chroma server answers its heartbeat on loopback ``port``."""
    import httpx  # here: the window's process imports this module but never asks

    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def running_server(path: Path) -> int | None:
    """The port of a live server already serving the store at ``path``, if any."""
    try:
        note = json.loads((path / _NOTE).read_text())
    except (OSError, ValueError):
        return None
    port, owner = int(note.get("port", 0)), int(note.get("owner", 0))
    if owner and not psutil.pid_exists(owner):
        return None  # its owner died (a crash): the server is about to follow it out
    return port if port and alive(port) else None


def server_command(path: Path, port: int) -> list[str]:
    """How to start the server: this module, or the frozen app's own switch."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--chroma-server", str(path), str(port)]
    return [sys.executable, "-m", "rag.app.chroma_server", str(path), str(port)]


class LocalChromaServer:
    """A Chroma server for one folder, started on a free loopback port and stopped with us."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> int:
        """Start the server (or join one already running for this folder) and return its port."""
        self.path.mkdir(parents=True, exist_ok=True)
        existing = running_server(self.path)
        if existing:
            self.port = existing
            return existing
        self.port = _free_port()
        with (self.path / "server.log").open("ab") as log_file:  # the server keeps its own copy
            self._process = subprocess.Popen(
                server_command(self.path, self.port), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, ANONYMIZED_TELEMETRY="False"),
            )
        if sys.platform.startswith("linux"):  # the window's process comes first when cores are scarce
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._process.pid, 10)
        deadline = time.monotonic() + timeout
        while not alive(self.port, timeout=0.5):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StoreUnavailable(f"the local Chroma server did not start (see {self.path / 'server.log'})")
            time.sleep(0.1)
        (self.path / _NOTE).write_text(json.dumps({"port": self.port, "pid": self._process.pid, "owner": os.getpid()}))
        log.info("local Chroma server for %s on port %d", self.path, self.port)
        return self.port

    def stop(self) -> None:
        """Stop the server if we started it."""
        if self._process is None:
            return
        with contextlib.suppress(OSError):
            (self.path / _NOTE).unlink()
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process = None


def serve(path: str, port: str) -> None:
    """Run Chroma's server in this process until the parent process goes away."""
    faulthandler.enable()  # a native crash's traceback goes to stderr, which is the folder's server.log
    parent = os.getppid()

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    import chromadb_rust_bindings

    chromadb_rust_bindings.cli(["chroma", "run", "--path", path, "--host", "127.0.0.1", "--port", port])


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
