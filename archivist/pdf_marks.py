"""Where a cited passage stands on a PDF page: one rectangle per line it covers, from PDFium's text positions.

The passage was read by the loader (pypdf, or PDFium), so it may differ from PDFium's text of the
page in whitespace, line breaks, hyphenation at a line's end, ligatures (``ﬁ`` for ``fi``), case,
accents and the order of columns. Both texts are therefore compared as their letters and digits
only, folded; the passage is laid over the page's text in runs of agreeing characters (a run of a
few words at least, or one that goes on where the last one stopped), so words the page lacks are
skipped and the part of a passage that is on the page (a sentence cut by a page break) is still
found. A ruled table's rows, which the loader writes with their column headers, are found only
where a run of a few words agrees: a short cell alone stays unmarked rather than risk a stray mark.

A pure function of the file: the window draws the rectangles over its view of the page, and a
server can draw them over the page it renders with PDFium.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from rag.indexing.loaders.pdfium_lock import PDFIUM

if TYPE_CHECKING:
    import pypdfium2

log = logging.getLogger(__name__)

Rect = tuple[float, float, float, float]
"""left, top, right, bottom: points from the top-left corner of the page as shown (crop box, rotation applied)."""

Box = tuple[float, float, float, float]  # left, bottom, right, top in PDF page space

_SEED = 6  # characters (letters and digits) that must agree to start a run
_MIN_RUN = 12  # a run this long stands alone; a shorter one must continue the previous run
_WORD = 10  # letters a run may be cut back by, to end where a word ends
_NEAR = 3  # characters of the page or passage a run may skip and still continue the previous one


def passage_rects(path: Path, page_index: int, passage: str) -> list[Rect]:
    """The rectangles (one per line segment) that cover ``passage`` on page ``page_index`` (from 0)
    of the PDF at ``path``; empty when the page does not hold it or the file cannot be read."""
    import pypdfium2

    with PDFIUM:  # a server's page marks and ingests run on threads of one process
        try:
            document = pypdfium2.PdfDocument(path)
        except (pypdfium2.PdfiumError, OSError) as exc:
            log.info("%s: no marks, the file cannot be read (%s)", path, exc)
            return []
        try:
            if not 0 <= page_index < len(document):
                return []
            page = document[page_index]
            try:
                return page_rects(page, passage)
            finally:
                page.close()
        finally:
            document.close()


def page_rects(page: pypdfium2.PdfPage, passage: str) -> list[Rect]:
    """The rectangles that cover ``passage`` on an open page (see ``passage_rects``)."""
    import pypdfium2.raw as pdfium_c

    text = page.get_textpage()
    try:
        codes = (pdfium_c.FPDFText_GetUnicode(text.raw, i) for i in range(text.count_chars()))
        chars = [chr(c) if c <= 0x10FFFF else "\ufffd" for c in codes]
        covered = _covered_chars(chars, passage)
        boxes = [(n > 0 and covered[n - 1] == i - 1, text.get_charbox(i, loose=True))
                 for n, i in enumerate(covered) if not chars[i].isspace()]
    finally:
        text.close()
    shown = _Shown(page)
    return [shown.rect(box) for box in _segments(boxes)]


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """A character as compared: its letters and digits, compatibility-decomposed (``ﬁ`` is ``fi``),
    case-folded, accents dropped; nothing for spaces, punctuation and PDFium's hyphen mark."""
    return "".join(c for c in unicodedata.normalize("NFKD", char).casefold() if c.isalnum())


class _Folded:
    """Text as compared (``_fold_char`` of each character), with where each compared character came
    from and whether a word ends after it (a space, a hyphen or a stop comes next)."""

    def __init__(self, chars: Sequence[str]) -> None:
        key: list[str] = []
        self.owner: list[int] = []  # the index of the character each compared one came from
        for index, char in enumerate(chars):
            for c in _fold_char(char):
                key.append(c)
                self.owner.append(index)
        self.key = "".join(key)
        owner = self.owner
        self.word_end = [k + 1 == len(owner) or owner[k + 1] > owner[k] + 1 for k in range(len(owner))]


def _covered_chars(chars: Sequence[str], passage: str) -> list[int]:
    """The indices of the page's characters (``chars``) that the passage covers, in order."""
    page = _Folded(chars)
    spots = sorted({page.owner[t] for t in _matched(_Folded(passage), page)})
    return _with_punctuation(chars, spots, set(page.owner))


def _matched(passage: _Folded, page: _Folded) -> Iterator[int]:
    """The positions in ``page.key`` that runs of ``passage.key`` lie on: from each point on, the
    longest run that agrees, cut back to the end of a word if it ran a few letters into the next."""
    key, text = passage.key, page.key
    seed = min(_SEED, len(key))
    least = min(_MIN_RUN, len(key))
    if seed == 0:
        return
    starts: dict[str, list[int]] = {}
    for t in range(len(text) - seed + 1):
        starts.setdefault(text[t:t + seed], []).append(t)
    i = 0
    last: tuple[int, int] | None = None  # where the previous run ended: in the passage, on the page
    while i <= len(key) - seed:
        best_t, best_n = -1, 0
        for t in starts.get(key[i:i + seed], ()):
            n = _agreeing(key, i, text, t)
            if n > best_n or (n == best_n and last is not None and abs(t - last[1]) < abs(best_t - last[1])):
                best_t, best_n = t, n
        ended = best_n and (passage.word_end[i + best_n - 1] or page.word_end[best_t + best_n - 1])
        if best_n and not ended and i + best_n < len(key) and best_t + best_n < len(text):
            # "has stopped" against "has says": the run agrees on "hass", into a word on both sides; it ends after "has".
            for n in range(best_n, max(0, best_n - _WORD), -1):
                if passage.word_end[i + n - 1] and page.word_end[best_t + n - 1]:
                    best_n = n
                    break
        goes_on = last is not None and 0 <= best_t - last[1] <= _NEAR and i - last[0] <= _NEAR
        if best_n and (best_n >= least or goes_on):
            if goes_on and last is not None:
                yield from range(last[1], best_t)  # a glyph or two the loader read differently
            yield from range(best_t, best_t + best_n)
            i += best_n
            last = (i, best_t + best_n)
        else:
            i += 1
    if last is not None and last[0] < len(key):  # a tail shorter than a seed, right where the run stopped
        n = _agreeing(key, last[0], text, last[1])
        if n == len(key) - last[0]:
            yield from range(last[1], last[1] + n)


def _agreeing(key: str, i: int, page: str, t: int) -> int:
    n = 0
    while i + n < len(key) and t + n < len(page) and key[i + n] == page[t + n]:
        n += 1
    return n


def _with_punctuation(chars: Sequence[str], spots: list[int], lettered: set[int]) -> list[int]:
    """``spots`` with what stands between two of them when it holds no letter or digit (spaces, a
    hyphen at a line's end, a comma), and the punctuation stuck to either end of each stretch."""
    if not spots:
        return []
    chosen = set(spots)
    for a, b in pairwise(spots):
        if b - a > 1 and not any(j in lettered for j in range(a + 1, b)):
            chosen.update(range(a + 1, b))
    for spot in spots:
        for step in (-1, 1):
            j = spot + step
            while 0 <= j < len(chars) and j not in chosen and j not in lettered and not chars[j].isspace():
                chosen.add(j)
                j += step
    return sorted(chosen)


def _segments(boxes: Sequence[tuple[bool, Box]]) -> list[Box]:
    """Character boxes joined into line segments; a character starts a new one when it does not
    follow the last in the page's text (``True`` with its box when it does) or is not on its line."""
    segments: list[Box] = []
    for follows, box in boxes:
        left, bottom, right, top = box
        if right <= left or top <= bottom:
            continue  # a character PDFium placed nowhere
        if segments and follows and _same_line(segments[-1], box):
            l0, b0, r0, t0 = segments[-1]
            segments[-1] = (min(l0, left), min(b0, bottom), max(r0, right), max(t0, top))
        else:
            segments.append(box)
    return segments


def _same_line(segment: Box, box: Box) -> bool:
    """Whether ``box`` continues ``segment``'s line: they overlap in height by half the smaller
    one, and the gap between them (either way: right-to-left text too) is at most twice as high."""
    l0, b0, r0, t0 = segment
    left, bottom, right, top = box
    overlap = min(t0, top) - max(b0, bottom)
    height = min(t0 - b0, top - bottom)
    gap = max(left - r0, l0 - right, 0.0)
    return overlap >= height / 2 and gap <= 2 * max(t0 - b0, top - bottom)


class _Shown:
    """PDF page space to the page as shown: the crop box's top-left at (0, 0), its rotation applied."""

    def __init__(self, page: pypdfium2.PdfPage) -> None:
        self.left, self.bottom, self.right, self.top = page.get_cropbox()
        self.rotation = page.get_rotation() % 360

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.rotation == 90:
            return y - self.bottom, x - self.left
        if self.rotation == 180:
            return self.right - x, y - self.bottom
        if self.rotation == 270:
            return self.top - y, self.right - x
        return x - self.left, self.top - y

    def rect(self, box: Box) -> Rect:
        (x0, y0), (x1, y1) = self.point(box[0], box[1]), self.point(box[2], box[3])
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
