"""Conversations, kept per collection as one JSON file each: listed, renamed, deleted, exported."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.catalog import STARTER_NAME
from rag.answering.citations import Citation, citation_from_dict
from rag.answering.claims import Claim, Quote, claim_from_dict
from rag.errors import KnowledgeBaseError


class ConversationNotFound(KnowledgeBaseError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"There is no conversation {conversation_id!r}; it may have been deleted.")


@dataclass
class Turn:
    """One question and its answer, with the citations shown for it.

    ``sent`` and ``reply`` are the user message and the model's answer exactly as they went
    through the model, and ``sources`` the sources first sent in this turn: a follow-up
    repeats them verbatim, so that the engine reuses its cache.
    """

    question: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    data: Any = None
    mode: str = "retrieval"
    created: float = field(default_factory=time.time)
    sent: str = ""
    reply: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)  # each sentence's check, as shown when answered
    quote: dict[str, Any] | None = None
    model: str = ""
    stand_in: bool = False  # written by a small stand-in model (see AnswerResult.stand_in)

    def cited(self) -> list[Citation]:
        """The citations shown for this turn."""
        return [citation_from_dict(c) for c in self.citations]

    def checked(self) -> list[Claim]:
        """The answer's sentences as they were checked against their sources."""
        return [claim_from_dict(c) for c in self.claims]

    def quoted(self) -> Quote | None:
        """The source sentence shown word for word above the answer, if one was."""
        return Quote(**self.quote) if self.quote else None


@dataclass
class Conversation:
    """A titled run of turns in one collection."""

    id: str
    collection: str
    title: str
    created: float
    updated: float
    turns: list[Turn] = field(default_factory=list)


class ConversationStore:
    """Conversations on disk under ``folder/<collection id>/<conversation id>.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, collection: str, conversation_id: str) -> Path:
        safe = "".join(c for c in conversation_id if c.isalnum() or c == "-")
        return self.folder / collection / f"{safe}.json"

    def list(self, collection: str) -> list[Conversation]:
        """The collection's conversations, most recently used first."""
        folder = self.folder / collection
        found = []
        for path in folder.glob("*.json") if folder.is_dir() else []:
            try:
                found.append(self._read(path))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged file is skipped, not fatal
        return sorted(found, key=lambda c: -c.updated)

    def create(self, collection: str, title: str = "") -> Conversation:
        """A new, empty conversation."""
        now = time.time()
        conversation = Conversation(uuid.uuid4().hex[:12], collection, title, now, now)
        self._write(conversation)
        return conversation

    def get(self, collection: str, conversation_id: str) -> Conversation:
        """One conversation, or ``ConversationNotFound``."""
        path = self._path(collection, conversation_id)
        try:
            return self._read(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConversationNotFound(conversation_id) from exc

    def append(self, collection: str, conversation_id: str, turn: Turn) -> Conversation:
        """Add a turn; the first question becomes the title of an untitled conversation."""
        conversation = self.get(collection, conversation_id)
        conversation.turns.append(turn)
        conversation.updated = time.time()
        if not conversation.title:
            conversation.title = _title(turn.question)
        self._write(conversation)
        return conversation

    def rename(self, collection: str, conversation_id: str, title: str) -> Conversation:
        conversation = self.get(collection, conversation_id)
        conversation.title = title.strip() or conversation.title
        self._write(conversation)
        return conversation

    def delete(self, collection: str, conversation_id: str) -> None:
        self._path(collection, conversation_id).unlink(missing_ok=True)

    def export_markdown(self, collection: str, conversation_id: str) -> str:
        """The conversation as Markdown: each question, its answer, and its sources."""
        conversation = self.get(collection, conversation_id)
        lines = [f"# {conversation.title or 'Conversation'}", ""]
        for turn in conversation.turns:
            lines += [f"## {turn.question}", "", turn.answer.strip() or "_(no answer)_", ""]
            if turn.data is not None:
                lines += ["```json", json.dumps(turn.data, indent=2, ensure_ascii=False), "```", ""]
            if turn.citations:
                lines.append("Sources:")
                lines.append("")
                for c in turn.citations:
                    where = f", page {c['page']}" if c.get("page") is not None else ""
                    lines.append(f"- [{c['number']}] {Path(c['path']).name}{where}: “{c['snippet']}”")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def _read(self, path: Path) -> Conversation:
        data = json.loads(path.read_text(encoding="utf-8"))
        # Turns saved before ``stand_in`` was kept name the starter by its label (a migration, not a rule).
        data["turns"] = [Turn(**{"stand_in": t.get("model") == STARTER_NAME, **t}) for t in data.get("turns", [])]
        return Conversation(**data)

    def _write(self, conversation: Conversation) -> None:
        path = self._path(conversation.collection, conversation.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(conversation), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)


def _title(question: str) -> str:
    words = " ".join(question.split())
    return words if len(words) <= 60 else words[:57].rsplit(" ", 1)[0] + "…"
