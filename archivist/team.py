"""The window's knowledge base when it is a team's ``archivist-server``.

With ``Settings.server_url`` set (or ``ARCHIVIST_SERVER``), the window reaches the team's server over
HTTP, signed in with the user's own token (``archivist.credentials``), instead of starting a
knowledge-base process of its own; it never talks to the store or the inference server.
``TeamConnection`` has ``KnowledgeBaseProcess``'s life cycle, so the window cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from archivist.credentials import load_token
from archivist.held_channel import HeldChannel
from archivist.kb_process import KnowledgeBaseProcess
from archivist.settings import Settings
from rag.service.client import Notice, ServerEvent

if TYPE_CHECKING:
    from rag.service.http_channel import HttpChannel  # noqa: F401 - named in the base class; httpx loads only when used


class TeamConnection(HeldChannel["HttpChannel"]):
    """A ``Channel`` to the team server with a process's life cycle: start, close, restart."""

    @property
    def pid(self) -> int | None:
        return None  # nothing runs here

    @property
    def url(self) -> str:
        return self.settings.team_url

    def start(self) -> None:
        from rag.service.http_channel import HttpChannel  # httpx: only when there is a team server

        with self._lock:
            self._channel = HttpChannel(self.url, load_token(self.url))

    def add_listener(self, listener: Notice) -> None:
        """The server sends no notices on a call's channel: what changes comes through ``listen``."""

    def listen(self, heard: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Hear the server's events (``/v1/events``) until the returned function is called."""
        return self._open().listen(heard)

    def whoami(self) -> dict[str, object]:
        return self._open().whoami()

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def connect(settings: Settings) -> KnowledgeBaseProcess | TeamConnection:
    """The window's knowledge base: the team's server when one is set, else a process of its own."""
    return TeamConnection(settings) if settings.team_url else KnowledgeBaseProcess(settings)
