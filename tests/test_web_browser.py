"""The team's assistant in Debian's Chromium, driven by Playwright: a user signing in, asking,
stopping, opening a cited PDF page with the passage marked, being refused a collection and signing
out; the proxy's and the identity provider's sign-in; an owner's uploads (a folder too) and grants;
a structured answer's sources per field; the views' fit at 1280 by 800 (nothing overlapping or cut,
as tests/test_screenshots.py checks the desktop's) and at 200% zoom. The server and its data are ``test_web``'s.

Set ARCHIVIST_WEB_SCREENSHOTS to a folder to keep the screenshots of the main views
(docs/screenshots/web-*.png were made so).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from samples import make_pdf

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

from test_web import CHROMIUM, HOLIDAYS, HOSTILE_NAME, PAGE_WEIGHT_LIMIT, Web, serve_web


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, embedder, starter_engine) -> Iterator[Web]:
    yield from serve_web(tmp_path_factory, embedder, starter_engine)


# -- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install .[test])")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (tests/setup-system.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox cannot run as root
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield launched
        launched.close()


def _shots() -> Path | None:
    folder = os.environ.get("ARCHIVIST_WEB_SCREENSHOTS")
    return Path(folder) if folder else None


def _shoot(page: Page, name: str) -> None:
    folder = _shots()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"web-{name}-1x.png"))


# What the fit check looks at: every visible control and block of text (not the ones kept off-screen
# for screen readers on purpose). Two of them overlap when neither holds the other and their boxes
# share more than a pixel each way; one is cut when it reaches past the viewport's left or right.
_LAID_OUT = "h1, h2, h3, label, button, input, select, textarea, p, a, th, td, li, progress, img, summary, pre, .answer"
_OVERLAPS = """selectors => {
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + JSON.stringify(
    (e.textContent || e.value || "").trim().slice(0, 30));
  const shown = [...document.querySelectorAll(selectors)].filter((e) => !e.closest(".skip, .hidden-label"))
    .map((e) => [e, e.getBoundingClientRect()]).filter(([e, r]) => r.width > 0 && r.height > 0
      && getComputedStyle(e).visibility !== "hidden");
  const width = document.documentElement.clientWidth, found = [];
  for (const [e, r] of shown) if (r.left < -0.5 || r.right > width + 0.5) found.push("cut: " + name(e));
  shown.forEach(([a, p], i) => shown.slice(i + 1).forEach(([b, q]) => {
    if (a.contains(b) || b.contains(a)) return;
    const across = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const down = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (across > 1 && down > 1) found.push("overlap: " + name(a) + " and " + name(b));
  }));
  return found;
}"""


def _overlapping_or_cut(page: Page) -> list[str]:
    """What overlaps or sticks out sideways on ``page`` (empty when the view is laid out well)."""
    return page.evaluate(_OVERLAPS, _LAID_OUT)


def _answered(page: Page) -> None:
    """Wait for the answer to end (the page's CSP forbids Playwright's string predicates: locators only)."""
    from playwright.sync_api import expect

    expect(page.locator("#status")).not_to_be_empty(timeout=180_000)
    expect(page.locator("#ask")).to_be_enabled(timeout=180_000)


def _expected_box(pdf: Path, sentence: str) -> tuple[float, float, float, float]:
    """Where ``sentence`` is on page 1, as fractions of the page (left, top, right, bottom), by PDFium's own search."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    page = document[0]
    width, height = page.get_size()
    text = page.get_textpage()
    found = text.search(sentence).get_next()
    assert found is not None
    first, count = found
    boxes = [text.get_charbox(i) for i in range(first, first + count)]
    boxes = [b for b in boxes if b[2] > b[0]]
    left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
    text.close()
    page.close()
    document.close()
    return left / width, 1 - top / height, right / width, 1 - bottom / height


def test_in_chromium_sign_in_ask_stop_cite_refuse_and_sign_out(web: Web, browser: Browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)

    page.goto(web.url)
    page.fill("#token", "arch_wrong")
    page.click("#sign-in")
    assert "not valid" in page.inner_text("[role=alert]")
    page.fill("#token", web.token)
    page.click("#sign-in")
    page.wait_for_selector("#question")
    (cookie,) = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script of the page can read the token
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0

    # A link from another site (the intranet's portal): the browser holds the Strict cookie back on
    # that step, and the page's own next step to the same address carries it.
    page.route("http://portal.example/", lambda route: route.fulfill(
        content_type="text/html", body=f'<a id="go" href="{web.url}/?collection=Handbook">Archivist</a>'))
    page.goto("http://portal.example/")
    steps: list[str] = []
    page.on("request", lambda request: steps.append(request.url) if request.is_navigation_request() else None)
    page.click("#go")
    page.wait_for_selector("#question")
    assert steps == [f"{web.url}/?collection=Handbook"] * 2, steps  # the cookieless step, then the page's own

    # First load of the page, as a browser with nothing cached fetches it: light, and all from this server.
    fresh = browser.new_context(viewport={"width": 1280, "height": 800})
    fresh.add_cookies(context.cookies())
    loading = fresh.new_page()
    requests = []
    loading.on("requestfinished", lambda request: requests.append(request))
    loading.goto(web.url, wait_until="networkidle")
    hosts = {urlsplit(r.url).netloc for r in requests}
    weight = sum(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for r in requests)
    assert hosts == {urlsplit(web.url).netloc}, hosts
    assert weight < PAGE_WEIGHT_LIMIT, weight
    print(f"first load: {len(requests)} requests, {weight:,} bytes")
    fresh.close()

    # Ask: the answer streams in; what the model wrote is text, and the sources say which were cited.
    page.fill("#question", "How many days of paid holiday do employees get?")
    page.keyboard.press("Control+Enter")
    _answered(page)
    assert page.inner_text("#status") in ("Done.", "From the team's answer cache."), page.inner_text("#status")
    assert page.inner_text("#answer").strip()
    assert page.eval_on_selector_all("#answer *", "nodes => nodes.filter(n => "
                                     "!n.matches('button.cite, span.unsupported')).length") == 0
    sources = page.inner_text("#sources")
    assert "handbook.pdf, page 1" in sources and HOSTILE_NAME in sources  # the file's name, as text
    assert page.locator("#sources img").count() == 0 and page.title() != "pwned"

    # Open the cited passage: the PDF page as the server drew it, the passage marked over the sentence.
    cite = page.locator("#answer button.cite")
    opened = cite.first if cite.count() else page.locator("#sources button", has_text="handbook.pdf")
    opened.click()
    page.wait_for_selector("#viewer-page .mark")
    expect(page.locator("#viewer-image")).to_have_js_property("complete", True)
    assert page.evaluate("document.getElementById('viewer-image').naturalWidth") > 0
    assert page.evaluate("document.activeElement.id") == "viewer-close"
    image = page.locator("#viewer-image").bounding_box()
    marks = [page.locator("#viewer-page .mark").nth(i).bounding_box()
             for i in range(page.locator("#viewer-page .mark").count())]
    assert image is not None and all(marks)
    left, top, right, bottom = _expected_box(web.pdf, HOLIDAYS[:60])
    slack = 3  # pixels
    x0, y0 = image["x"] + left * image["width"], image["y"] + top * image["height"]
    x1, y1 = image["x"] + right * image["width"], image["y"] + bottom * image["height"]
    covering = [m for m in marks if m and m["y"] - slack <= y0 and y1 <= m["y"] + m["height"] + slack]
    assert covering, (marks, (x0, y0, x1, y1))
    assert min(m["x"] for m in covering) - slack <= x0 and x1 <= max(m["x"] + m["width"] for m in covering) + slack
    page.keyboard.press("Escape")
    assert page.locator("#viewer").is_hidden()

    # Stop: the answer ends at once, and the server is free for the next question.
    page.fill("#question", "Describe every rule about holidays and parking in great detail, one by one.")
    page.click("#ask")
    expect(page.locator("#answer")).not_to_be_empty(timeout=120_000)
    started = time.monotonic()
    page.click("#stop")
    expect(page.locator("#ask")).to_be_enabled(timeout=15_000)
    assert page.inner_text("#status") == "Stopped." and time.monotonic() - started < 10
    stopped_at = len(page.inner_text("#answer"))
    time.sleep(1)
    assert len(page.inner_text("#answer")) == stopped_at  # nothing arrives after Stop
    _shoot(page, "stopped-en")

    # The conversation is kept on the server, this user's own: reopened after a reload, with its turns.
    page.reload()
    page.click("#conversations button >> text=How many days of paid holiday")
    expect(page.locator("#transcript .turn").first).to_contain_text("How many days of paid holiday do employees get?")
    assert page.locator("#transcript .turn .answer").first.inner_text().strip()

    # A collection not granted: refused on the page, and by the API the page calls.
    refused = page.goto(f"{web.url}/?collection=Board")
    assert refused is not None and refused.status == 403
    assert "alice has no access to the collection 'Board'" in page.inner_text("#refused")
    assert page.locator("#collection option", has_text="Board").count() == 0
    status = page.evaluate("""async () => (await fetch('/v1/call', {method: 'POST', headers: {'Content-Type':
        'application/json'}, body: JSON.stringify({id: 'b', call: 'search', args: {query: 'merger',
        collection: 'Board'}})})).status""")
    assert status == 403

    page.goto(web.url)
    page.click("#sign-out")
    page.wait_for_selector("#token")
    assert context.cookies() == [] and page.request.get(f"{web.url}/v1/whoami").status == 401
    context.close()


def test_in_chromium_the_proxy_signs_in_and_the_page_speaks_chinese(web: Web, browser: Browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                  extra_http_headers={"X-Remote-User": "bob"})
    page = context.new_page()
    page.goto(web.proxied)
    assert page.inner_text("#who") == "当前用户：bob" and page.get_attribute("html", "lang") == "zh-Hans"
    assert page.locator("#sign-out").count() == 0
    page.fill("#question", "员工有多少天带薪假期？")
    page.click("#ask")
    _answered(page)
    assert page.inner_text("#status") in ("完成。", "来自团队的回答缓存。"), page.inner_text("#status")
    page.click("text=English")
    assert page.inner_text("#who") == "Signed in as bob"
    page.click("text=简体中文")
    assert page.inner_text("#who") == "当前用户：bob"
    context.close()

    anonymous = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    form = anonymous.new_page()
    form.goto(web.url)
    assert form.inner_text("#sign-in") == "登录"
    anonymous.close()


def test_in_chromium_the_identity_provider_signs_in_with_the_same_rights(web: Web, browser: Browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(web.url)
    page.click("#sign-in-oidc")
    page.click("button[value='u-1234']")  # the provider's own page: carol authorizes
    page.wait_for_selector("#question")
    assert page.inner_text("#who") == "Signed in as carol"
    (cookie,) = context.cookies()
    assert cookie["value"].startswith("s1.") and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.locator("#collection option").all_inner_texts() == ["Handbook"]
    refused = page.goto(f"{web.url}/?collection=Board")
    assert refused is not None and refused.status == 403
    assert "carol has no access to the collection 'Board'" in page.inner_text("#refused")
    assert "sign-in" in "".join(e.line() for e in web.audit.entries("carol", None))
    page.click("#sign-out")
    page.wait_for_selector("#token")
    assert context.cookies() == []
    context.close()


def test_in_chromium_an_owner_uploads_sees_the_states_and_grants(web: Web, browser: Browser, tmp_path: Path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(web.url)
    page.fill("#token", web.owner_token)
    page.click("#sign-in")
    page.wait_for_selector("#upload-form")
    expect(page.locator("#documents tbody")).to_contain_text("plan.txt")
    report = make_pdf(tmp_path / "report.pdf", ["Quarterly report. Sales rose by nine percent in the north."])
    hostile = tmp_path / "<b>bold.txt"
    hostile.write_text("Notes. The canteen opens at eight.")
    page.set_input_files("#files", [str(report), str(hostile)])
    page.click("#upload")
    expect(page.locator("#upload-status")).to_have_text("Uploaded and indexed.", timeout=120_000)
    assert page.eval_on_selector_all("#uploads progress", "bars => bars.map(b => b.value)") == [1, 1]
    rows = page.locator("#documents tbody tr")
    expect(rows).to_have_count(3)
    table = page.inner_text("#documents")
    assert "report.pdf\tindexed" in table and "<b>bold.txt\tindexed" in table  # the name as text
    assert page.locator("#documents b").count() == 0

    expect(page.locator("#grants tbody")).to_contain_text("dana")
    page.fill("#grant-name", "bob")
    page.select_option("#grant-role", "reader")
    page.click("#grant")
    expect(page.locator("#grants tbody")).to_contain_text("bob")
    page.click("button[aria-label='Revoke: bob']")
    expect(page.locator("#grants tbody")).not_to_contain_text("bob")
    context.close()

    reader = browser.new_context(viewport={"width": 1280, "height": 800})
    page = reader.new_page()
    page.goto(web.url)
    page.fill("#token", web.token)
    page.click("#sign-in")
    page.wait_for_selector("#question")
    assert page.locator("#upload-form").count() == 0  # alice reads the Handbook: no upload, no grants
    status = page.evaluate("""async () => (await fetch('/v1/upload?collection=Handbook&path=/browser/x.txt',
        {method: 'PUT', body: 'x'})).status""")
    assert status == 403  # and the server refuses what the page does not offer
    reader.close()


def test_in_chromium_a_structured_answer_is_a_table(web: Web, browser: Browser):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800}, extra_http_headers={"X-Remote-User": "bob"})
    page = context.new_page()
    page.goto(web.proxied)
    page.select_option("#shape", "key_facts")
    page.fill("#question", "What are the key facts about holidays and parking?")
    page.click("#ask")
    _answered(page)
    expect(page.locator("#data table")).to_be_visible()
    assert page.locator("#data th", has_text="facts").count() == 1, page.inner_text("#status")
    # Each field says which sources bear it out, as buttons that open the passage, or "no source".
    rows = page.locator("#data table.fields > tbody > tr")
    expect(rows.first).to_be_visible()
    assert sorted(rows.locator("th").all_inner_texts()) == ["facts", "subject"]  # the schema's fields
    for where in rows.locator("td.field-sources").all():
        cites = where.locator("button.cite")
        if not cites.count():
            expect(where.locator(".no-source")).to_have_text("no source")
            continue
        assert re.fullmatch(r"(\[\d+\])+", "".join(cites.all_inner_texts())), where.inner_text()
        cites.first.click()
        expect(page.locator("#viewer")).to_be_visible()
        page.keyboard.press("Escape")
    assert _overlapping_or_cut(page) == []
    _shoot(page, "structured-en")
    context.close()


def test_in_chromium_an_editor_uploads_a_folder_with_its_paths(web: Web, browser: Browser, tmp_path: Path):
    from playwright.sync_api import expect

    trip = tmp_path / "trip"
    (trip / "sub").mkdir(parents=True)
    (trip / "plan.txt").write_text("Trip plan. The coach leaves the depot at six.")
    (trip / "sub" / "ferry.txt").write_text("Ferry notes. The ferry to Brightwater sails from pier nine.")
    (trip / "sub" / "...").write_text("Only dots.")  # a name the server could not keep
    (trip / "bell\x07.txt").write_text("A control character in the name.")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(web.url)
    page.fill("#token", web.owner_token)
    page.click("#sign-in")
    page.set_input_files("#folder", str(trip))
    page.click("#upload")
    expect(page.locator("#upload-status")).to_have_text("Uploaded and indexed.", timeout=120_000)
    expect(page.locator("#upload-progress")).to_have_js_property("value", 1)
    refused = page.locator("#uploads li.refused")
    expect(refused).to_have_count(2)
    for item in refused.all_inner_texts():
        assert ("trip/sub/..." in item or "bell" in item) and "only dots or holds a control character" in item, item
    for name in ("trip/plan.txt", "trip/sub/ferry.txt"):  # each by its path in the folder, with its state
        expect(page.locator("#documents tbody tr", has=page.get_by_role("cell", name=name, exact=True))).to_contain_text(
            "indexed")
    assert "bell" not in page.inner_text("#documents") and "..." not in page.inner_text("#documents")
    found = page.evaluate("""async (collection) => (await fetch('/v1/call', {method: 'POST', headers: {'Content-Type':
        'application/json'}, body: JSON.stringify({id: 'f', call: 'search', args: {query: 'ferry pier Brightwater',
        collection}})})).text()""", page.input_value("#collection"))
    assert "/browser/trip/sub/ferry.txt" in found, found
    context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_main_views_in_both_languages_fit_1280_by_800(web: Web, browser: Browser, lang: str, tmp_path: Path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN" if lang == "zh" else "en-GB")
    page = context.new_page()
    shots = _shots() or tmp_path

    def shot(view: str) -> None:
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # nothing sticks out sideways
        assert _overlapping_or_cut(page) == [], view
        page.screenshot(path=str(shots / f"web-{view}-{lang}-1x.png"))

    page.goto(web.url)
    shot("sign-in")
    page.fill("#token", web.token)
    page.click("#sign-in")
    page.fill("#question", "员工有多少天带薪假期？" if lang == "zh" else "How many days of paid holiday do employees get?")
    page.click("#ask")
    _answered(page)
    page.locator("#sources button", has_text="handbook.pdf").click()
    page.wait_for_selector("#viewer-page .mark")
    expect(page.locator("#viewer-image")).to_have_js_property("complete", True)
    shot("answer")
    page.click("#sign-out")
    page.fill("#token", web.owner_token)
    page.click("#sign-in")
    expect(page.locator("#grants tbody")).to_contain_text("dana")
    expect(page.locator("#documents tbody tr").first).to_be_visible()
    shot("manage")
    context.close()


def test_the_fit_check_finds_controls_that_overlap_and_text_that_is_cut(browser: Browser):
    page = browser.new_page(viewport={"width": 400, "height": 300})
    page.set_content('<button style="position:absolute;left:10px;top:10px">one</button>'
                     '<button style="position:absolute;left:20px;top:12px">two</button>'
                     '<p style="position:absolute;left:350px;top:100px;white-space:nowrap">far too long to fit</p>'
                     '<label style="position:absolute;top:200px"><input id="inside"> held</label>')
    found = _overlapping_or_cut(page)
    assert found == ['cut: p "far too long to fit"', 'overlap: button "one" and button "two"'], found
    page.close()


def test_the_page_reflows_at_200_percent_zoom(web: Web, browser: Browser):
    context = browser.new_context(viewport={"width": 640, "height": 400}, device_scale_factor=2,
                                  extra_http_headers={"X-Remote-User": "bob"})
    page = context.new_page()
    page.goto(web.proxied)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0  # 1280x800 at 200%: nothing sticks out sideways
    for selector in ("#question", "#ask", "#collection"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 640
    context.close()


def test_chromium_is_named_in_the_system_setup():
    script = (Path(__file__).parent / "setup-system.sh").read_text()
    assert re.search(r"\bchromium\b", script)
