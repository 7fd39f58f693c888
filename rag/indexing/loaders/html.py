"""HTML: visible text by blocks, split at headings, tables rendered row by row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag

from rag.documents import LoadResult, Section
from rag.indexing.loaders import tables

_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "ul", "ol",
    "dl", "dt", "dd", "pre", "blockquote", "figure", "figcaption", "address", "br", "hr", "tr",
    "body", "html", "form", "fieldset", "details", "summary",
}


def _table_lines(table: Tag) -> list[str]:
    rows = []
    has_header = False
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        cells = tr.find_all(["th", "td"], recursive=False)
        if cells and not rows and all(c.name == "th" for c in cells):
            has_header = True
        rows.append([c.get_text(" ", strip=True) for c in cells])
    if not has_header and table.find("thead"):
        has_header = True
    return tables.render(rows, has_header=has_header)


def _blocks(node: Tag) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, text)`` in document order; kind is ``heading:N`` or ``text``."""
    buffer: list[str] = []

    def flush() -> Iterator[tuple[str, str]]:
        text = " ".join("".join(buffer).split())
        buffer.clear()
        if text:
            yield "text", text

    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:
                buffer.append(str(child))
            continue
        if not isinstance(child, Tag) or child.name in _SKIP:
            continue
        if child.name in _HEADINGS:
            yield from flush()
            yield f"heading:{child.name[1]}", child.get_text(" ", strip=True)
        elif child.name == "table":
            yield from flush()
            for line in _table_lines(child):
                yield "text", line
        elif child.name == "pre":
            yield from flush()
            yield "text", child.get_text()
        elif child.name in _BLOCKS:
            yield from flush()
            yield from _blocks(child)
        else:
            buffer.append(child.get_text(" "))
    yield from flush()


def load(path: Path, result: LoadResult) -> Iterator[Section]:
    """Sections of an HTML page, one per heading; the page title heads the first."""
    with path.open("rb") as f:
        soup = BeautifulSoup(f, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    trail: list[tuple[int, str]] = []
    heading = title
    parts: list[str] = []
    offset = 0
    root = soup.body or soup
    for kind, text in _blocks(root):
        if kind.startswith("heading:"):
            if parts:
                body = "\n\n".join(parts) + "\n\n"
                yield Section(text=body, offset=offset, heading=heading)
                offset += len(body)
                parts = []
            level = int(kind.split(":")[1])
            trail = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, text)]
            heading = " › ".join(t for _, t in trail if t) or title
        parts.append(text)
    if parts:
        yield Section(text="\n\n".join(parts) + "\n", offset=offset, heading=heading)
