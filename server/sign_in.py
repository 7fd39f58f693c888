"""Who is asking: the user a bearer token belongs to, or the one the browser's sealed session names
(``server.session``; only from this site's own page), or the name the intranet's authenticating
proxy vouches for in its header, believed only from the proxy's own socket address.

However a user signed in, their grants are those of their name. An administrator's rights are the
exception: they follow a token or the proxy (both the server's own administrators' doing), never a
name the company's identity provider vouches for, since an account there may be named like a local
administrator (a user who may edit their own ``preferred_username`` could otherwise pick "admin")."""

import dataclasses

from fastapi import Request

from rag.errors import NotSignedIn
from server.accounts import Accounts, User
from server.config import ServerConfig
from server.incoming import address_of
from server.refusals import Refusals
from server.session import OIDC, TOKEN, SessionSeal, cookie_value, from_this_site

_LONGEST_NAME = 200


def usable_name(name: str) -> bool:
    """Whether a name a proxy or an identity provider sends can stand for a user here: printable,
    not too long, no spaces around it, and no leading ``@`` (which names a group in a grant)."""
    return bool(name) and len(name) <= _LONGEST_NAME and name.isprintable() and name == name.strip() \
        and not name.startswith("@")


class SignIn:
    """Finds the user behind each request; a request no user is found for is refused, and on the
    audit log (throttled)."""

    def __init__(self, accounts: Accounts, config: ServerConfig, refusals: Refusals, seal: SessionSeal) -> None:
        self._accounts = accounts
        self._config = config
        self._refusals = refusals
        self._seal = seal

    async def user(self, request: Request) -> User:  # on the event loop: a lookup of microseconds
        """The signed-in user; ``NotSignedIn`` (401) for none."""
        address = address_of(request)
        vouched = request.headers.getlist(self._config.proxy_header)
        try:
            if vouched:
                return self._vouched(vouched, address)
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                return self._accounts.authenticate(token.strip())
            sealed = cookie_value(request, self._config.secure_cookies)
            if sealed is None:
                return self._accounts.authenticate("")  # "no token was sent"
            # A browser sends the cookie by itself: only this site's page may use it.
            from_this_site(request, self._config.public_url)
            session = self._seal.open(sealed, TOKEN, OIDC)
            if session.kind == TOKEN:  # checked on every request: a revoked token ends its sessions
                return self._accounts.authenticate(session.value)
            return self._named(session.value)
        except NotSignedIn as exc:
            self._refusals.sign_in(address, exc.reason)
            raise

    def has_credentials(self, request: Request) -> bool:
        """Whether the request carries anything to sign in with (a header, a token, a cookie)."""
        return any(request.headers.get(h) is not None for h in (self._config.proxy_header, "Authorization")) \
            or cookie_value(request, self._config.secure_cookies) is not None

    def _named(self, name: str) -> User:
        """The user the identity provider vouched for: their grants and groups, not a local administrator's rights."""
        return dataclasses.replace(self._accounts.user(name), admin=False)

    def _vouched(self, vouched: list[str], address: str) -> User:
        """The user the proxy's header names, if it came from a trusted proxy and names one user."""
        header = self._config.proxy_header
        if not address or address not in self._config.proxies:
            raise NotSignedIn(f"the {header} header came from {address}, which is not a trusted proxy.")
        if len(vouched) != 1:  # a proxy that adds its header to the client's own, rather than replacing it
            raise NotSignedIn(f"the proxy sent {len(vouched)} {header} headers; it must replace the client's own.")
        name = vouched[0].strip()
        if not usable_name(name):
            raise NotSignedIn(f"the proxy sent an empty or unusable {header} header.")
        return self._accounts.user(name)
