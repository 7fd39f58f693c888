"""Who is asking: the user a bearer token belongs to, or the one the browser's session cookie carries
the token of (``server.session``; only from this site's own page), or the name the intranet's
authenticating proxy vouches for in its header, believed only from the proxy's own socket address.
However a user signed in, their rights are the same: they are looked up by name."""

from fastapi import Request

from rag.errors import NotSignedIn
from server.accounts import Accounts, User
from server.config import ServerConfig
from server.incoming import address_of
from server.refusals import Refusals
from server.session import SEALED, SessionSeal, cookie_token, from_this_site


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
        vouched = request.headers.get(self._config.proxy_header)
        try:
            if vouched is not None:
                return self._vouched(vouched, address)
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                return self._accounts.authenticate(token.strip())
            kept = cookie_token(request)
            if kept is not None:
                from_this_site(request)  # a browser sends the cookie by itself: only this site's page may use it
                if kept.startswith(SEALED):  # signed in by the company's identity provider
                    return self._accounts.user(self._seal.open(kept))
            return self._accounts.authenticate(kept or "")
        except NotSignedIn as exc:
            self._refusals.sign_in(address, exc.reason)
            raise

    def has_credentials(self, request: Request) -> bool:
        """Whether the request carries anything to sign in with (a header, a token, a cookie)."""
        return any(request.headers.get(h) is not None for h in (self._config.proxy_header, "Authorization")) \
            or cookie_token(request) is not None

    def _vouched(self, vouched: str, address: str) -> User:
        """The user the proxy's header names, if it came from a trusted proxy."""
        header = self._config.proxy_header
        if not address or address not in self._config.proxies:
            raise NotSignedIn(f"the {header} header came from {address}, which is not a trusted proxy.")
        name = vouched.strip()
        if not name or len(name) > 200 or not name.isprintable():
            raise NotSignedIn(f"the proxy sent an empty or unusable {header} header.")
        return self._accounts.user(name)
