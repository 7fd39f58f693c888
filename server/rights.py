"""Who the signed-in user is, and who may do what with a collection: its owner's view of the grants
(``/v1/grants``) and their changes to them (``/v1/grant``), each change on the audit log."""

from fastapi import Request

from rag.errors import AccessDenied, BadCall
from server.accounts import Accounts, Role, User
from server.audit import AuditLog, clipped
from server.config import ServerConfig
from server.incoming import address_of, json_body
from server.refusals import Refusals


class Rights:
    """The user's own account, and the grants of the collections they own."""

    def __init__(self, accounts: Accounts, audit: AuditLog, refusals: Refusals, config: ServerConfig) -> None:
        self._accounts = accounts
        self._audit = audit
        self._refusals = refusals
        self._config = config

    def whoami(self, user: User) -> dict[str, object]:
        """The user's name, whether they administer the server, and their groups."""
        return {"name": user.name, "admin": user.admin, "groups": sorted(user.groups)}

    def grants(self, request: Request, user: User, collection: str) -> list[list[str]]:
        """Who may do what with ``collection``, as ``[subject, role]`` pairs: for its owners only."""
        self._require(user, collection, Role.OWNER, "grants", request)
        return [[subject, role.name.lower()] for subject, _, role in self._accounts.grants(collection)]

    async def grant(self, request: Request, user: User) -> dict[str, bool]:
        """Give a user or a group (``@name``) a role on a collection the user owns, or (role null) take it away."""
        body = await json_body(request, self._config.max_body_kb)
        subject, collection, role = body.get("name"), body.get("collection"), body.get("role")
        if not isinstance(subject, str) or not isinstance(collection, str) or not (role is None or isinstance(role, str)):
            raise BadCall("grant: name and collection are strings, role a string or null")
        if not subject.strip() or subject != subject.strip() or len(subject) > 200 or not subject.isprintable():
            raise BadCall(f"{clipped(subject)!r} is not a user's or a group's name")
        self._require(user, collection, Role.OWNER, "grant", request)
        if role is None:
            done = self._accounts.revoke(subject, collection)
        else:
            self._accounts.grant(subject, collection, Role.named(role))
            done = True
        self._audit.record(user.name, "grant" if role else "revoke", collection, f"{subject} {role or ''}".strip(),
                           "ok", address_of(request))
        return {"changed": done}

    def _require(self, user: User, collection: str, role: Role, action: str, request: Request) -> None:
        """``user`` holds ``role`` on ``collection``; a refusal is on the audit log as ``action``."""
        try:
            self._accounts.require(user, collection, role)
        except AccessDenied as exc:
            self._refusals.refuse(user, action, collection, exc.reason, address_of(request))
            raise
