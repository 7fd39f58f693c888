"""Conversations: listed, renamed, deleted, exported; kept as one JSON file each (one machine's,
``ConversationFiles``) or as rows of a team server's shared database (``server.collection_state``)."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from abc import ABC, abstractmethod
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


class ConversationStore(ABC):
    """Where conversations are kept. A store holds one person's conversations; a team server's
    holds each person's apart (``owned_by``), and ``forget`` then clears everyone's."""

    @abstractmethod
    def list(self, collection: str) -> list[Conversation]:
        """The collection's conversations, most recently used first."""

    @abstractmethod
    def create(self, collection: str, title: str = "") -> Conversation:
        """A new, empty conversation."""

    @abstractmethod
    def get(self, collection: str, conversation_id: str) -> Conversation:
        """One conversation, or ``ConversationNotFound``."""

    @abstractmethod
    def append(self, collection: str, conversation_id: str, turn: Turn) -> Conversation:
        """Add a turn; the first question becomes the title of an untitled conversation."""

    @abstractmethod
    def rename(self, collection: str, conversation_id: str, title: str) -> Conversation:
        """Give a conversation a new title (a blank one keeps the old)."""

    @abstractmethod
    def delete(self, collection: str, conversation_id: str) -> None:
        """Delete one conversation (none there: nothing happens)."""

    @abstractmethod
    def forget(self, collection: str) -> None:
        """Delete the collection's conversations, every owner's: a collection of the same name made
        later (ids follow from names) must not find them."""

    @abstractmethod
    def revision(self, collection: str) -> str:
        """A token that changes whenever the collection's conversations do."""

    @abstractmethod
    def owned_by(self, owner: str) -> ConversationStore:
        """This store, keeping ``owner``'s conversations (a team server's user)."""

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

class ConversationFiles(ConversationStore):
    """Conversations on disk under ``root/<collection id>/<conversation id>.json``; a team server's
    (``by_owner``) keep each owner's under ``root/<owner>/``."""

    def __init__(self, root: Path, by_owner: bool = False, owner: str = "") -> None:
        self.root = root
        self._by_owner = by_owner
        self.folder = root / owner if by_owner else root

    def owned_by(self, owner: str) -> ConversationFiles:
        return ConversationFiles(self.root, by_owner=True, owner=owner)

    def _path(self, collection: str, conversation_id: str) -> Path:
        safe = "".join(c for c in conversation_id if c.isalnum() or c == "-")
        return self.folder / collection / f"{safe}.json"

    def list(self, collection: str) -> list[Conversation]:
        folder = self.folder / collection
        found = []
        for path in folder.glob("*.json") if folder.is_dir() else []:
            try:
                found.append(self._read(path))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue  # a damaged file is skipped, not fatal
        return sorted(found, key=lambda c: -c.updated)

    def create(self, collection: str, title: str = "") -> Conversation:
        now = time.time()
        conversation = Conversation(new_id(), collection, title, now, now)
        self._write(conversation)
        return conversation

    def get(self, collection: str, conversation_id: str) -> Conversation:
        path = self._path(collection, conversation_id)
        try:
            return self._read(path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConversationNotFound(conversation_id) from exc

    def append(self, collection: str, conversation_id: str, turn: Turn) -> Conversation:
        conversation = self.get(collection, conversation_id)
        conversation.turns.append(turn)
        conversation.updated = time.time()
        if not conversation.title:
            conversation.title = title_of(turn.question)
        self._write(conversation)
        return conversation

    def rename(self, collection: str, conversation_id: str, title: str) -> Conversation:
        conversation = self.get(collection, conversation_id)
        conversation.title = title.strip() or conversation.title
        self._write(conversation)
        return conversation

    def delete(self, collection: str, conversation_id: str) -> None:
        self._path(collection, conversation_id).unlink(missing_ok=True)

    def forget(self, collection: str) -> None:
        for folder in self.root.glob(f"*/{collection}") if self._by_owner else [self.root / collection]:
            shutil.rmtree(folder, ignore_errors=True)

    def revision(self, collection: str) -> str:
        times = [p.stat().st_mtime_ns for p in (self.folder / collection).glob("*.json")]
        return f"{len(times)}:{max(times, default=0)}"

    def _read(self, path: Path) -> Conversation:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["turns"] = [turn_from_dict(t) for t in data.get("turns", [])]
        return Conversation(**data)

    def _write(self, conversation: Conversation) -> None:
        path = self._path(conversation.collection, conversation.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(conversation), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)


def turn_from_dict(data: dict[str, Any]) -> Turn:
    """A turn as kept (``dataclasses.asdict``); ``TypeError`` for one of another shape."""
    if not isinstance(data, dict):
        raise TypeError(f"a turn is kept as an object, not {type(data).__name__}")
    # Turns saved before ``stand_in`` was kept name the starter by its label (a migration, not a rule).
    return Turn(**{"stand_in": data.get("model") == STARTER_NAME, **data})


def new_id() -> str:
    """A new conversation's id: 12 hexadecimal digits."""
    return uuid.uuid4().hex[:12]


def title_of(question: str) -> str:
    """An untitled conversation's title: its first question, cut at a word near 60 characters."""
    words = " ".join(question.split())
    return words if len(words) <= 60 else words[:57].rsplit(" ", 1)[0] + "…"
