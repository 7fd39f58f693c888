"""The team server's one policy: the facade's marks (``rag.calls``) applied to a signed-in user.

Every call's arguments have been checked for shape by then (``Offered.arguments``); here a call
is allowed or refused (``AccessDenied``), the paths it names are mapped to the server's files and
kept inside what the user may reach, and its result is cut to what the user may see.

    ANYONE   any signed-in user; collections, revision and the cache's figures cut to their rights
    READER   search, ask, extract, sources, conversations, the check-up   } on the collection
    EDITOR   also ingest, remove, follow, re-embed, edit the check-up    } the call names
    OWNER    also rename, delete, set an adapter, grant                   }
    ADMIN    the model, the cache, downloads; every role on every collection

A collection that does not exist yet is made by ``create_collection``, ``ingest`` or ``follow``
only for those who may create one (administrators, or anyone when ``anyone_creates``). Made by a
user, it starts with no grant but its creator's, whatever was granted on its name before; a
deleted collection's grants go with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

from rag.answering.ask import AskOptions
from rag.answering.conversations import ConversationStore
from rag.calls import Access, Offered
from rag.errors import AccessDenied, CollectionExists, CollectionNotFound
from rag.indexing.discovery import within
from rag.knowledge_base import KnowledgeBase
from rag.storage.vectors import CollectionInfo
from server.accounts import Accounts, Role, User
from server.uploads import Uploads, user_id

_ROLES = {Access.READER: Role.READER, Access.EDITOR: Role.EDITOR, Access.OWNER: Role.OWNER}


class Policy:
    """Allows or refuses each call of each user, before it runs, and cuts its result after."""

    def __init__(self, kb: KnowledgeBase, accounts: Accounts, uploads: Uploads, folders: list[Path],
                 anyone_creates: bool, conversations: ConversationStore) -> None:
        self.kb = kb
        self.accounts = accounts
        self.uploads = uploads
        self.folders = folders
        self.anyone_creates = anyone_creates
        self.conversations = conversations  # every user's, each apart: ``owned_by(user_id(name))``

    def collection_of(self, spec: Offered, args: dict[str, object]) -> str:
        """The collection a call names ("" for none)."""
        value = args.get(spec.collection) if spec.collection else None
        return value if isinstance(value, str) else ""

    def authorize(self, user: User, spec: Offered, args: dict[str, object]) -> None:
        """``AccessDenied`` unless ``user`` may make this call with these arguments; the paths it
        names are replaced, in ``args``, by the server files they stand for."""
        collection = self.collection_of(spec, args)
        if spec.access is Access.ADMIN and not user.admin:
            raise AccessDenied(f"only an administrator may {spec.name.replace('_', ' ')}.")
        if spec.name == "create_collection":
            self._may_create(user, collection, asked=True)
            self._name_free(user, collection)
        elif spec.creates and not self._exists(collection):
            self._may_create(user, collection)
        elif spec.access in _ROLES:
            self.accounts.require(user, collection, _ROLES[spec.access])
        if spec.name == "rename_collection" and isinstance(args.get("new_name"), str):
            self._name_free(user, str(args["new_name"]))
        for name in spec.client_paths:
            self._map(args, name, lambda path: self.uploads.meant(user.name, path))
        for name in spec.server_paths:
            # A path that is also the caller's own file may be their upload; an adapter or a
            # download folder only ever lies in a folder the administrator offers.
            roots = [*self.folders, self.uploads.folder(user.name)] if name in spec.client_paths else self.folders
            self._map(args, name, lambda path, roots=roots: _inside(path, roots, self.folders))

    def may_upload(self, user: User, collection: str) -> None:
        """``AccessDenied`` unless ``user`` may send files for ``collection`` (edit it, or make it)."""
        if self._exists(collection):
            self.accounts.require(user, collection, Role.EDITOR)
        else:
            self._may_create(user, collection)

    def prepare(self, user: User, spec: Offered, args: dict[str, object]) -> None:
        """Make the collection a creating call names, with its creator as its only grantee."""
        collection = self.collection_of(spec, args)
        if spec.creates and spec.name != "create_collection":
            if not self._exists(collection):
                self._may_create(user, collection)  # deleted since the call was allowed: making it is creating
                try:
                    self.made(user, self.kb.create_collection(collection))
                    return
                except CollectionExists:
                    pass  # made by someone else since the call was allowed: their rules hold
            if spec.access in _ROLES:
                self.accounts.require(user, collection, _ROLES[spec.access])

    def made(self, user: User, info: CollectionInfo) -> None:
        """A new collection. Made by a user, it starts with no grant but theirs (they own it): none
        left from an earlier collection of its name, none given on the name before. Made by an
        administrator, the grants they gave on its name beforehand hold."""
        self._forget_conversations(info.id)
        if not user.admin:
            self.accounts.forget_collection(info.name)
            self.accounts.grant(user.name, info.name, Role.OWNER)

    def result(self, user: User, spec: Offered, args: dict[str, object], result: object,
               deleted_id: str = "") -> object:
        """``result`` as ``user`` may see it, and the grants kept in step with what the call did."""
        if spec.name == "collections" and isinstance(result, list):
            names = set(self.accounts.readable(user, [c.name for c in result if isinstance(c, CollectionInfo)]))
            return [c for c in result if isinstance(c, CollectionInfo) and c.name in names]
        if spec.name == "revision":  # a digest: the string itself names every collection
            names = self.accounts.readable(user, [c.name for c in self.kb.collections()])
            seen = result if args.get("collection") in names else ""
            return hashlib.sha256(f"{','.join(names)}|{seen}".encode()).hexdigest()[:32]
        if spec.name == "cache_stats" and not user.admin:
            return None  # the team's figures are the administrators'
        if spec.name == "create_collection" and isinstance(result, CollectionInfo):
            self.made(user, result)
        if spec.name == "rename_collection" and isinstance(result, CollectionInfo):
            self.accounts.rename_collection(str(args["name"]), result.name)
        if spec.name == "delete_collection":
            self.accounts.forget_collection(str(args["name"]))
            self._forget_conversations(deleted_id)
        return result

    def collection_id(self, name: str) -> str:
        """The id of the collection called ``name``, or "" when there is none."""
        try:
            return self.kb.store.find(name).id
        except CollectionNotFound:
            return ""

    def _exists(self, collection: str) -> bool:
        return bool(self.collection_id(collection))

    def _may_create(self, user: User, collection: str, asked: bool = False) -> None:
        """``AccessDenied`` unless ``user`` may make a collection; ``asked``: by ``create_collection``
        itself, else by a call that makes one it names (then refused in the words used for a
        collection one has no role on: whether it exists is not said)."""
        if not (user.admin or self.anyone_creates):
            if not asked:
                raise AccessDenied(f"{user.name} has no access to the collection {collection!r}.")
            raise AccessDenied("only an administrator may create a collection on this server.")
        if not collection.strip():
            raise AccessDenied("a collection needs a name.")

    def _name_free(self, user: User, name: str) -> None:
        """A name taken by a collection ``user`` cannot see is refused in the words used for any
        unusable name: the refusal must not confirm what the user may not read."""
        if self.accounts.role(user, name.strip()) is None and self._exists(name.strip()):
            raise AccessDenied(f"the name {name.strip()!r} cannot be used on this server; choose another.")

    def _forget_conversations(self, collection_id: str) -> None:
        """Every user's conversations with a collection of this id (ids follow from names)."""
        if collection_id:
            self.conversations.forget(collection_id)

    @staticmethod
    def _map(args: dict[str, object], name: str, change: Callable[[Path], Path]) -> None:
        """Apply ``change`` to each path of argument ``name`` ("options.paths": a field of one)."""
        top, _, field = name.partition(".")

        def mapped(value: object) -> object:
            if isinstance(value, Path):
                return change(value)
            if isinstance(value, list | tuple):
                return [change(p) if isinstance(p, Path) else p for p in value]
            return value

        value = args.get(top)
        if value is None:
            return
        if not field:
            args[top] = mapped(value)
        elif isinstance(value, AskOptions) and getattr(value, field) is not None:
            args[top] = dataclasses.replace(value, **{field: mapped(getattr(value, field))})


def _inside(path: Path, roots: list[Path], folders: list[Path]) -> Path:
    """``path`` when it lies inside one of ``roots`` (offered folders, perhaps the user's uploads),
    symbolic links followed; ``AccessDenied`` otherwise (``folders``: the offered ones, named)."""
    if ".." in Path(path).parts:  # resolved here after links, by abspath when indexed: never let them differ
        raise AccessDenied(f"{path} names a folder above another; give the path itself.")
    if any(within(Path(path), root.resolve()) for root in roots):  # False for a loop of links, a name too long
        return path
    offered = ", ".join(str(f) for f in folders) or "none"
    raise AccessDenied(f"{path} is not in a folder this server offers for indexing (offered: {offered}); "
                       "files of your own machine are sent to the server when you add them.")


__all__ = ["Policy", "user_id"]
