"""The window's knowledge base when it is a team's ``archivist-server``.

With ``server_url`` set (or ``ARCHIVIST_SERVER``), the window reaches the team's server over
HTTP, signed in with the user's own token (``rag.app.credentials``), instead of starting a
knowledge-base process of its own; it never talks to the store or the inference server.
``TeamConnection`` has ``KnowledgeBaseProcess``'s life cycle, so the window cannot tell them apart.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from engine import CancelToken
from rag.app.credentials import load_token
from rag.app.kb_process import KnowledgeBaseProcess
from rag.app.settings import Settings
from rag.errors import ServiceStopped
from rag.service import Notice

if TYPE_CHECKING:
    from rag.service_http import HttpChannel


def server_url(settings: Settings) -> str:
    """The team server in effect: ``ARCHIVIST_SERVER``, else the settings; empty for none."""
    return (os.environ.get("ARCHIVIST_SERVER", "") or settings.server_url).rstrip("/")


class TeamConnection:
    """A ``Channel`` to the team server with a process's life cycle: start, close, restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channel: HttpChannel | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._channel is not None

    @property
    def pid(self) -> int | None:
        return None  # nothing runs here

    @property
    def url(self) -> str:
        return server_url(self.settings)

    def start(self) -> None:
        from rag.service_http import (
            HttpChannel,  # httpx: only when there is a team server
        )

        with self._lock:
            self._channel = HttpChannel(self.url, load_token(self.url))

    def restart(self, settings: Settings | None = None) -> None:
        self.close()
        if settings is not None:
            self.settings = settings
        self.start()

    def add_listener(self, listener: Notice) -> None:
        """The server sends no notices: the window asks for the model's state when it polls."""

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        with self._lock:
            channel = self._channel
        if channel is None:
            raise ServiceStopped(None)
        return channel.exchange(method, args, cancel)

    def whoami(self) -> dict[str, object]:
        with self._lock:
            channel = self._channel
        if channel is None:
            raise ServiceStopped(None)
        return channel.whoami()

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def connect(settings: Settings) -> KnowledgeBaseProcess | TeamConnection:
    """The window's knowledge base: the team's server when one is set, else a process of its own."""
    return TeamConnection(settings) if server_url(settings) else KnowledgeBaseProcess(settings)
