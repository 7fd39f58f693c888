"""Ruled tables on PDF pages, kept as tables: each row a line that carries its column headers.

pypdf reads a table as its cells one after another, the headers far from the values.
pdfplumber's table finder (the "lines" strategy: cells bounded by drawn rules) finds the
grid; a cell merged across rows or columns gives its text to every row and column it spans.
pdfplumber is slow next to pypdf, so it runs only on pages PDFium finds drawn lines on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pypdfium2.raw as pdfium_c

from rag.indexing.loaders import tables
from rag.indexing.loaders.pdfium_lock import PDFIUM

if TYPE_CHECKING:
    import pdfplumber
    import pypdfium2
    from pdfplumber.page import Page
    from pdfplumber.table import Table

log = logging.getLogger(__name__)

# A page drawing more paths than this is a chart or a drawing, not a table: finding a grid
# among them would cost seconds for nothing.
MAX_PATHS = 2_000
_MIN_EDGE = 8.0  # points: shorter marks (dashes, bullets, underlined letters) bound no cell

Bbox = tuple[float, float, float, float]
SOFT_HYPHEN = "\ufffe"  # PDFium's mark for a word hyphenated at a line's end


def has_rules(page: pypdfium2.PdfPage) -> bool:
    """Whether the page draws what could bound a table's cells: a box (or a path spanning an
    area, which may be a whole grid), or at least two horizontal and two vertical lines. A
    rule under a heading, a footnote line, or only horizontal rules (which the finder cannot
    close into cells) are not."""
    horizontal = vertical = 0
    for count, path in enumerate(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH]), start=1):
        if count > MAX_PATHS:
            return False
        left, bottom, right, top = path.get_bounds()
        width, height = right - left, top - bottom
        if width >= _MIN_EDGE and height >= _MIN_EDGE:
            return True
        horizontal += width >= _MIN_EDGE
        vertical += height >= _MIN_EDGE
        if horizontal >= 2 and vertical >= 2:
            return True
    return False


class Reader:
    """pdfplumber opened once per file, and only if a page has rules."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pdf: pdfplumber.PDF | None = None
        self._failed = False
        self._header: list[str] | None = None  # the last table's, for one that goes on over the next page

    def page_text(self, number: int, page: pypdfium2.PdfPage) -> str | None:
        """Page ``number``'s text with its ruled tables as header-carrying rows, or ``None``
        when the page has no such table (or pdfplumber cannot read it: the text layer stands).

        The text around the tables is PDFium's, in the order the page writes it (so the two
        columns of a paper stay apart); each table stands where its first cell was written."""
        if self._failed:
            return None
        try:
            if self._pdf is None:
                import pdfplumber

                self._pdf = pdfplumber.open(self._path)
            plumbed = self._pdf.pages[number - 1]
            try:
                found = self._tables(plumbed)
            finally:
                plumbed.close()
            return _around(page, found) if found else None
        except Exception as exc:  # noqa: BLE001 - pdfminer raises many types on a file pypdf or PDFium read; the text layer stands
            log.warning("%s page %d: tables not read: %s", self._path, number, exc)
            self._failed = self._pdf is None
            return None

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()

    def _tables(self, page: Page) -> list[tuple[Bbox, str]]:
        """The page's ruled tables, top to bottom: (box, rows as lines)."""
        found = sorted(page.find_tables(), key=lambda t: (t.bbox[1], t.bbox[0]))
        found = [t for t in found if len(t.rows) >= 2 and len(t.rows[0].cells) >= 2]
        if not found:
            self._header = None
        return [(table.bbox, "\n".join(self._rows(table))) for table in found]

    def _rows(self, table: Table) -> list[str]:
        grid = _grid(table)
        header = grid[0]
        if any(_numeric(cell) for cell in header):
            # A first row of figures is data: the table goes on from one on the page before.
            carried = self._header if self._header and len(self._header) == len(header) else None
            lines = [tables.row_line(carried, row) if carried else " | ".join(c for c in row if c) for row in grid]
        else:
            lines = tables.render(grid)
            carried = header
        self._header = carried
        return [line for line in lines if line]


def _grid(table: Table) -> list[list[str]]:
    """The table's cells row by row, a merged cell's text in every row and column it spans."""
    texts: dict[Bbox, str] = {}
    for row, values in zip(table.rows, table.extract(), strict=True):
        for bbox, value in zip(row.cells, values, strict=True):
            if bbox is not None:
                texts[bbox] = tables.clean_cell(value)
    xs = sorted({cell[0] for cell in table.cells})
    grid = []
    for row in table.rows:
        top = next(cell[1] for cell in row.cells if cell is not None)
        grid.append([texts[cell] if cell is not None else _spanning(texts, x, top) for cell, x in zip(row.cells, xs, strict=True)])
    return grid


def _spanning(texts: dict[Bbox, str], x: float, top: float) -> str:
    """The text of the merged cell that covers the point (``x``, ``top``)."""
    for (x0, y0, x1, y1), text in texts.items():
        if x0 <= x < x1 and y0 <= top < y1:
            return text
    return ""


def _around(page: pypdfium2.PdfPage, found: list[tuple[Bbox, str]]) -> str:
    """The page's text in written order, each table's cells replaced by its rows."""
    with PDFIUM:
        return _around_locked(page, found)


def _around_locked(page: pypdfium2.PdfPage, found: list[tuple[Bbox, str]]) -> str:
    left, _, _, top = page.get_mediabox()
    text = page.get_textpage()
    try:
        parts: list[str] = []
        placed: set[int] = set()
        start, inside = 0, -1  # the run of chars being gathered, and the table it is in (-1: none)
        count = text.count_chars()
        for index in range(count + 1):
            table = -1
            if index < count:
                if pdfium_c.FPDFText_IsGenerated(text, index) == 1:
                    continue  # a space or line break PDFium added goes with its run
                x0, y0, x1, y1 = text.get_charbox(index)
                x, y = (x0 + x1) / 2 - left, top - (y0 + y1) / 2
                table = next((k for k, (box, _) in enumerate(found) if box[0] <= x <= box[2] and box[1] <= y <= box[3]), -1)
            if table == inside and index < count:
                continue
            if inside < 0:
                parts.append(text.get_text_range(start, index - start) if index > start else "")
            elif inside not in placed:
                placed.add(inside)
                parts.append("\n" + found[inside][1] + "\n")
            start, inside = index, table
        parts += ["\n" + rows + "\n" for k, (_, rows) in enumerate(found) if k not in placed]
    finally:
        text.close()
    joined = "".join(parts).replace("\r\n", "\n").replace(SOFT_HYPHEN, "")
    lines = (line.strip() for line in joined.split("\n"))
    return "\n".join(line for line in lines if line) + "\n"


def _numeric(cell: str) -> bool:
    digits = cell.strip().strip("$€£¥%+-()").replace(",", "").replace(" ", "")
    try:
        float(digits)
    except ValueError:
        return False
    return True
