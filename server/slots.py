"""The calls each user has running: a few at once at most, each under its own id, so that its user
can cancel it."""

import threading
from collections import Counter

from engine import CancelToken
from rag.errors import TooBusy
from server.accounts import User
from server.audit import clipped
from server.refusals import Refusal


class Slots:
    """Counts each user's running calls (and other work that counts as one, such as hashing their
    uploads) against ``per_user``, and holds the cancel token of each call that has an id."""

    def __init__(self, per_user: int) -> None:
        self._per_user = per_user
        self._busy: Counter[str] = Counter()
        self._running: dict[tuple[str, str], CancelToken] = {}
        self._lock = threading.Lock()

    def take(self, user: User, number: str | None = None) -> CancelToken:
        """One more of ``user``'s calls running, under the id ``number`` when it has one; ``TooBusy``
        (429) past the limit, or for an id of theirs already running. Give it back when it ends."""
        with self._lock:
            if number is not None and (user.name, number) in self._running:
                raise Refusal(429, TooBusy(f"a call of {user.name}'s with the id {clipped(number)!r} is running"))
            if self._busy[user.name] >= self._per_user:
                raise Refusal(429, TooBusy(f"{user.name} has {self._busy[user.name]} calls running; at most "
                                           f"{self._per_user} at once"))
            self._busy[user.name] += 1
            cancel = CancelToken()
            if number is not None:
                self._running[(user.name, number)] = cancel
            return cancel

    def give_back(self, user: User, number: str | None = None) -> None:
        """The call ``take`` counted has ended."""
        with self._lock:
            self._busy[user.name] -= 1
            if number is not None:
                self._running.pop((user.name, number), None)

    def cancel(self, user: User, number: str) -> None:
        """Stop ``user``'s running call ``number``; nothing when there is none (another user's ids are not theirs)."""
        with self._lock:
            token = self._running.get((user.name, number))
        if token is not None:
            token.cancel()
