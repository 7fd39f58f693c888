"""The passage marked where it is on a PDF page (archivist/pdf_marks.py, desktop/source_view.py).

The PDFs are laid out here line by line, the cited words known; PDFium's own box of each character
is the truth the marks are checked against: every character of a cited word inside a mark, no
character of another word inside one.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest

from archivist.pdf_marks import Rect, passage_rects
from rag.documents import LoadResult
from rag.indexing.loaders import pdf

FONT, SIZE = "Vera", 10  # reportlab's own TrueType font: it has the ﬁ and ﬂ ligatures, and travels with reportlab
LEFT, RIGHT, TOP, LEADING = 50, 310, 780, 14

# [[ and ]] around the cited words. Column one ends inside the passage, which goes on at the top of
# column two; "lubri-" is hyphenated at a line's end; ﬁ and ﬂ are ligature glyphs; the words around
# the passage (oil every, ﬁlter, flow gauge) are written again outside it.
COLUMNS = [
    [
        "Pump maintenance, part two",
        "The pump needs oil every month in the",
        "first year of use, then as the table",
        "says. [[Before any work, switch off the]]",
        "[[main power and wait until the motor has]]",
        "[[stopped. The ﬁlter housing and the ﬂow]]",
        "[[gauge are cleaned with a soft cloth; lubri-]]",
        "[[cation of the bearings follows with fresh]]",
        "[[oil every 200 operating hours, never]]",
    ],
    [
        "[[later, and the oil level is checked]]",
        "[[again after ten minutes.]] Spare ﬁlters",
        "are kept in the store room beside the",
        "oil drums, and the flow gauge is calibrated",
        "once a year by the supplier.",
    ],
]
# A sentence cut by a page break: its start ends one page, its rest begins the next.
BROKEN = [
    [
        "Storage",
        "Keep the pump dry and frost-free when it is not in use.",
        "[[When the pump is stored for longer than three months, the]]",
        "[[shaft is turned by hand once a]]",
    ],
    [
        "[[week so that the seals do not stick.]] After storage, test the pump",
        "before it goes back into service.",
    ],
]
SENTENCE = "When the pump is stored for longer than three months, the shaft is turned by hand once a week so that the seals do not stick."


@dataclass(frozen=True)
class Word:
    """A word as drawn: its page, where it stands, and whether the passage holds it."""

    page: int
    text: str
    left: float
    right: float
    baseline: float
    cited: bool


def write_pdf(path: Path, pages: list[list[tuple[float, float, str]]]) -> list[Word]:
    """Draw each page's lines (x, baseline, text with [[ ]] around cited words); the words drawn."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
    c = canvas.Canvas(str(path), pagesize=A4)
    words: list[Word] = []
    for number, lines in enumerate(pages):
        c.setFont(FONT, SIZE)
        for x, y, marked in lines:
            plain = marked.replace("[[", "").replace("]]", "")
            c.drawString(x, y, plain)
            cited, offset = False, 0
            for token in marked.split(" "):
                text = token.replace("[[", "").replace("]]", "")
                left = x + pdfmetrics.stringWidth(plain[:offset], FONT, SIZE)
                right = left + pdfmetrics.stringWidth(text, FONT, SIZE)
                this = cited or token.startswith("[[")
                words.append(Word(number, text, left, right, y, this))
                cited = this and not token.endswith("]]")
                offset += len(text) + 1
        c.showPage()
    c.save()
    return words


def two_columns(path: Path) -> list[Word]:
    lines = [(x, TOP - LEADING * n, line) for x, column in zip((LEFT, RIGHT), COLUMNS, strict=True)
             for n, line in enumerate(column)]
    return write_pdf(path, [lines])


def broken_sentence(path: Path) -> list[Word]:
    """The sentence's start at the foot of page one, its rest at the head of page two."""
    foot = TOP - 600
    first = [(LEFT, foot - LEADING * n, line) for n, line in enumerate(BROKEN[0])]
    second = [(LEFT, TOP - LEADING * n, line) for n, line in enumerate(BROKEN[1])]
    return write_pdf(path, [first, second])


def indexed_text(path: Path, page: int) -> str:
    """The page's text as the loader indexes it."""
    return next(s.text for s in pdf.load(path, LoadResult(recognize=False)) if s.page == page + 1)


def between(text: str, first: str, last: str) -> str:
    start = text.index(first)
    return text[start:text.index(last, start) + len(last)]


def check_marks(path: Path, page_index: int, words: list[Word], rects: list[Rect]) -> None:
    """Each character of a cited word on the page lies in a mark; no character of another word does.
    The characters and their boxes are PDFium's; where a box is on the page as shown is PDFium's too."""
    assert rects
    document = pypdfium2.PdfDocument(path)
    page = document[page_index]
    text = page.get_textpage()
    width, height = page.get_size()
    scale = 16  # PDFium maps to whole device pixels: 1/16 point is near enough
    drawn = [w for w in words if w.page == page_index]
    missed, stray = [], []
    for i in range(text.count_chars()):
        char = chr(pdfium_c.FPDFText_GetUnicode(text.raw, i))
        if char.isspace():
            continue
        left, bottom, right, top = text.get_charbox(i, loose=True)
        if right <= left:
            continue
        cx, cy = (left + right) / 2, (bottom + top) / 2
        word = next((w for w in drawn if w.left - 0.5 <= cx <= w.right + 0.5 and w.baseline - 4 <= cy <= w.baseline + 10),
                    None)
        assert word is not None, f"PDFium's {char!r} at {cx:.0f},{cy:.0f} is no word drawn"
        dx, dy = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(page.raw, 0, 0, round(width * scale), round(height * scale), 0, cx, cy, dx, dy)
        x, y = dx.value / scale, dy.value / scale
        marked = any(r[0] <= x <= r[2] and r[1] <= y <= r[3] for r in rects)
        if word.cited and not marked:
            missed.append(word.text)
        if marked and not word.cited:
            stray.append(word.text)
    text.close()
    page.close()
    document.close()
    assert not missed, f"cited words left unmarked: {sorted(set(missed))}"
    assert not stray, f"words marked outside the passage: {sorted(set(stray))}"


@pytest.mark.parametrize("rotation", [0, 90])
@pytest.mark.parametrize("as_indexed", ["loader", "one line", "ligatures spelt out", "capitals"])
def test_marks_cover_a_passage_across_two_columns(tmp_path: Path, as_indexed: str, rotation: int):
    path = tmp_path / "columns.pdf"
    words = two_columns(path)
    if rotation:  # a page turned by its /Rotate: the marks are on the page as shown
        document = pypdfium2.PdfDocument(path)
        document[0].set_rotation(rotation)
        document.save(path.with_name("turned.pdf"))
        document.close()
        path = path.with_name("turned.pdf")
    passage = between(indexed_text(path, 0), "Before any", "ten minutes.")
    assert "ﬁlter" in passage and "lubri" in passage
    passage = {
        "loader": passage,
        "one line": " ".join(passage.replace("-\n", "").split()),  # whitespace folded, the hyphen joined
        "ligatures spelt out": passage.replace("ﬁ", "fi").replace("ﬂ", "fl"),
        "capitals": passage.upper(),
    }[as_indexed]
    rects = passage_rects(path, 0, passage)
    check_marks(path, 0, words, rects)
    # One rectangle per line: six lines at the foot of column one, two at the head of column two.
    assert len(rects) == 8, rects


def test_a_sentence_cut_by_a_page_break_is_marked_on_each_page(tmp_path: Path):
    path = tmp_path / "broken.pdf"
    words = broken_sentence(path)
    first = passage_rects(path, 0, SENTENCE)
    check_marks(path, 0, words, first)
    assert len(first) == 2
    rest = passage_rects(path, 1, SENTENCE)
    check_marks(path, 1, words, rest)
    assert len(rest) == 1
    # What the loader indexed of page one (the passage a citation of it holds) is marked there.
    check_marks(path, 0, words, passage_rects(path, 0, between(indexed_text(path, 0), "When the", "once a")))


def test_no_marks_for_a_passage_the_page_does_not_hold(tmp_path: Path):
    path = tmp_path / "broken.pdf"
    broken_sentence(path)
    assert passage_rects(path, 1, "Keep the pump dry and frost-free when it is not in use.") == []
    assert passage_rects(path, 7, SENTENCE) == []
    (tmp_path / "broken-copy.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    assert passage_rects(tmp_path / "broken-copy.pdf", 0, SENTENCE) == []


def test_the_sample_manuals_bearings_sentence_is_marked_whole():
    # The issue's own case: "How often do the bearings need oil?" marked "The bearings need oil every", not "200 operating hours".
    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "Pump maintenance guide.pdf"
    [line] = passage_rects(sample, 1, "The bearings need oil every 200 operating hours.")
    document = pypdfium2.PdfDocument(sample)
    page = document[1]
    text = page.get_textpage()
    height = page.get_size()[1]
    for word in ("The bearings", "200", "hours."):
        first = text.get_text_range().index(word)
        for i in range(first, first + len(word)):
            left, bottom, right, top = text.get_charbox(i, loose=True)
            x, y = (left + right) / 2, height - (bottom + top) / 2
            assert line[0] <= x <= line[2] and line[1] <= y <= line[3], word
    text.close()
    page.close()
    document.close()
    # The whole page's text, as the loader indexed it: the heading and both lines, each whole.
    page_text = indexed_text(sample, 1)
    marks = passage_rects(sample, 1, page_text)
    assert len(marks) == 3 and marks[1][:2] == pytest.approx(line[:2], abs=0.5) and marks[1][2] > line[2]


def test_the_source_view_marks_the_passage_on_the_page(qtbot, tmp_path: Path):
    from PySide6.QtGui import QImage

    from desktop.source_view import SourcePanel
    from rag import Source

    path = tmp_path / "columns.pdf"
    words = two_columns(path)
    passage = between(indexed_text(path, 0), "Before any", "ten minutes.")
    panel = SourcePanel()
    qtbot.addWidget(panel)
    panel.resize(560, 1000)  # the whole page in view, so that its frame can be found in the picture
    panel.show()
    panel.show_citation(Source(1, path, 1, None, 0, len(passage), passage, 1.0))
    assert panel.pdf.isVisible() and len(panel.pdf.marks[0]) == 8

    def picture() -> QImage:
        return panel.pdf.viewport().grab().toImage()

    def gray(image: QImage) -> list[bytes]:
        rows = image.convertToFormat(QImage.Format.Format_Grayscale8)
        data, stride = bytes(rows.constBits()), rows.bytesPerLine()
        return [data[y * stride:y * stride + rows.width()] for y in range(rows.height())]

    # The page's image comes from Qt's renderer thread, some time after its white.
    qtbot.waitUntil(lambda: sum(b < 100 for row in gray(picture()) for b in row) > 1000, timeout=10_000)
    image = picture()
    # The page is the white area; a point on it is at (its x, its y from the top) times the pixels per point.
    white = [(x, y) for y, row in enumerate(gray(image)) for x, b in enumerate(row) if b == 255]
    x0, x1, y0 = min(x for x, _ in white), max(x for x, _ in white) + 1, min(y for _, y in white)
    width, height = 595.2756, 841.8898  # A4, in points
    scale = (x1 - x0) / width

    def yellow(word: Word) -> float:
        """The share of the light pixels in the word's middle that are the mark's yellow (the letters stay dark)."""
        top = round(y0 + (height - word.baseline - 0.6 * SIZE) * scale)
        bottom = round(y0 + (height - word.baseline - 0.1 * SIZE) * scale)
        left, right = round(x0 + word.left * scale) + 1, round(x0 + word.right * scale) - 1
        colors = [image.pixelColor(x, y) for x in range(left, right) for y in range(top, bottom)]
        light = [c for c in colors if c.red() > 200 and c.green() > 170]
        return sum(c.blue() < 150 for c in light) / max(1, len(light))

    cited = [w for w in words if w.cited]
    others = [w for w in words if not w.cited]
    assert all(yellow(w) > 0.8 for w in cited), [(w.text, yellow(w)) for w in cited if yellow(w) <= 0.8]
    assert all(yellow(w) == 0 for w in others), [(w.text, yellow(w)) for w in others if yellow(w)]
