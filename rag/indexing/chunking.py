"""Token-aware chunking: sizes in the embedder's tokens, cuts at the strongest nearby boundary.

A cut between two tokens is ranked by what lies between them: a paragraph break beats a
sentence end, which beats a line break or a space, which beats a cut inside a word. Each
chunk ends at the strongest boundary in the second half of its token budget, and the next
chunk starts at the strongest boundary within the overlap, so chunks begin at sentence
starts where they can. CJK text has no spaces: a cut between two CJK characters counts as a
word boundary, and 。！？； end sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from rag.documents import Chunk, Section

_SENTENCE_END = set(".!?。！？；;…")
_CLOSERS = set("\"'”’)]}」』）》")
_PARAGRAPH, _SENTENCE, _LINE, _WORD, _NONE = 4, 3, 2, 1, 0


class TokenOffsets(Protocol):
    """Anything that can say where each token of a text starts and ends (the embedder)."""

    def token_offsets(self, text: str) -> Sequence[tuple[int, int]]: ...


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF  # hangul
        or 0xF900 <= code <= 0xFAFF
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
    )


def _strengths(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """``strength[j]``: how good a cut is just before token ``j`` (``j`` in 1..n-1)."""
    n = len(offsets)
    strength = [_NONE] * (n + 1)
    strength[n] = _PARAGRAPH
    for j in range(1, n):
        prev_end = offsets[j - 1][1]
        gap = text[prev_end : offsets[j][0]]
        last = text[prev_end - 1] if prev_end else ""
        k = prev_end - 1
        while k > 0 and text[k] in _CLOSERS:
            k -= 1
        ends_sentence = text[k] in _SENTENCE_END if prev_end else False
        if "\n" in gap and gap.count("\n") >= 2:
            strength[j] = _PARAGRAPH
        elif ends_sentence and (gap or _is_cjk(text[k])):
            strength[j] = _SENTENCE
        elif "\n" in gap:
            strength[j] = _LINE
        elif gap or (last and _is_cjk(last)) or _is_cjk(text[offsets[j][0]]):
            strength[j] = _WORD
    return strength


def _best(strength: list[int], lo: int, hi: int, latest: bool) -> int:
    """The index in [lo, hi] with the highest strength, latest or earliest among equals."""
    best = hi if latest else lo
    span = range(hi, lo - 1, -1) if latest else range(lo, hi + 1)
    for j in span:
        if strength[j] > strength[best]:
            best = j
            if strength[j] == _PARAGRAPH:
                break
    return best


def chunk_section(
    section: Section, counter: TokenOffsets, max_tokens: int, overlap: int, first_index: int = 0
) -> list[Chunk]:
    """Split one section into chunks of at most ``max_tokens`` tokens, overlapping by about ``overlap``."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 2))
    text = section.text
    offsets = counter.token_offsets(text)
    n = len(offsets)
    if n == 0:
        return []
    strength = _strengths(text, offsets)
    chunks: list[Chunk] = []
    i = 0
    while i < n:
        hi = min(n, i + max_tokens)
        end = hi if hi == n else _best(strength, i + max(1, max_tokens // 2), hi, latest=True)
        start_char, end_char = offsets[i][0], offsets[end - 1][1]
        chunks.append(
            Chunk(
                text=text[start_char:end_char],
                start=section.offset + start_char,
                end=section.offset + end_char,
                page=section.page,
                heading=section.heading,
                index=first_index + len(chunks),
                box=section.box(start_char, end_char),
            )
        )
        if end == n:
            break
        if overlap == 0:
            i = end
        else:
            lo = max(i + 1, end - overlap)
            hi = max(lo, end - 1)
            candidate = _best(strength, lo, hi, latest=False)
            i = candidate if strength[candidate] > _NONE else lo
    return chunks


def chunk_sections(
    sections: Iterable[Section], counter: TokenOffsets, max_tokens: int, overlap: int
) -> Iterator[Chunk]:
    """Chunk a stream of sections, numbering chunks across the whole document."""
    index = 0
    for section in sections:
        for chunk in chunk_section(section, counter, max_tokens, overlap, first_index=index):
            index += 1
            yield chunk
