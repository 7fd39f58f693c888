"""A knowledge base's check-up: saved test questions, each with where its answer lives.

A user writes questions they know the answers to and names the document (and, if they
like, a phrase of the passage) that should answer each. A run searches each question the
way asking does and records the rank of the first passage that fits; hit rate at 5 and the
questions that missed are compared with the previous run, so that adding documents,
changing chunking or switching the embedding model shows what it did.

Kept per collection: the questions and the last runs, in ``DATA/checkups/<collection id>.json``
(``CheckupFiles``) or in a team server's shared database (``server.collection_state``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rag.answering.claims import normalise

if TYPE_CHECKING:
    from rag.documents import Passage

TOP = 5
_KEPT_RUNS = 20


@dataclass(frozen=True, slots=True)
class CheckQuestion:
    """A question, the document that should answer it (file name or path), and optionally a
    phrase the answering passage contains."""

    question: str
    document: str
    passage: str = ""

    def fits(self, passage: Passage) -> bool:
        named = self.document.strip()
        if named not in (passage.path.name, str(passage.path)) and not str(passage.path).endswith(os.sep + named):
            return False
        return not self.passage or normalise(self.passage) in normalise(passage.text)


@dataclass(slots=True)
class CheckRun:
    """One run: when, with which embedding model, and each question's rank (None: not in the top 10)."""

    at: float
    embedder: str
    ranks: dict[str, int | None] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        if not self.ranks:
            return 0.0
        return sum(1 for r in self.ranks.values() if r is not None and r <= TOP) / len(self.ranks)

    def missed(self) -> list[str]:
        return [q for q, r in self.ranks.items() if r is None or r > TOP]


@dataclass(slots=True)
class CheckupReport:
    """A run and what changed since the one before it."""

    run: CheckRun
    previous: CheckRun | None

    @property
    def newly_missed(self) -> list[str]:
        before = set(self.previous.missed()) if self.previous else set()
        return [q for q in self.run.missed() if q not in before and self.previous and q in self.previous.ranks]

    @property
    def newly_found(self) -> list[str]:
        if self.previous is None:
            return []
        now = set(self.run.missed())
        return [q for q in self.previous.missed() if q not in now and q in self.run.ranks]

    def summary(self) -> str:
        text = f"hit rate at {TOP}: {self.run.hit_rate:.0%} ({len(self.run.ranks) - len(self.run.missed())} of {len(self.run.ranks)})"
        if self.previous is not None:
            change = self.run.hit_rate - self.previous.hit_rate
            text += f", {change:+.0%} since {time.strftime('%Y-%m-%d %H:%M', time.localtime(self.previous.at))}"
        return text


@dataclass(frozen=True, slots=True)
class CheckupState:
    """The saved questions of a collection and its last run (None before the first)."""

    questions: list[CheckQuestion]
    last: CheckRun | None


Kept = dict[str, list[dict[str, Any]]]  # {"questions": [asdict(CheckQuestion)], "runs": [asdict(CheckRun)]}


class CheckupStore(ABC):
    """Where each collection's check-up is kept, as ``Kept``: read whole, changed whole."""

    @abstractmethod
    def read(self, collection_id: str) -> Kept:
        """The collection's check-up (``{}`` before its first question); ``OSError`` when it cannot be read."""

    @abstractmethod
    def update(self, collection_id: str, change: Callable[[Kept], Kept]) -> Kept:
        """Apply ``change`` to the check-up as it is now and keep what it returns, with no other
        change in between (whichever process or replica makes it)."""

    @abstractmethod
    def forget(self, collection_id: str) -> None:
        """A deleted collection's check-up goes with it."""


class CheckupFiles(CheckupStore):
    """Each collection's check-up in ``folder/<collection id>.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def read(self, collection_id: str) -> Kept:
        path = self.folder / f"{collection_id}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"the check-up file {path} cannot be read ({exc})") from exc

    def update(self, collection_id: str, change: Callable[[Kept], Kept]) -> Kept:
        with self._lock:
            kept = change(self.read(collection_id))
            path = self.folder / f"{collection_id}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(kept, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(temporary, path)
            return kept

    def forget(self, collection_id: str) -> None:
        (self.folder / f"{collection_id}.json").unlink(missing_ok=True)


class Checkup:
    """The saved questions and runs of one collection."""

    def __init__(self, store: CheckupStore, collection_id: str) -> None:
        self._store = store
        self._id = collection_id
        self._load(store.read(collection_id))

    def _load(self, kept: Kept) -> None:
        self.questions = _each(CheckQuestion, kept.get("questions", []))
        self.runs = _each(CheckRun, kept.get("runs", []))

    def state(self) -> CheckupState:
        return CheckupState(list(self.questions), self.runs[-1] if self.runs else None)

    def add(self, question: CheckQuestion) -> None:
        self._change(lambda kept: {**kept, "questions": [
            *(asdict(q) for q in _each(CheckQuestion, kept.get("questions", [])) if q.question != question.question),
            asdict(question)]})

    def remove(self, question: str) -> None:
        self._change(lambda kept: {**kept, "questions": [
            asdict(q) for q in _each(CheckQuestion, kept.get("questions", [])) if q.question != question]})

    def run(self, search: Callable[[str], list[Passage]], embedder: str,
            progress: Callable[[int, int], None] | None = None) -> CheckupReport:
        """Search every question (``search`` returns a question's first ten passages, found with
        the embedding model ``embedder``); record and return the run with the one before it."""
        run = CheckRun(time.time(), embedder)
        for index, question in enumerate(self.questions):
            passages = search(question.question)
            run.ranks[question.question] = next((i for i, p in enumerate(passages, start=1) if question.fits(p)), None)
            if progress is not None:
                progress(index + 1, len(self.questions))
        self._change(lambda kept: {**kept, "runs": [
            *(asdict(r) for r in _each(CheckRun, kept.get("runs", []))), asdict(run)][-_KEPT_RUNS:]})
        return CheckupReport(run, self.runs[-2] if len(self.runs) > 1 else None)

    def _change(self, change: Callable[[Kept], Kept]) -> None:
        self._load(self._store.update(self._id, change))


T = TypeVar("T", CheckQuestion, CheckRun)


def _each(kind: type[T], kept: object) -> list[T]:
    """The entries of a kept list that are ``kind``'s; one of another shape (a damaged file or row)
    is left out, and goes at the next change."""
    found = []
    for entry in kept if isinstance(kept, list) else []:
        try:
            found.append(kind(**entry))
        except TypeError:
            continue
    return found
