"""The team's assistant in the browser (server/web), attacked without a browser: the sealed session
cookie (forged, truncated, replayed after sign-out, of another kind), requests from other sites on
every path that changes something, the proxy's header from elsewhere or of the wrong shape, the
identity provider's callback replayed, names colliding with an administrator or a group, page paths
that climb out or are too long, huge pages, and values reflected into the page. ``test_web_browser``
drives the same servers in Chromium.

The server is the real app over a real knowledge base (embedded Chroma, the bundled embedder, the
starter model), served by uvicorn on loopback, with a real OpenID Connect provider process.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from samples import make_pdf
from servers import free_port, serving
from test_team import _wait_for

from rag.answering.answer_cache import AnswerCache
from rag.errors import NotSignedIn
from rag.knowledge_base import KnowledgeBase
from rag.storage.vectors import VectorStore
from server.accounts import Accounts, Role
from server.app import ServerConfig, create_app
from server.audit import AuditLog
from server.session import COOKIE, OIDC, PENDING, TOKEN, Session, SessionSeal, cookie_value, keep_session

CHROMIUM = Path("/usr/bin/chromium")
HOLIDAYS = "Every employee has 25 days of paid holiday a year, booked in the HR portal."
HANDBOOK = ["Holidays. " + HOLIDAYS + " Unused days move to the next year.\n"
            "Parking. The car park behind the office is free for staff with a badge."]
HOSTILE_NAME = "<img src=x onerror=document.title='pwned'>.txt"
PAGE_WEIGHT_LIMIT = 300 * 1024


@dataclass
class Web:
    url: str  # the server for tokens
    proxied: str  # the same knowledge base behind a server that trusts 127.0.0.1 as the intranet's proxy
    token: str
    owner_token: str  # dana's: she owns the collection Projects
    pdf: Path
    audit: AuditLog
    provider: str  # a real OpenID Connect provider process (oidc-provider-mock) that vouches for carol
    home: Path  # both servers' home: their session key, as replicas share it
    accounts: Accounts


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, embedder, starter_engine) -> Iterator[Web]:
    yield from serve_web(tmp_path_factory, embedder, starter_engine)


def serve_web(tmp_path_factory: pytest.TempPathFactory, embedder, starter_engine) -> Iterator[Web]:
    """The servers of ``Web`` over a small real knowledge base (also ``test_web_browser``'s)."""
    root = tmp_path_factory.mktemp("web")
    kb = KnowledgeBase(VectorStore.embedded(root / "chroma"), embedder, root / "keyword", model=starter_engine,
                       cache=AnswerCache(root / "cache"))
    docs = root / "docs"
    docs.mkdir()
    pdf = make_pdf(docs / "handbook.pdf", HANDBOOK)
    (docs / HOSTILE_NAME).write_text("Visitors. Visitors sign in at the front desk and wear a badge.")
    assert kb.ingest([pdf, docs / HOSTILE_NAME], "Handbook").count("indexed") == 2
    (docs / "minutes.txt").write_text("Board minutes. The board approved the merger with Globex.")
    assert kb.ingest([docs / "minutes.txt"], "Board").count("indexed") == 1
    accounts = Accounts(root / "accounts.db")
    token = accounts.add_user("alice")
    accounts.grant("alice", "Handbook", Role.READER)
    accounts.grant("bob", "Handbook", Role.READER)
    accounts.grant("carol", "Handbook", Role.READER)  # known here only by the name the identity provider gives
    (docs / "plan.txt").write_text("Projects. The new office opens in spring.")
    assert kb.ingest([docs / "plan.txt"], "Projects").count("indexed") == 1
    owner_token = accounts.add_user("dana")
    accounts.grant("dana", "Projects", Role.OWNER)
    audit = AuditLog(root / "audit.jsonl")
    with _identity_provider(root / "provider.log") as provider:
        config = ServerConfig(home=root / "home", proxies=frozenset({"127.0.0.2"}), web_answer_tokens=160,
                              oidc_issuer=provider, oidc_client_id="archivist", oidc_client_secret="s3cret",
                              oidc_label="Example SSO")
        proxy_config = ServerConfig(home=root / "home", proxies=frozenset({"127.0.0.1"}), web_answer_tokens=160)
        with serving(create_app(kb, accounts, audit, config)) as url, \
                serving(create_app(kb, accounts, audit, proxy_config)) as proxied:
            yield Web(url, proxied, token, owner_token, pdf, audit, provider, root / "home", accounts)
    kb.close()
    accounts.close()


@contextlib.contextmanager
def _identity_provider(log: Path) -> Iterator[str]:
    """``oidc-provider-mock`` on a free loopback port, nonces required, with one user whose
    ``preferred_username`` is carol; its issuer URL."""
    port = free_port()
    claims = '{"sub": "u-1234", "preferred_username": "carol"}'
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--port", str(port),
                                    "--require-nonce", "true", "--user-claims", claims], stdout=out,
                                   stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{issuer}/.well-known/openid-configuration", process, timeout=60)
        yield issuer
    finally:
        process.terminate()
        process.wait(10)


# -- the session ---------------------------------------------------------------------------------


def _session(web: Web, token: str, url: str | None = None) -> str:
    """The session cookie a browser gets for signing in with ``token``."""
    signed = httpx.post(f"{url or web.url}/sign-in", data={"token": token})
    assert signed.status_code == 303, signed.text
    return signed.cookies[COOKIE]


def test_sign_in_keeps_a_sealed_session_in_a_strict_http_only_cookie_that_the_api_accepts(web: Web):
    with httpx.Client(base_url=web.url) as client:
        form = client.get("/")
        assert form.status_code == 200 and 'name="token"' in form.text
        assert "script-src 'self'" in form.headers["Content-Security-Policy"]
        refused = client.post("/sign-in", data={"token": "arch_wrong"})
        assert refused.status_code == 401 and "not valid" in refused.text and not client.cookies
        signed = client.post("/sign-in", data={"token": web.token})
        assert signed.status_code == 303
        cookie = signed.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; over HTTPS (or secure_cookies) it is Secure
        assert web.token not in cookie and web.token.removeprefix("arch_") not in cookie  # sealed, not the token
        assert client.get("/v1/whoami").json()["name"] == "alice"  # the JSON API takes the cookie
        page = client.get("/")
        assert "Signed in as alice" in page.text and 'id="sign-out"' in page.text
        copied = client.cookies[COOKIE]
        out = client.post("/sign-out")
        assert out.status_code == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
        assert client.get("/v1/whoami").status_code == 401
    # A copy of the cookie (another tab's, a stolen one) ends with the sign-out, on every replica.
    for url in (web.url, web.proxied):
        after = httpx.get(f"{url}/v1/whoami", cookies={COOKIE: copied})
        assert after.status_code == 401 and "has ended" in after.json()["detail"]
    assert httpx.get(f"{web.url}/v1/whoami", headers={"Authorization": f"Bearer {web.token}"}).status_code == 200


def test_a_cookie_holding_a_token_or_a_forged_session_is_refused(web: Web):
    sealed = _session(web, web.token)
    assert httpx.get(f"{web.proxied}/v1/whoami", cookies={COOKIE: sealed}).json()["name"] == "alice"  # a replica
    for forged in (web.token,  # the token itself, as the first version of the page kept it
                   "oidc.eyJuIjogInJvb3QiLCAiZSI6IDk5OTk5OTk5OTl9.AAAA",  # {"n": "root", ...}, unsealed
                   sealed[:-4], sealed[:40], sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB"),
                   "s1.", "s1.%%%%", "s1." + "A" * 5000, "s1.\u00e9"):
        cookie = f"{COOKIE}={forged}".encode()  # as sent, bytes of any kind
        refused = httpx.get(f"{web.url}/v1/whoami", headers=[(b"Cookie", cookie)])
        assert refused.status_code == 401 and "not valid" in refused.json()["detail"], forged
    # The page says so and clears the useless cookie.
    page = httpx.get(f"{web.url}/", cookies={COOKIE: web.token})
    assert page.status_code == 401 and 'name="token"' in page.text and "Max-Age=0" in page.headers["Set-Cookie"]


def test_a_session_ends_with_its_token(web: Web):
    token = web.accounts.add_user("erin")
    sealed = _session(web, token)
    assert httpx.get(f"{web.url}/v1/whoami", cookies={COOKIE: sealed}).json()["name"] == "erin"
    web.accounts.new_token("erin", replace=True)  # the administrator revokes erin's token
    refused = httpx.get(f"{web.url}/v1/whoami", cookies={COOKIE: sealed})
    assert refused.status_code == 401 and "not valid" in refused.json()["detail"]


def test_a_sealed_session_holds_its_kind_until_it_ends_and_cannot_be_forged(tmp_path: Path):
    seal = SessionSeal(tmp_path)
    assert (tmp_path / "session.key").stat().st_mode & 0o777 == 0o600
    value = seal.seal(OIDC, "carol", 60)
    assert seal.open(value, OIDC).value == "carol" and SessionSeal(tmp_path).open(value, OIDC).value == "carol"
    assert "carol" not in value and re.fullmatch(r"s1\.[A-Za-z0-9_-]+", value)  # a cookie value without quotes
    for forged in (value[:-2] + ("AA" if not value.endswith("AA") else "BB"), value[:-1], value[:20], "s1.", "",
                   "s1.e30", value.replace("s1.", "s2.")):
        with pytest.raises(NotSignedIn, match="not valid"):
            seal.open(forged, OIDC)
    with pytest.raises(NotSignedIn, match="not valid"):
        seal.open(value, TOKEN)  # a name is no token, nor an identity provider's attempt a session
    with pytest.raises(NotSignedIn, match="not valid"):
        seal.open(seal.seal(PENDING, "{}", 60), OIDC, TOKEN)
    other = tmp_path / "other"
    with pytest.raises(NotSignedIn, match="not valid"):
        SessionSeal(other).open(value, OIDC)  # another server's key
    with pytest.raises(NotSignedIn, match="has ended"):
        seal.open(seal.seal(OIDC, "carol", -1), OIDC)
    seal.end(Session(OIDC, "dana", "A" * 22, ends=1))  # a session that would be over by now anyway
    signed_out = seal.open(value, OIDC)
    SessionSeal(tmp_path).end(signed_out)
    with pytest.raises(NotSignedIn, match="has ended"):
        SessionSeal(tmp_path).open(value, OIDC)  # on another replica too
    assert [p.name for p in (tmp_path / "sessions-ended").iterdir()] == [signed_out.id]  # the other forgotten
    (other / "session.key").chmod(0o644)  # readable by every account on the machine: refused
    with pytest.raises(OSError, match="chmod 600"):
        SessionSeal(other)


def test_over_https_the_cookie_is_this_host_s_alone(tmp_path: Path):
    from starlette.requests import Request
    from starlette.responses import Response

    def request(scheme: str, cookie: str = "") -> Request:
        return Request({"type": "http", "scheme": scheme, "method": "GET", "path": "/", "query_string": b"",
                        "headers": [(b"host", b"archivist.intranet.example"), (b"cookie", cookie.encode())]})

    response = Response()
    keep_session(response, request("https"), "s1.x", always_secure=False)
    header = response.headers["Set-Cookie"]
    assert header.startswith("__Host-archivist_session=s1.x;") and "Secure" in header and "Path=/" in header
    assert "Domain" not in header
    # A cookie a sibling host (wiki.intranet.example) set for the whole domain is not this server's.
    assert cookie_value(request("https", "archivist_session=planted"), False) is None
    assert cookie_value(request("http", "archivist_session=planted"), True) is None  # behind a proxy ending TLS
    assert cookie_value(request("https", "__Host-archivist_session=s1.x"), False) == "s1.x"



def test_behind_a_proxy_that_rewrites_host_the_public_address_is_this_site():
    from starlette.requests import Request

    from rag.errors import AccessDenied
    from server.session import from_this_site

    def posted(origin: str) -> Request:
        return Request({"type": "http", "scheme": "http", "method": "POST", "path": "/sign-out", "query_string": b"",
                        "headers": [(b"host", b"10.0.0.5:8000"), (b"origin", origin.encode())]})

    from_this_site(posted("https://archivist.example.com"), "https://archivist.example.com")
    from_this_site(posted("http://10.0.0.5:8000"))
    for origin in ("https://evil.example", "https://archivist.example.com.evil.example", "null"):
        with pytest.raises(AccessDenied):
            from_this_site(posted(origin), "https://archivist.example.com")


# -- requests from other sites -------------------------------------------------------------------


def test_cookie_requests_from_another_site_are_refused_on_every_path(web: Web):
    sealed = _session(web, web.owner_token)
    with httpx.Client(base_url=web.url, cookies={COOKIE: sealed}) as client:
        assert client.get("/v1/whoami", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        assert client.get("/v1/whoami").status_code == 200  # no header at all: not a browser's request
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                        {"Origin": "http://intranet-wiki.example"}, {"Origin": "null"}):
            for method, path, body in (
                    ("POST", "/v1/call", {"id": "x", "call": "collections", "args": {}}),
                    ("POST", "/v1/cancel", {"id": "x"}),
                    ("POST", "/v1/uploads", {"collection": "Projects", "files": {}, "folders": []}),
                    ("PUT", "/v1/upload?collection=Projects&path=/x.txt", None),
                    ("POST", "/v1/grant", {"name": "mallory", "collection": "Projects", "role": "owner"}),
                    ("POST", "/web/marks", {"collection": "Projects", "path": "/x.pdf", "page": 1, "text": "x"}),
                    ("GET", "/v1/grants?collection=Projects", None), ("GET", "/v1/whoami", None),
                    ("POST", "/sign-out", None)):
                refused = client.request(method, path, headers=headers, json=body)
                assert refused.status_code == 403 and "another web site" in refused.json()["detail"], (path, headers)
        assert client.get("/v1/whoami").status_code == 200  # the refused sign-out ended nothing
        assert ("mallory", "owner") not in [tuple(g) for g in client.get("/v1/grants?collection=Projects").json()]
    # Nor may another site sign a browser in, to an account of its choosing.
    forced = httpx.post(f"{web.url}/sign-in", data={"token": web.token}, headers={"Origin": "http://evil.example"})
    assert forced.status_code == 403 and "Set-Cookie" not in forced.headers


def test_every_response_carries_the_security_headers(web: Web):
    sealed = _session(web, web.token)
    for response in (httpx.get(f"{web.url}/"), httpx.get(f"{web.url}/static/app.js"),
                     httpx.get(f"{web.url}/static/../server.py"), httpx.get(f"{web.url}/nothing-here"),
                     httpx.get(f"{web.url}/v1/whoami"), httpx.post(f"{web.url}/sign-in", data={"token": "x"}),
                     httpx.get(f"{web.url}/web/page", params={"collection": "Board", "path": "/x.pdf", "page": 1},
                               cookies={COOKIE: sealed})):
        assert "script-src 'self'" in response.headers["Content-Security-Policy"], response.url
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_link_from_another_site_is_followed_only_to_this_page(web: Web):
    navigate = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    step = httpx.get(f"{web.url}/", headers=navigate,
                     params={"collection": 'Handbook"><script>alert(1)</script>', "next": "//evil.example/",
                             "lang": "en"})
    assert step.status_code == 200 and "evil.example" not in step.text and "<script>alert" not in step.text
    again = re.search(r'url=([^"]*)"', step.text)
    assert again is not None and again.group(1).startswith("/?collection=Handbook%22%3E%3Cscript")
    # From a sibling site the browser sends the Strict cookie; the page takes its own step rather than use it.
    sealed = _session(web, web.token)
    for site in ("same-site", "cross-site"):
        sibling = httpx.get(f"{web.url}/", cookies={COOKIE: sealed},
                            headers={**navigate, "Sec-Fetch-Site": site})
        assert sibling.status_code == 200 and 'http-equiv="refresh"' in sibling.text and "alice" not in sibling.text


# -- who signs in --------------------------------------------------------------------------------


def test_the_proxy_s_header_signs_in_on_the_page_only_from_the_proxy(web: Web):
    proxy = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    page = proxy.get(f"{web.url}/", headers={"X-Remote-User": "bob"})
    assert page.status_code == 200 and "Signed in as bob" in page.text
    assert 'id="sign-out"' not in page.text  # the intranet signs people out, not this page
    forged = httpx.get(f"{web.url}/", headers={"X-Remote-User": "bob"})  # not from the proxy: the form again
    assert forged.status_code == 401 and "not a trusted proxy" in forged.text
    where = {"collection": "Handbook", "path": str(web.pdf), "page": 1}
    assert httpx.get(f"{web.url}/web/page", params=where, headers={"X-Remote-User": "bob"}).status_code == 401
    assert proxy.get(f"{web.url}/web/page", params=where, headers={"X-Remote-User": "bob"}).status_code == 200
    web.accounts.join("hr", "dana")
    web.accounts.grant("@hr", "Board", Role.READER)
    for name in ("@hr", "x" * 201):  # a group's name would get the group's grants
        refused = proxy.get(f"{web.url}/v1/whoami", headers={"X-Remote-User": name})
        assert refused.status_code == 401 and "unusable" in refused.json()["detail"], name
    # A proxy that adds its header after the client's own: the client's would be read first.
    twice = proxy.get(f"{web.url}/v1/whoami", headers=[("X-Remote-User", "root"), ("X-Remote-User", "bob")])
    assert twice.status_code == 401 and "2 X-Remote-User headers" in twice.json()["detail"]


def test_an_administrator_s_rights_do_not_follow_a_name_the_identity_provider_vouches_for(web: Web):
    root = web.accounts.add_user("root", admin=True)
    vouched = SessionSeal(web.home).seal(OIDC, "root", 60)  # as the callback seals an IdP user named root
    who = httpx.get(f"{web.url}/v1/whoami", cookies={COOKIE: vouched}).json()
    assert who["name"] == "root" and who["admin"] is False
    assert httpx.get(f"{web.url}/v1/whoami", cookies={COOKIE: _session(web, root)}).json()["admin"] is True


def _provider_callback(web: Web, client: httpx.Client, sub: str) -> str:
    """Through the provider's own page as ``sub``: the callback address it sends the browser to."""
    out = client.get("/sign-in/oidc")
    assert out.status_code == 303
    back = httpx.post(out.headers["Location"], data={"sub": sub})
    assert back.status_code == 302, back.text
    return back.headers["Location"]


def test_the_identity_provider_s_callback_is_used_once_and_its_names_are_checked(web: Web):
    with httpx.Client(base_url=web.url) as client:
        callback = _provider_callback(web, client, "u-1234")
        pending = client.cookies["archivist_oidc"]
        signed = client.get(callback)
        assert signed.status_code == 200 and COOKIE in signed.cookies
        assert client.get("/v1/whoami").json() == {"name": "carol", "admin": False, "groups": []}
        # The same code and attempt again (a callback address from the history, a proxy's log): refused.
        replayed = httpx.get(callback, cookies={"archivist_oidc": pending})
        assert replayed.status_code == 401 and "twice" in replayed.text and COOKIE not in replayed.cookies
    for sub, claims in (("u-group", {"preferred_username": "@hr"}), ("u-spaces", {"preferred_username": " "}),
                        ("u-none", {"email": "dana@example.com"})):
        assert httpx.put(f"{web.provider}/users/{sub}", json=claims).status_code == 204
        with httpx.Client(base_url=web.url) as client:
            refused = client.get(_provider_callback(web, client, sub))
            assert refused.status_code == 401 and "no usable &#39;preferred_username&#39;" in refused.text, sub


def test_a_forged_or_unasked_for_identity_provider_sign_in_is_refused(web: Web):
    unasked = httpx.get(f"{web.url}/sign-in/oidc/callback", params={"code": "x", "state": "y"})
    assert unasked.status_code == 401 and "own request" in unasked.text
    forged = '{"s": "y", "n": "n", "v": "v", "e": 9999999999}'  # the first version's unsealed attempt
    assert httpx.get(f"{web.url}/sign-in/oidc/callback", params={"code": "x", "state": "y"},
                     cookies={"archivist_oidc": base64.urlsafe_b64encode(forged.encode()).decode()}).status_code == 401
    with httpx.Client(base_url=web.url) as client:
        out = client.get("/sign-in/oidc")
        assert out.status_code == 303 and out.headers["Location"].startswith(web.provider + "/oauth2/authorize?")
        pending = out.headers["Set-Cookie"]
        assert "HttpOnly" in pending and "SameSite=lax" in pending and "Path=/sign-in/oidc/callback" in pending
        assert "code_challenge_method=S256" in out.headers["Location"] and "nonce=" in out.headers["Location"]
        wrong_state = client.get("/sign-in/oidc/callback", params={"code": "x", "state": "\u00e9t\u00e9"})
        assert wrong_state.status_code == 401  # not a crash on a state that is not ASCII


# -- page data -----------------------------------------------------------------------------------


def test_names_written_by_users_and_files_are_escaped_on_the_page(web: Web):
    with httpx.Client(base_url=web.url, cookies={COOKIE: _session(web, web.token)}) as client:
        page = client.get("/", params={"collection": "<script>alert(1)</script>"})
        assert page.status_code == 403
        assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        shown = client.get("/")
        assert HOSTILE_NAME not in shown.text and "</script><script" not in shown.text


def test_a_page_image_is_only_rendered_for_a_pdf_of_a_collection_one_reads(web: Web):
    with httpx.Client(base_url=web.url, cookies={COOKIE: _session(web, web.token)}) as client:
        def page(path: str, number: int | str = 1, collection: str = "Handbook") -> httpx.Response:
            return client.get("/web/page", params={"collection": collection, "path": path, "page": number})

        shown = page(str(web.pdf))
        assert shown.status_code == 200 and shown.content.startswith(b"\x89PNG")
        assert page("/etc/hosts.pdf").status_code == 400
        assert "not a document of 'Handbook'" in page("/etc/hosts.pdf").json()["detail"]
        assert page(str(web.pdf), collection="Board").status_code == 403
        climbing = str(web.pdf.parent / ".." / web.pdf.parent.name / web.pdf.name)  # indexed, once ".." is undone
        for path in (climbing, str(web.pdf) + "\x00.pdf", "/" + "a" * 5000 + ".pdf", "../../etc/passwd.pdf",
                     str(web.pdf.parent / HOSTILE_NAME), "relative.pdf", "/uploads/../../session.key.pdf"):
            refused = page(path)
            assert refused.status_code in (400, 403) and "PNG" not in refused.text, path
            assert not refused.content.startswith(b"\x89PNG")
        for number in (0, -1, 10**30, "1e9", "one"):
            assert page(str(web.pdf), number).status_code in (400, 422), number
        marks = {"collection": "Handbook", "path": str(web.pdf), "page": 1, "text": HOLIDAYS}
        assert client.post("/web/marks", json=marks).json()["rects"]
        for wrong in ({"page": True}, {"page": 1.0}, {"text": "x" * 8_001}, {"path": climbing}):
            assert client.post("/web/marks", json={**marks, **wrong}).status_code == 400, wrong


def test_a_huge_page_is_rendered_small(tmp_path: Path):
    import pypdfium2
    from PIL import Image

    from server.web.pdf_pages import page_png

    poster = pypdfium2.PdfDocument.new()
    poster.new_page(14_400, 14_400)  # 200 inches a side: 21,600 pixels at the page's usual scale
    poster.save(tmp_path / "poster.pdf")
    poster.close()
    image = Image.open(io.BytesIO(page_png(tmp_path / "poster.pdf", 1)))
    assert max(image.size) <= 3000


def test_an_identity_provider_s_discovery_document_for_another_issuer_is_refused(tmp_path: Path):
    import asyncio

    from fastapi import FastAPI

    from server.oidc import OpenIdSignIn

    provider = FastAPI()
    documents = [["not", "an", "object"], {"issuer": "http://elsewhere.example", "authorization_endpoint": "x",
                                           "token_endpoint": "x", "jwks_uri": "x"}]

    @provider.get("/.well-known/openid-configuration")
    def discovery() -> object:
        return documents.pop(0)

    with serving(provider) as issuer:
        sign_in = OpenIdSignIn(ServerConfig(home=tmp_path, oidc_issuer=issuer, oidc_client_id="archivist"),
                               SessionSeal(tmp_path))
        for _ in range(2):
            with pytest.raises(NotSignedIn, match="not for this issuer"):
                asyncio.run(sign_in._metadata())
