"""Conversations, check-ups and followed folders as rows of the server's shared database, so that
replicas on several machines (``database_url``) keep one copy: a conversation started through one
replica continues through another, a check-up question added on one is run on any, and a folder
followed through one is watched by whichever replica holds the watching lease.

Each change is one transaction. A turn is added as a row of its own (its number the next in its
conversation, the conversation's row locked meanwhile), so two answers finished at once on two
replicas both stay; a check-up is changed whole on its locked row.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict

from sqlalchemy import Connection, RowMapping, Select, delete, exc, func, insert, select, update

from rag.answering.checkup import CheckupStore, Kept
from rag.answering.conversations import (
    Conversation,
    ConversationNotFound,
    ConversationStore,
    Turn,
    new_id,
    title_of,
    turn_from_dict,
)
from rag.indexing.following import FollowList
from server.database import Database, checkups, conversations, followed, turns


class ConversationRows(ConversationStore):
    """Conversations in the ``conversations`` and ``turns`` tables; ``owner`` (a user's id) sees
    only their own."""

    def __init__(self, database: Database, owner: str = "") -> None:
        self._db = database
        self._owner = owner

    def owned_by(self, owner: str) -> ConversationRows:
        return ConversationRows(self._db, owner)

    def list(self, collection: str) -> list[Conversation]:
        with self._db.reading() as conn:  # rows fetched here, read as JSON after the connection is given back
            heads = conn.execute(self._heads(collection).order_by(conversations.c.updated.desc())).mappings().all()
            rows = conn.execute(
                select(turns.c.conversation, turns.c.body)
                .join(conversations, conversations.c.id == turns.c.conversation)
                .where(conversations.c.owner == self._owner, conversations.c.collection == collection)
                .order_by(turns.c.conversation, turns.c.number)).all()
        said: dict[str, list[Turn]] = {head["id"]: [] for head in heads}
        for conversation, body in rows:
            if (turn := _turn(body)) is not None and conversation in said:
                said[conversation].append(turn)
        return [_conversation(head, said[head["id"]]) for head in heads]

    def create(self, collection: str, title: str = "") -> Conversation:
        now = time.time()
        for _ in range(3):  # 48 random bits: a taken id is all but impossible, and then tried again
            conversation = Conversation(new_id(), collection, title, now, now)
            try:
                with self._db.writing() as conn:
                    conn.execute(insert(conversations).values(
                        id=conversation.id, owner=self._owner, collection=collection, title=title,
                        created=now, updated=now))
                return conversation
            except exc.IntegrityError:
                continue
        raise RuntimeError("no free conversation id after three tries")

    def get(self, collection: str, conversation_id: str) -> Conversation:
        with self._db.reading() as conn:
            return self._get(conn, collection, conversation_id)

    def append(self, collection: str, conversation_id: str, turn: Turn) -> Conversation:
        with self._db.writing() as conn:
            head = self._locked(conn, collection, conversation_id)
            number = conn.execute(select(func.coalesce(func.max(turns.c.number), 0))
                                  .where(turns.c.conversation == conversation_id)).scalar_one()
            conn.execute(insert(turns).values(conversation=conversation_id, number=number + 1,
                                              body=_body(turn)))
            conn.execute(update(conversations).where(conversations.c.id == conversation_id).values(
                updated=time.time(), title=head["title"] or title_of(turn.question)))
            return self._get(conn, collection, conversation_id)

    def rename(self, collection: str, conversation_id: str, title: str) -> Conversation:
        with self._db.writing() as conn:
            self._locked(conn, collection, conversation_id)
            if title.strip():
                conn.execute(update(conversations).where(conversations.c.id == conversation_id)
                             .values(title=title.strip()))
            return self._get(conn, collection, conversation_id)

    def delete(self, collection: str, conversation_id: str) -> None:
        with self._db.writing() as conn:
            conn.execute(delete(conversations).where(conversations.c.id == conversation_id,
                                                     conversations.c.owner == self._owner,
                                                     conversations.c.collection == collection))

    def forget(self, collection: str) -> None:
        with self._db.writing() as conn:  # every owner's; their turns go with them (ON DELETE CASCADE)
            conn.execute(delete(conversations).where(conversations.c.collection == collection))

    def revision(self, collection: str) -> str:
        with self._db.reading() as conn:
            heads = conn.execute(select(conversations.c.id, conversations.c.updated, conversations.c.title)
                                 .where(conversations.c.owner == self._owner,
                                        conversations.c.collection == collection)
                                 .order_by(conversations.c.id)).all()
        return hashlib.sha256(repr([tuple(h) for h in heads]).encode()).hexdigest()[:16]

    def put(self, conn: Connection, found: Iterable[tuple[str, Conversation]]) -> int:
        """Add conversations kept elsewhere, each ``(owner, conversation)`` with its id and turns, in
        ``conn``'s transaction; one whose id the table holds already is left as it is. How many were added."""
        added = 0
        for owner, talk in found:
            head = {"id": talk.id, "owner": owner, "collection": talk.collection, "title": talk.title,
                    "created": talk.created, "updated": talk.updated}
            if not self._db.upsert(conn, conversations, [head]):
                held = conn.execute(select(conversations.c.owner, conversations.c.collection)
                                    .where(conversations.c.id == talk.id)).one()
                if tuple(held) == (owner, talk.collection):
                    continue  # this very conversation, moved in before
                head["id"] = new_id()  # another's of the same id (ids are per folder on one machine): a new one
                self._db.append(conn, conversations, [head])
            added += 1
            self._db.append(conn, turns, [{"conversation": head["id"], "number": number, "body": _body(turn)}
                                          for number, turn in enumerate(talk.turns, start=1)])
        return added

    def _heads(self, collection: str, conversation_id: str | None = None) -> Select[tuple[str, str, str, str, float, float]]:
        chosen = select(conversations).where(conversations.c.owner == self._owner,
                                             conversations.c.collection == collection)
        return chosen if conversation_id is None else chosen.where(conversations.c.id == conversation_id)

    def _locked(self, conn: Connection, collection: str, conversation_id: str) -> RowMapping:
        """The conversation's row, locked until the transaction ends; ``ConversationNotFound``
        unless it is this owner's, in this collection."""
        head = conn.execute(self._heads(collection, conversation_id).with_for_update()).mappings().first()
        if head is None:
            raise ConversationNotFound(conversation_id)
        return head

    def _get(self, conn: Connection, collection: str, conversation_id: str) -> Conversation:
        head = conn.execute(self._heads(collection, conversation_id)).mappings().first()
        if head is None:
            raise ConversationNotFound(conversation_id)
        bodies = conn.execute(select(turns.c.body).where(turns.c.conversation == conversation_id)
                              .order_by(turns.c.number)).scalars()
        return _conversation(head, [t for body in bodies if (t := _turn(body)) is not None])


class CheckupRows(CheckupStore):
    """Each collection's check-up as one JSON row of ``checkups``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def read(self, collection_id: str) -> Kept:
        with self._db.reading() as conn:
            body = conn.execute(select(checkups.c.body).where(checkups.c.collection == collection_id)).scalar()
        return _kept(body)

    def update(self, collection_id: str, change: Callable[[Kept], Kept]) -> Kept:
        with self._db.writing() as conn:
            self._db.upsert(conn, checkups, [{"collection": collection_id, "body": "{}"}])
            body = conn.execute(select(checkups.c.body).where(checkups.c.collection == collection_id)
                                .with_for_update()).scalar_one()
            kept = change(_kept(body))
            conn.execute(update(checkups).where(checkups.c.collection == collection_id)
                         .values(body=json.dumps(kept, ensure_ascii=False)))
        return kept

    def put(self, conn: Connection, kept: Mapping[str, Kept]) -> int:
        """Add check-ups kept elsewhere (``{collection id: check-up}``) in ``conn``'s transaction; a
        collection's the table holds already is left as it is. How many were added."""
        return self._db.upsert(conn, checkups, [{"collection": c, "body": json.dumps(k, ensure_ascii=False)}
                                                for c, k in kept.items()])

    def forget(self, collection_id: str) -> None:
        with self._db.writing() as conn:
            conn.execute(delete(checkups).where(checkups.c.collection == collection_id))


class FollowRows(FollowList):
    """The followed folders as rows of ``followed``: (collection, folder, since)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def mapping(self) -> dict[str, list[str]]:
        with self._db.reading() as conn:
            rows = conn.execute(select(followed.c.collection, followed.c.folder)
                                .order_by(followed.c.collection, followed.c.since, followed.c.folder)).all()
        mapping: dict[str, list[str]] = {}
        for collection, folder in rows:
            mapping.setdefault(collection, []).append(folder)
        return mapping

    def add(self, collection: str, folder: str) -> None:
        with self._db.writing() as conn:
            self._db.upsert(conn, followed, [{"collection": collection, "folder": folder, "since": time.time()}])

    def discard(self, collection: str, folder: str) -> None:
        with self._db.writing() as conn:
            conn.execute(delete(followed).where(followed.c.collection == collection, followed.c.folder == folder))

    def forget(self, collection: str) -> None:
        with self._db.writing() as conn:
            conn.execute(delete(followed).where(followed.c.collection == collection))

    def put(self, conn: Connection, mapping: Mapping[str, list[str]]) -> int:
        """Add followed folders kept elsewhere, in ``conn``'s transaction. How many were new."""
        now = time.time()
        return self._db.upsert(conn, followed, [{"collection": c, "folder": f, "since": now + n * 1e-6}
                                                for c, folders in mapping.items() for n, f in enumerate(folders)])

    def rename(self, old: str, new: str) -> None:
        with self._db.writing() as conn:  # rows left under the new name (no collection has it) go first
            conn.execute(delete(followed).where(followed.c.collection == new))
            conn.execute(update(followed).where(followed.c.collection == old).values(collection=new))


def _conversation(head: RowMapping, said: list[Turn]) -> Conversation:
    return Conversation(head["id"], head["collection"], head["title"], head["created"], head["updated"], said)


def _body(turn: Turn) -> str:
    return json.dumps(asdict(turn), ensure_ascii=False)


def _turn(body: str) -> Turn | None:
    """A kept turn; None for a row that is not one (it is left out, as a damaged file is)."""
    try:
        data = json.loads(body)  # JSON of any shape, checked below
        return turn_from_dict(data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None


def _kept(body: str | None) -> Kept:
    try:
        data = json.loads(body) if body else {}
    except ValueError as error:
        raise OSError(f"the check-up kept in the database cannot be read ({error})") from None
    return data if isinstance(data, dict) else {}


__all__ = ["CheckupRows", "ConversationRows", "FollowRows"]
