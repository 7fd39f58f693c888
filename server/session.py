"""A browser's sign-in: the cookie that carries the user's personal token, and the check that a
request carrying it comes from this site's own page.

The cookie is ``HttpOnly`` (no script of the page can read it, so a script injected into the page
cannot steal it), ``SameSite=Strict`` (a browser never sends it with a request another site starts)
and ``Secure`` over HTTPS (or always, when the server sits behind a TLS-terminating proxy). A request
that carries it must also say, as browsers do, that it comes from this origin: ``Sec-Fetch-Site``
and ``Origin`` are checked, so that a browser too old for SameSite is still protected.

A user signed in by the company's identity provider (``server.oidc``) has no token of ours: their
cookie carries their name and when it expires, sealed with the server's own key (``SessionSeal``).
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request, Response

from rag.errors import AccessDenied, NotSignedIn

COOKIE = "archivist_session"
SEALED = "oidc."  # a sealed session's prefix; a token's is ``arch_``
_OWN = ("same-origin", "none")  # "none": the user typed the address or followed a bookmark


def from_this_site(request: Request) -> None:
    """``AccessDenied`` unless the browser says the request comes from this site's own page (or
    from the user's own typing); a request that says nothing (not a browser) passes."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site and site not in _OWN:
        raise AccessDenied("a request from another web site's page.")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("Host", "").lower():
        raise AccessDenied("a request from another web site's page.")


def cookie_token(request: Request) -> str | None:
    """The token the session cookie carries; None when the browser sent none."""
    return request.cookies.get(COOKIE)


def keep_token(response: Response, request: Request, token: str, always_secure: bool) -> None:
    """Set the session cookie on ``response``: for this site's own requests only, out of scripts' reach."""
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=always_secure or request.url.scheme == "https")


def forget_token(response: Response, request: Request, always_secure: bool) -> None:
    """Clear the session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=always_secure or request.url.scheme == "https")


class SessionSeal:
    """Seals a user's name and the session's end with a key kept in the server's home (shared by
    every replica on that home), so that only this server can have made the cookie."""

    def __init__(self, key_file: Path) -> None:
        self._key = _key(key_file)

    def seal(self, name: str, seconds: float) -> str:
        """A cookie value naming ``name`` until ``seconds`` from now."""
        body = _b64(json.dumps({"n": name, "e": int(time.time() + seconds)}).encode())
        return f"{SEALED}{body}.{_b64(self._mac(body))}"

    def open(self, value: str) -> str:
        """The name a sealed cookie value carries; ``NotSignedIn`` for one forged or expired."""
        body, _, mac = value.removeprefix(SEALED).partition(".")
        try:
            good = hmac.compare_digest(base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)), self._mac(body))
            fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) if good else {}
        except ValueError:
            good, fields = False, {}
        name, end = (fields.get("n"), fields.get("e")) if isinstance(fields, dict) else (None, None)
        if not good or not isinstance(name, str) or not isinstance(end, int):
            raise NotSignedIn("the session cookie is not valid; sign in again.")
        if end < time.time():
            raise NotSignedIn("the session has ended; sign in again.")
        return name

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key(path: Path) -> bytes:
    """The key in ``path``, made (readable by the server's account alone) by the first replica to need it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(32))
    for _ in range(50):  # another replica may be writing it this moment
        key = path.read_bytes()
        if len(key) == 32:
            return key
        time.sleep(0.01)
    raise OSError(f"{path} does not hold a 32-byte key; delete it and restart the server")
