"""Refusing a request: the HTTP status and typed error a client receives, and the refusal's line on
the audit log, throttled so that refused requests cannot fill the disk.

A refused request is answered ``{"detail": "<plain words>", "error": <the typed error in
rag.service.codec's JSON>}``: 401 for ``NotSignedIn``, 403 for ``AccessDenied``, 400 for any other
knowledge-base error, and a ``Refusal``'s own status (413, 415, 429, 507 ...).
"""

import threading
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from engine import ArchivistError
from rag.errors import AccessDenied, KnowledgeBaseError, NotSignedIn
from server.database import DatabaseError
from rag.service import codec
from server.accounts import User
from server.audit import AuditLog, clipped

_REFUSALS_A_MINUTE = 30  # audit lines of refusals one user may cause a minute, whatever they vary


class Refusal(Exception):
    """A request answered with an HTTP error status and the typed error the client shows."""

    def __init__(self, status: int, error: ArchivistError) -> None:
        super().__init__(str(error))
        self.status = status
        self.error = error


def add_handlers(app: FastAPI) -> None:
    """Answer a refusal, and each of our errors a handler lets out, as JSON with its HTTP status."""
    app.add_exception_handler(NotSignedIn, _answer(401))
    app.add_exception_handler(AccessDenied, _answer(403))
    app.add_exception_handler(KnowledgeBaseError, _answer(400))
    app.add_exception_handler(Refusal, _answer(400))
    app.add_exception_handler(DatabaseError, _answer(503))  # the accounts' database is not answering


def _answer(status: int) -> Callable[[Request, Exception], JSONResponse]:
    """A Starlette exception handler: ``status`` unless the error is a ``Refusal``, which carries its own."""
    def handler(request: Request, exc: Exception) -> JSONResponse:
        error = exc.error if isinstance(exc, Refusal) else exc
        return JSONResponse({"detail": str(error), "error": codec.encode(error)},
                            status_code=exc.status if isinstance(exc, Refusal) else status)
    return handler


class Refusals:
    """Refusals on the audit log, a few lines a minute at most whatever is refused; the next line
    written says how many were only counted."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        self._throttle = _Throttle()

    def sign_in(self, address: str, reason: str) -> None:
        """A request no user could be found for: one line per address and reason a minute."""
        more = self._throttle.admit(address, reason)
        if more is not None:
            detail = reason + (f" (and {more} more such refusals from this address)" if more else "")
            self._audit.record("?", "sign-in", detail=detail, outcome="refused", address=address)

    def refuse(self, user: User, action: str, collection: str, reason: str, address: str) -> None:
        """A refusal of ``user``'s: once a minute per user, action and reason, and at most
        ``_REFUSALS_A_MINUTE`` lines a minute per user whatever words they vary."""
        repeated = self._throttle.admit(f"{user.name}\0{action}", reason)
        if repeated is None:
            return
        unwritten = self._throttle.admit(user.name, "any refusal", budget=_REFUSALS_A_MINUTE)
        if unwritten is None:
            return
        counted = [f"{repeated} more such refusals"] if repeated else []
        counted += [f"{unwritten} other refusals of {user.name}'s not written"] if unwritten else []
        detail = clipped(reason, 300) + (f" (and {'; '.join(counted)})" if counted else "")
        self._audit.record(user.name, clipped(action), clipped(collection, 200), detail, "refused", address)


class _Throttle:
    """Lets ``budget`` events per key through a minute (one by default), and says how many were
    held back since."""

    def __init__(self, every: float = 60.0, keys: int = 10_000) -> None:
        self._every = every
        self._keys = keys
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}  # (window start, let through, held)
        self._lock = threading.Lock()

    def admit(self, who: str, what: str, budget: int = 1) -> int | None:
        """None to hold this one back; else how many were held back before it."""
        now, key = time.monotonic(), (who, what)
        with self._lock:
            start, passed, held = self._seen.get(key, (float("-inf"), 0, 0))
            if now - start < self._every and passed >= budget:
                self._seen[key] = (start, passed, held + 1)
                return None
            if now - start >= self._every:
                if len(self._seen) >= self._keys:
                    self._seen.clear()
                start, passed = now, 0
            self._seen[key] = (start, passed + 1, 0)
            return held
