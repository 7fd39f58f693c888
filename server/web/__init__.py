"""The team's assistant in the browser: pages rendered on the server (Jinja2) and one small script
of the package's own that streams answers from ``/v1/call``, all served from files inside the
package, with nothing fetched from elsewhere (the intranet may have no internet).

``pages`` holds the views, ``strings`` the words in each language, ``pdf_pages`` the cited PDF page.
"""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.web.pages import Pages

__all__ = ["Pages", "add_web"]

# Nothing runs but the package's own script; nothing loads from elsewhere; no other site may frame the page.
# Referrer same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the page's own forms.
_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY"}


def add_web(app: FastAPI, pages: Pages) -> None:
    """The page's paths on ``app``, and the security headers on every response."""
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")

    app.add_middleware(_SecurityHeaders)

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        return await pages.home(request)

    @app.post("/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        return await pages.sign_in(request)

    @app.get("/sign-in/oidc", include_in_schema=False)
    async def oidc_start(request: Request) -> Response:
        return await pages.oidc_start(request)

    @app.get("/sign-in/oidc/callback", include_in_schema=False)
    async def oidc_finish(request: Request) -> Response:
        return await pages.oidc_finish(request)

    @app.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        return await pages.sign_out(request)

    @app.get("/web/page", include_in_schema=False)
    async def page_image(request: Request, collection: str, path: str, page: int) -> Response:
        return await pages.page_image(request, collection, path, page)

    @app.post("/web/marks", include_in_schema=False)
    async def marks(request: Request) -> Response:
        return await pages.marks(request)


class _SecurityHeaders:
    """Adds ``_HEADERS`` to every response (plain ASGI: a streamed answer passes through untouched,
    and a client going away still reaches the call as a disconnect)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, sending)
