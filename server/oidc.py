"""Signing in with the company's identity provider: OpenID Connect's authorization-code flow with
PKCE and a nonce (Authlib's OAuth 2 client), the ID token checked with the provider's published keys
(joserfc): its issuer, audience, nonce and lifetime.

What the flow must remember between the trip out and the trip back (state, nonce, PKCE verifier)
is kept in the browser, in a short-lived HttpOnly cookie of this server's (``SameSite=Lax``: the way
back is a navigation from the provider's site), so that any replica can finish what another began.
A user's name is the ID token's ``oidc_user_claim``; their rights are those of that name, however
they signed in.
"""

import base64
import json
import logging
import secrets
import time

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from fastapi import Request, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from rag.errors import NotSignedIn
from server.config import ServerConfig

log = logging.getLogger(__name__)

PENDING = "archivist_oidc"
CALLBACK = "/sign-in/oidc/callback"
_PENDING_SECONDS = 600  # the user has ten minutes at the provider's page
_DISCOVERY_SECONDS = 3600


class OpenIdSignIn:
    """The relying party: sends the browser to the provider, and takes the name it vouches for back."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._discovered: tuple[float, dict[str, object]] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._config.oidc_issuer)

    async def start(self, request: Request) -> tuple[str, str]:
        """Where to send the browser, and the cookie value that remembers this attempt."""
        metadata = await self._metadata()
        state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
        async with self._client(request) as client:
            url, _ = client.create_authorization_url(str(metadata["authorization_endpoint"]), state=state,
                                                     code_verifier=verifier, nonce=nonce)
        pending = {"s": state, "n": nonce, "v": verifier, "e": int(time.time() + _PENDING_SECONDS)}
        return url, base64.urlsafe_b64encode(json.dumps(pending).encode()).decode()

    async def finish(self, request: Request) -> str:
        """The name of the user the provider sent back; ``NotSignedIn`` for anything amiss."""
        pending = _pending(request.cookies.get(PENDING, ""))
        error = request.query_params.get("error")
        if error:
            raise NotSignedIn(f"the identity provider did not sign you in ({error[:100]}).")
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        if not code or not secrets.compare_digest(state, pending["s"]):
            raise NotSignedIn("the sign-in came back without this browser's own request; try again.")
        metadata = await self._metadata()
        try:
            async with self._client(request) as client:
                token = await client.fetch_token(str(metadata["token_endpoint"]), code=code,
                                                 code_verifier=pending["v"])
            async with httpx.AsyncClient(timeout=10) as http:
                keys = KeySet.import_key_set((await http.get(str(metadata["jwks_uri"]))).raise_for_status().json())
            claims = jwt.decode(str(token["id_token"]), keys).claims
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": self._config.oidc_issuer},
                                  aud={"essential": True, "value": self._config.oidc_client_id},
                                  nonce={"essential": True, "value": pending["n"]}).validate(claims)
        except (httpx.HTTPError, JoseError, KeyError, ValueError) as exc:
            log.warning("OpenID Connect sign-in failed: %s", exc)
            raise NotSignedIn(f"the identity provider's answer could not be checked ({type(exc).__name__}).") from None
        name = claims.get(self._config.oidc_user_claim)
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or not name.isprintable():
            raise NotSignedIn(f"the identity provider sent no usable {self._config.oidc_user_claim!r}.")
        return name.strip()

    def label(self) -> str:
        """The provider's name on the sign-in button."""
        return self._config.oidc_label or httpx.URL(self._config.oidc_issuer).host

    def _client(self, request: Request) -> AsyncOAuth2Client:
        base = self._config.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        return AsyncOAuth2Client(self._config.oidc_client_id, self._config.oidc_client_secret,
                                 scope="openid profile email", redirect_uri=base + CALLBACK,
                                 code_challenge_method="S256", timeout=10)

    async def _metadata(self) -> dict[str, object]:
        """The provider's discovery document, fetched once an hour at most."""
        if self._discovered is None or time.monotonic() - self._discovered[0] > _DISCOVERY_SECONDS:
            url = self._config.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                async with httpx.AsyncClient(timeout=10) as http:
                    found = (await http.get(url)).raise_for_status().json()
            except (httpx.HTTPError, ValueError) as exc:
                raise NotSignedIn(f"the identity provider cannot be reached ({type(exc).__name__}).") from None
            self._discovered = (time.monotonic(), found)
        return self._discovered[1]


def keep_pending(response: Response, value: str, secure: bool) -> None:
    """Remember a sign-in attempt for the way back from the provider (only the callback sees it)."""
    response.set_cookie(PENDING, value, max_age=_PENDING_SECONDS, httponly=True, samesite="lax", path=CALLBACK,
                        secure=secure)


def forget_pending(response: Response, secure: bool) -> None:
    response.delete_cookie(PENDING, path=CALLBACK, httponly=True, samesite="lax", secure=secure)


def _pending(value: str) -> dict[str, str]:
    """The attempt the cookie remembers; ``NotSignedIn`` for none, a forged one, or one too old."""
    try:
        pending = json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        pending = None
    if not isinstance(pending, dict) or not all(isinstance(pending.get(k), str) for k in "snv"):
        raise NotSignedIn("the sign-in came back without this browser's own request; try again.")
    if not isinstance(pending.get("e"), int) or pending["e"] < time.time():
        raise NotSignedIn("the sign-in took too long; try again.")
    return {k: pending[k] for k in "snv"}
