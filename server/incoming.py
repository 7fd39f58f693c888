"""What the server reads from a request before acting on it: who connected (the socket's address,
never what a header claims), whether a browser sent it from another site's page, and its JSON
body, within a size limit."""

import json

from fastapi import Request

from rag.errors import AccessDenied, BadCall
from server.refusals import Refusal


def address_of(request: Request) -> str:
    """The socket peer's address: the server is run without trusting forwarded headers, so this is
    who connected, never what a header claims. "unix" for a connection on the ``--uds`` socket; ""
    when the peer is unknown, which no ``proxies`` entry can match."""
    if request.client is not None:
        return request.client.host
    server = request.scope.get("server")
    return "unix" if isinstance(server, tuple) and isinstance(server[0], str) and server[1] is None else ""


def same_site(request: Request) -> None:
    """A browser says where a request comes from; one sent by another site's page is refused."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise AccessDenied("a request from another web site's page.")


async def json_body(request: Request, limit_kb: int) -> dict[str, object]:
    """The request's JSON object: sent as JSON (a browser cannot send that to another site
    without asking it first), from this site, within ``limit_kb``."""
    same_site(request)
    kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refusal(415, BadCall(f"the body must be sent as application/json, not {kind or 'nothing'!r}"))
    limit = limit_kb * 1024
    too_large = Refusal(413, BadCall(f"the request is over this server's limit of {limit // 1024:,} KB"))
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadCall(f"the body is not JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise BadCall("the body must be a JSON object")
    return value
