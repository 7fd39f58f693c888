"""The page at ``/``: signing in with a personal token (or by the intranet proxy's header), the
reader of the collections granted to the user, and a cited PDF page with the passage marked.

Everything the page shows that a file or the model wrote reaches it as text: the templates escape
every value (Jinja2's autoescape), and the page's script only ever sets ``textContent``; the
Content-Security-Policy (``server.web``) runs no script but the package's own.
"""

import asyncio
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from rag.answering.schemas import shipped
from rag.errors import AccessDenied, BadCall, NotSignedIn
from rag.knowledge_base import KnowledgeBase
from rag.service import codec
from server.accounts import Accounts, Role, User
from server.audit import AuditLog
from server.config import ServerConfig
from server.incoming import address_of, json_body
from server.oidc import OpenIdSignIn, forget_pending, keep_pending
from server.refusals import Refusals
from server.session import OIDC, TOKEN, SessionSeal, cookie_value, forget_session, from_this_site, keep_session
from server.sign_in import SignIn
from server.uploads import Uploads
from server.web.pdf_pages import page_marks, page_png
from server.web.strings import LANGUAGE_COOKIE, STRINGS, language

_FORM_LIMIT = 4096  # bytes of the sign-in form: a token is 48 characters
_PASSAGE_LIMIT = 8_000  # characters of a passage to mark: a chunk is far shorter (a long one holds PDFium)
_PATH_LIMIT = 4096  # characters of a document's path
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # NUL and the other control characters: in no document's path
_KEPT_QUERY = ("collection", "lang")  # what the step from another site's link carries on


class Pages:
    """The page's views, on behalf of the user the request signs in as."""

    def __init__(self, kb: KnowledgeBase, accounts: Accounts, uploads: Uploads, sign_in: SignIn, refusals: Refusals,
                 audit: AuditLog, seal: SessionSeal, config: ServerConfig) -> None:
        self._kb = kb
        self._accounts = accounts
        self._uploads = uploads
        self._sign_in = sign_in
        self._refusals = refusals
        self._audit = audit
        self._seal = seal
        self._oidc = OpenIdSignIn(config, seal)
        self._schemas = shipped()  # the structured answers the page offers
        self._config = config
        self._templates = Environment(loader=PackageLoader("server.web", "templates"),
                                      autoescape=select_autoescape(default=True), auto_reload=False)

    async def home(self, request: Request) -> Response:
        """The reader for a signed-in user, else the sign-in form."""
        problem, ended = "", False
        if _arrived_from_elsewhere(request) and (self._cookie(request) is not None
                                                 or not self._sign_in.has_credentials(request)):
            # A link on another site (the intranet's portal, a chat): the browser kept the SameSite=Strict
            # cookie back, or (from a sibling site) sent it, which only this site's own page may use.
            # This page's own step to the same address is this site's, and carries it.
            kept = [(k, v) for k, v in request.query_params.multi_items() if k in _KEPT_QUERY]
            return self._render(request, "signed_in.html", 200, again="/" + ("?" + urlencode(kept) if kept else ""))
        if self._sign_in.has_credentials(request):
            try:
                user = await self._sign_in.user(request)
            except NotSignedIn as exc:
                problem, ended = exc.reason, self._cookie(request) is not None
            except AccessDenied as exc:  # the cookie came along a link from another site: kept, not used
                problem = exc.reason
            else:
                return await self._reader(request, user)
        response = self._render(request, "sign_in.html", 401 if problem else 200, problem=problem)
        if ended:  # a token revoked or expired, a session ended: the cookie is of no more use
            forget_session(response, request, self._config.secure_cookies)
        return response

    async def sign_in(self, request: Request) -> Response:
        """The sign-in form sent: the token kept in the session cookie, or the form again with the reason."""
        from_this_site(request, self._config.public_url)  # no other site may sign a browser in (to its own account)
        body = await request.body()
        if len(body) > _FORM_LIMIT:
            raise BadCall("the sign-in form is too large")
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0].strip()
        try:
            self._accounts.authenticate(token)
        except NotSignedIn as exc:
            self._refusals.sign_in(address_of(request), exc.reason)
            return self._render(request, "sign_in.html", 401, problem=exc.reason)
        # A new session at every sign-in (none an attacker's page could have planted is ever reused), holding
        # the token sealed: a copy of the cookie ends with the session, at sign-out, or when the token is revoked.
        response = RedirectResponse("/", status_code=303)
        keep_session(response, request, self._seal.seal(TOKEN, token, self._session_seconds),
                     self._config.secure_cookies)
        return response

    async def oidc_start(self, request: Request) -> Response:
        """Off to the company's identity provider, with this attempt remembered in the browser."""
        if not self._oidc.enabled:
            raise BadCall("this server does not sign in with an identity provider")
        url, pending = await self._oidc.start(request)
        response = RedirectResponse(url, status_code=303)
        keep_pending(response, pending, self._secure(request))
        return response

    async def oidc_finish(self, request: Request) -> Response:
        """Back from the provider: the session cookie for the user it vouches for, or the form with the reason."""
        address = address_of(request)
        try:
            name = await self._oidc.finish(request)
        except NotSignedIn as exc:
            self._refusals.sign_in(address, exc.reason)
            response = self._render(request, "sign_in.html", 401, problem=exc.reason)
        else:
            self._audit.record(name, "sign-in", detail="by the identity provider", address=address)
            # A page, not a redirect: the way here began on the provider's site, and a browser sends no
            # SameSite=Strict cookie along a redirect chain that began elsewhere; this page's own step is ours.
            response = self._render(request, "signed_in.html", 200)
            keep_session(response, request, self._seal.seal(OIDC, name, self._session_seconds),
                         self._config.secure_cookies)
        forget_pending(response, self._secure(request))
        return response

    async def sign_out(self, request: Request) -> Response:
        """End the session (a copy of its cookie is of no more use, on any replica) and forget the
        cookie; back to the sign-in form."""
        from_this_site(request, self._config.public_url)
        sealed = self._cookie(request)
        if sealed is not None:
            try:
                self._seal.end(self._seal.open(sealed, TOKEN, OIDC))
            except NotSignedIn:  # over, or never valid: nothing to end
                pass
        response = RedirectResponse("/", status_code=303)
        forget_session(response, request, self._config.secure_cookies)
        return response

    async def page_image(self, request: Request, collection: str, path: str, page: int) -> Response:
        """Page ``page`` of a PDF of ``collection``, as PNG."""
        user = await self._sign_in.user(request)
        document = await self._document(request, user, collection, path)
        png = await asyncio.to_thread(page_png, document, page)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=600"})

    async def marks(self, request: Request) -> JSONResponse:
        """Where a passage stands on a page of a PDF of a collection: ``{"width", "height", "rects"}``."""
        user = await self._sign_in.user(request)
        body = await json_body(request, self._config.max_body_kb)
        collection, path, page, text = (body.get(k) for k in ("collection", "path", "page", "text"))
        if not (isinstance(collection, str) and isinstance(path, str) and type(page) is int
                and isinstance(text, str)):
            raise BadCall("marks: collection, path and text are strings, page a number")
        if len(text) > _PASSAGE_LIMIT:
            raise BadCall(f"marks: a passage is at most {_PASSAGE_LIMIT:,} characters")
        document = await self._document(request, user, collection, path)
        found = await asyncio.to_thread(page_marks, document, page, text)
        return JSONResponse({"width": found.width, "height": found.height, "rects": found.rects})

    async def _reader(self, request: Request, user: User) -> Response:
        names = [c.name for c in await asyncio.to_thread(self._kb.collections)]
        readable = self._accounts.readable(user, names)
        asked = request.query_params.get("collection")
        selected, refused = (readable[0] if readable else ""), ""
        if asked is not None and asked not in readable:
            selected, refused = "", self._refusal(request, user, asked)
        elif asked is not None:
            selected = asked
        role = self._accounts.role(user, selected) if selected else None
        return self._render(request, "reader.html", 403 if refused else 200, user=user, collections=readable,
                            selected=selected, refused=refused, signs_out=self._cookie(request) is not None,
                            role=role.name.lower() if role else "",
                            schemas=self._schemas,
                            data={"collection": selected, "answer_tokens": self._config.web_answer_tokens,
                                  "schemas": codec.encode(self._schemas)})

    def _refusal(self, request: Request, user: User, collection: str) -> str:
        """Why ``user`` may not read ``collection`` (a name they have no role on), on the audit log."""
        try:
            self._accounts.require(user, collection, Role.READER)
        except AccessDenied as exc:
            self._refusals.refuse(user, "open", collection, exc.reason, address_of(request))
            return exc.reason
        return ""

    async def _document(self, request: Request, user: User, collection: str, path: str) -> Path:
        """The server's PDF that ``path`` names for ``user``, if it is a document of ``collection``,
        which they may read; ``AccessDenied`` or ``BadCall`` otherwise."""
        try:
            self._accounts.require(user, collection, Role.READER)
        except AccessDenied as exc:
            self._refusals.refuse(user, "page", collection, exc.reason, address_of(request))
            raise
        # The path must name the indexed file as it was indexed: no "..", whose meaning changes once a link
        # in the path is followed (the index compares names, the system follows links), no control characters.
        if len(path) > _PATH_LIMIT or _CONTROL.search(path) or ".." in re.split(r"[\\/]", path):
            raise BadCall("that is not the path of a document")
        document = self._uploads.meant(user.name, Path(path))
        if document.suffix.lower() != ".pdf":
            raise BadCall(f"{Path(path).name} is not a PDF")
        if not await asyncio.to_thread(self._kb.document_passages, document, collection):
            raise BadCall(f"{Path(path).name} is not a document of {collection!r}")
        return document

    def _cookie(self, request: Request) -> str | None:
        return cookie_value(request, self._config.secure_cookies)

    @property
    def _session_seconds(self) -> float:
        return self._config.oidc_session_hours * 3600

    def _secure(self, request: Request) -> bool:
        return self._config.secure_cookies or request.url.scheme == "https"

    def _render(self, request: Request, template: str, status: int, **values: object) -> HTMLResponse:
        """A template in the request's language; a language asked for in the query is remembered."""
        lang = language(request)
        strings = STRINGS[lang]
        page_data = values.pop("data", {})
        html = self._templates.get_template(template).render(
            lang=lang, t=strings, oidc=self._oidc.label() if self._oidc.enabled else "", data={**(page_data if isinstance(page_data, dict) else {}), "strings": strings},
            **values)
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax", path="/")
        return response


def _arrived_from_elsewhere(request: Request) -> bool:
    """Whether the browser navigated here from another site's page (a sibling's too)."""
    return (request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")
            and request.headers.get("Sec-Fetch-Mode") == "navigate")
