"""What the window's two kinds of knowledge base share: a ``Channel`` it opens, closes and
opens again (a process of its own, ``kb_process``, or a team's server, ``team``)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any, Generic, TypeVar

from archivist.settings import Settings
from engine import CancelToken
from rag.errors import ServiceStopped
from rag.service.client import Channel

C = TypeVar("C", bound=Channel)


class HeldChannel(Generic[C]):
    """A ``Channel`` with a life cycle: ``start`` opens the channel, ``close`` ends it,
    ``restart`` does both (with new settings if given); a call while none is open fails with
    ``ServiceStopped``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._channel: C | None = None

    @property
    def running(self) -> bool:
        """Started and not yet closed (what it reaches may have stopped since: calls then fail)."""
        return self._channel is not None

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def restart(self, settings: Settings | None = None) -> None:
        self.close()
        if settings is not None:
            self.settings = settings
        self.start()

    def exchange(self, method: str, args: dict[str, Any], cancel: CancelToken | None) -> Generator[object, None, object]:
        return self._open().exchange(method, args, cancel)

    def _open(self) -> C:
        with self._lock:
            channel = self._channel
        if channel is None:
            raise ServiceStopped(None)
        return channel
