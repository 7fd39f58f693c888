"""A knowledge base's check-up: saved test questions, each with where its answer lives.

A user writes questions they know the answers to and names the document (and, if they
like, a phrase of the passage) that should answer each. A run searches each question the
way asking does and records the rank of the first passage that fits; hit rate at 5 and the
questions that missed are compared with the previous run, so that adding documents,
changing chunking or switching the embedding model shows what it did.

Kept per collection in ``DATA/checkups/<collection id>.json``: the questions and the last
runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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


class Checkup:
    """The saved questions and runs of one collection."""

    def __init__(self, folder: Path, collection_id: str) -> None:
        self.path = folder / f"{collection_id}.json"
        data = self._read()
        self.questions = [CheckQuestion(**q) for q in data.get("questions", [])]
        self.runs = [CheckRun(**r) for r in data.get("runs", [])]

    def state(self) -> CheckupState:
        return CheckupState(list(self.questions), self.runs[-1] if self.runs else None)

    def add(self, question: CheckQuestion) -> None:
        self.questions = [q for q in self.questions if q.question != question.question] + [question]
        self._write()

    def remove(self, question: str) -> None:
        self.questions = [q for q in self.questions if q.question != question]
        self._write()

    def run(self, search: Callable[[str], list[Passage]], embedder: str,
            progress: Callable[[int, int], None] | None = None) -> CheckupReport:
        """Search every question (``search`` returns a question's first ten passages, found with
        the embedding model ``embedder``); record and return the run with the previous one."""
        run = CheckRun(time.time(), embedder)
        for index, question in enumerate(self.questions):
            passages = search(question.question)
            run.ranks[question.question] = next((i for i, p in enumerate(passages, start=1) if question.fits(p)), None)
            if progress is not None:
                progress(index + 1, len(self.questions))
        previous = self.runs[-1] if self.runs else None
        self.runs = [*self.runs, run][-_KEPT_RUNS:]
        self._write()
        return CheckupReport(run, previous)

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"the check-up file {self.path} cannot be read ({exc})") from exc

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"questions": [asdict(q) for q in self.questions], "runs": [asdict(r) for r in self.runs]}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)
