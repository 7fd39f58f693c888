"""Signing in with the company's identity provider: OpenID Connect's authorization-code flow with
PKCE and a nonce (Authlib's OAuth 2 client), the ID token checked with the provider's published keys
(joserfc, asymmetric algorithms only): its issuer, audience (and authorized party), nonce, subject
and lifetime, all required.

What the flow must remember between the trip out and the trip back (state, nonce, PKCE verifier)
is kept in the browser, sealed by the server (``server.session``) in a short-lived HttpOnly cookie of
this server's (``SameSite=Lax``: the way back is a navigation from the provider's site), so that any
replica can finish what another began. An attempt signs someone in once: then it is ended, so a
replayed callback (its code and its cookie) is refused even by a provider that took a code twice.

A user's name is the ID token's ``oidc_user_claim``. Choose a claim the provider's users cannot
edit: the user gets every grant of the local user of that name (``preferred_username`` is safe only
where the provider does not let users change it; with ``email`` the address must be verified).
Administrators' rights never follow a name the provider vouches for (``server.sign_in``).
"""

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
from server.session import PENDING as PENDING_KIND
from server.session import Session, SessionSeal
from server.sign_in import usable_name

log = logging.getLogger(__name__)

PENDING = "archivist_oidc"
CALLBACK = "/sign-in/oidc/callback"
_PENDING_SECONDS = 600  # the user has ten minutes at the provider's page
_DISCOVERY_SECONDS = 3600
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
# Signatures an ID token may carry: the provider's published public keys, never a shared secret or "none".
_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OpenIdSignIn:
    """The relying party: sends the browser to the provider, and takes the name it vouches for back."""

    def __init__(self, config: ServerConfig, seal: SessionSeal) -> None:
        self._config = config
        self._seal = seal
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
        pending = json.dumps({"s": state, "n": nonce, "v": verifier})
        return url, self._seal.seal(PENDING_KIND, pending, _PENDING_SECONDS)

    async def finish(self, request: Request) -> str:
        """The name of the user the provider sent back; ``NotSignedIn`` for anything amiss."""
        attempt, pending = self._pending(request.cookies.get(PENDING, ""))
        error = request.query_params.get("error")
        if error:
            raise NotSignedIn(f"the identity provider did not sign you in ({error[:100]}).")
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        if not code or not secrets.compare_digest(state.encode(), pending["s"].encode()):  # bytes: any characters
            raise NotSignedIn("the sign-in came back without this browser's own request; try again.")
        metadata = await self._metadata()
        try:
            async with self._client(request) as client:
                token = await client.fetch_token(str(metadata["token_endpoint"]), code=code,
                                                 code_verifier=pending["v"])
            async with httpx.AsyncClient(timeout=10) as http:
                keys = KeySet.import_key_set((await http.get(str(metadata["jwks_uri"]))).raise_for_status().json())
            claims = jwt.decode(str(token["id_token"]), keys, algorithms=_ALGORITHMS).claims
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": self._config.oidc_issuer},
                                  aud={"essential": True, "value": self._config.oidc_client_id},
                                  nonce={"essential": True, "value": pending["n"]},
                                  sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                                  leeway=60).validate(claims)
            _check_authorized_party(claims, self._config.oidc_client_id)
        except (httpx.HTTPError, JoseError, KeyError, TypeError, ValueError) as exc:  # ValueError: JSON's too
            log.warning("OpenID Connect sign-in failed: %s", exc)
            raise NotSignedIn(f"the identity provider's answer could not be checked ({type(exc).__name__}).") from None
        claim = self._config.oidc_user_claim
        name = claims.get(claim)
        if not isinstance(name, str) or not usable_name(name.strip()):
            raise NotSignedIn(f"the identity provider sent no usable {claim!r}.")
        if claim == "email" and claims.get("email_verified") is not True:
            raise NotSignedIn("the identity provider has not verified this e-mail address.")
        # Ended once it has signed someone in (not before: nobody could then end attempts by the thousand
        # without ever signing in at the provider), so its code and cookie replayed sign nobody in.
        self._seal.end(attempt)
        return name.strip()

    def _pending(self, value: str) -> tuple[Session, dict[str, str]]:
        """The attempt the cookie remembers, and its state, nonce and verifier; ``NotSignedIn`` for none,
        a forged one, one that signed someone in before, or one too old."""
        try:
            attempt = self._seal.open(value, PENDING_KIND)
        except NotSignedIn:
            raise NotSignedIn("the sign-in came back without this browser's own request (or too late, or "
                              "twice); try again.") from None
        pending = json.loads(attempt.value)  # sealed by this server: its own shape
        return attempt, {k: str(pending[k]) for k in "snv"}

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
            # The document names the addresses the user and their codes go to: its own shape, and its issuer ours.
            if not (isinstance(found, dict) and found.get("issuer") == self._config.oidc_issuer
                    and all(isinstance(found.get(k), str) for k in _ENDPOINTS)):
                raise NotSignedIn("the identity provider's discovery document is not for this issuer or incomplete.")
            self._discovered = (time.monotonic(), found)
        return self._discovered[1]


def keep_pending(response: Response, value: str, secure: bool) -> None:
    """Remember a sign-in attempt for the way back from the provider (only the callback sees it)."""
    response.set_cookie(PENDING, value, max_age=_PENDING_SECONDS, httponly=True, samesite="lax", path=CALLBACK,
                        secure=secure)


def forget_pending(response: Response, secure: bool) -> None:
    response.delete_cookie(PENDING, path=CALLBACK, httponly=True, samesite="lax", secure=secure)


def _check_authorized_party(claims: dict[str, object], client_id: str) -> None:
    """An ID token for several audiences must name this server as the party it was issued to."""
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise ValueError("the ID token was issued to another party")
