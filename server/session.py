"""A browser's sign-in: the session cookie, sealed by the server, and the check that a request
carrying it comes from this site's own page.

The cookie never holds a personal token as it is: it holds a *sealed session* (AES-GCM with a key in
the server's home, shared by every replica on that home), which names what the user signed in with
(their token, or the name the company's identity provider vouched for), when the session ends, and
the session's own id. A copy of the cookie is therefore worth a few hours at most, and nothing once
its user signs out: signing out ends that id on the server (``home/sessions-ended``), for every
replica. A token's session also ends the moment the token is revoked, since the token is checked on
every request. Whoever reads ``session.key`` can read the tokens in cookies and make sessions for
anyone: it is kept as closely as the accounts database (the server refuses a key others may read).

The cookie is ``HttpOnly`` (no script of the page can read it, so a script injected into the page
cannot steal it), ``SameSite=Strict`` (a browser never sends it with a request another site starts)
and, over HTTPS (or always, when the server sits behind a TLS-terminating proxy: ``secure_cookies``),
``Secure`` and named ``__Host-...`` (no other host, not even a sibling, may set it). A request
that carries it must also say, as browsers do, that it comes from this origin: ``Sec-Fetch-Site``
and ``Origin`` are checked, so that a browser too old for SameSite is still protected.
"""

import base64
import binascii
import json
import logging
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request, Response

from rag.errors import AccessDenied, NotSignedIn

log = logging.getLogger(__name__)

COOKIE = "archivist_session"
SECURE_COOKIE = "__Host-" + COOKIE  # its name over HTTPS (Secure, Path=/ and no Domain, as __Host- requires)
TOKEN, OIDC, PENDING = "token", "oidc", "pending"  # what a sealed value holds: a token, a name, an OIDC attempt
_VERSION = "s1."
_CONTEXT = b"archivist session v1"  # bound into every seal: a value sealed for anything else never opens
_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_LONGEST = 4096  # characters of a sealed value; a cookie is at most 4 KB anyway
_PRUNE_SECONDS = 60
_OWN = ("same-origin", "none")  # "none": the user typed the address or followed a bookmark


def from_this_site(request: Request, public_url: str = "") -> None:
    """``AccessDenied`` unless the browser says the request comes from this site's own page (or
    from the user's own typing); a request that says nothing (not a browser) passes. The page's
    origin is the address the request was sent to, or ``public_url`` (behind a proxy that rewrites ``Host``)."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site and site not in _OWN:
        raise AccessDenied("a request from another web site's page.")
    origin = request.headers.get("Origin")
    ours = {request.headers.get("Host", "").lower(), urlsplit(public_url).netloc.lower()} - {""}
    if origin is not None and urlsplit(origin).netloc.lower() not in ours:
        raise AccessDenied("a request from another web site's page.")


def cookie_name(request: Request, always_secure: bool) -> str:
    """The session cookie's name: over HTTPS ``__Host-``, which a browser only takes from this very
    host, so that a sibling site (``wiki.intranet.example``) cannot plant a session of its own choosing."""
    return SECURE_COOKIE if always_secure or request.url.scheme == "https" else COOKIE


def cookie_value(request: Request, always_secure: bool) -> str | None:
    """The sealed session the cookie carries; None when the browser sent none."""
    return request.cookies.get(cookie_name(request, always_secure))


def keep_session(response: Response, request: Request, sealed: str, always_secure: bool) -> None:
    """Set the session cookie on ``response``: for this site's own requests only, out of scripts' reach."""
    name = cookie_name(request, always_secure)
    response.set_cookie(name, sealed, httponly=True, samesite="strict", path="/", secure=name == SECURE_COOKIE)


def forget_session(response: Response, request: Request, always_secure: bool) -> None:
    """Clear the session cookie."""
    name = cookie_name(request, always_secure)
    response.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=name == SECURE_COOKIE)


@dataclass(frozen=True)
class Session:
    """What one sealed value holds: its ``kind`` (``TOKEN``, ``OIDC`` or ``PENDING``), the token, name
    or attempt it carries, its id, and when it ends (a Unix time)."""

    kind: str
    value: str
    id: str
    ends: int


class SessionSeal:
    """Seals sessions with a key kept in the server's home (shared by every replica on that home), so
    that only this server can have made a cookie, and none but it can read the token inside; keeps
    the ids of the sessions ended early (signed out) until they would have ended anyway."""

    def __init__(self, home: Path) -> None:
        self._aead = AESGCM(_key(home / "session.key"))
        self._ended = home / "sessions-ended"
        self._ended.mkdir(parents=True, exist_ok=True)
        self._pruned = 0.0

    def seal(self, kind: str, value: str, seconds: float) -> str:
        """A cookie value holding ``value`` of ``kind`` until ``seconds`` from now, with an id of its own."""
        plain = json.dumps({"k": kind, "v": value, "i": secrets.token_urlsafe(16),
                            "e": int(time.time() + seconds)}).encode()
        nonce = secrets.token_bytes(12)
        sealed = base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain, _CONTEXT)).rstrip(b"=")
        return _VERSION + sealed.decode()  # no "=": a cookie value that needs no quotes

    def open(self, sealed: str, *kinds: str) -> Session:
        """The session a sealed value holds, if of one of ``kinds``; ``NotSignedIn`` for one forged,
        truncated, of another kind, ended early or over."""
        fields: object = None
        if sealed.startswith(_VERSION) and len(sealed) <= _LONGEST:
            try:
                body = sealed.removeprefix(_VERSION)
                raw = base64.urlsafe_b64decode((body + "=" * (-len(body) % 4)).encode("ascii"))
                fields = json.loads(self._aead.decrypt(raw[:12], raw[12:], _CONTEXT)) if len(raw) > 28 else None
            except (ValueError, binascii.Error, InvalidTag):  # not base64, not ASCII, not ours
                fields = None
        if not (isinstance(fields, dict) and fields.get("k") in kinds and isinstance(fields.get("v"), str)
                and isinstance(fields.get("i"), str) and _ID.fullmatch(fields["i"])
                and type(fields.get("e")) is int):
            raise NotSignedIn("the session cookie is not valid; sign in again.")
        session = Session(fields["k"], fields["v"], fields["i"], fields["e"])
        if session.ends < time.time() or (self._ended / session.id).exists():
            raise NotSignedIn("the session has ended; sign in again.")
        return session

    def end(self, session: Session) -> None:
        """End ``session`` now, for every replica; now and then, forget the ids of sessions over anyway."""
        (self._ended / session.id).write_text(str(session.ends))
        now = time.time()
        if now - self._pruned < _PRUNE_SECONDS:
            return
        self._pruned = now
        for ended in self._ended.iterdir():
            try:
                if int(ended.read_text() or 0) < now:
                    ended.unlink()
            except (OSError, ValueError):  # another replica cleaning up this moment, or a stray file
                continue


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
    mode = path.stat().st_mode
    # Whoever reads the key can sign in as anyone: no account but the server's (and its group's, for
    # replicas running under accounts of one group) may read it, and none but the server's may write it.
    if os.name != "nt" and (not stat.S_ISREG(mode) or mode & 0o027):
        raise OSError(f"{path} may be read or changed by other accounts; make it the server's alone "
                      f"(chmod 600 {path}) and restart the server")
    for _ in range(50):  # another replica may be writing it this moment
        key = path.read_bytes()
        if len(key) == 32:
            return key
        time.sleep(0.01)
    raise OSError(f"{path} does not hold a 32-byte key; delete it and restart the server")
