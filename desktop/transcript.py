"""The transcript: each question and its answer rendered as Markdown, with links to sources and to sentences to check.

Its strings are translated under the chat panel's context ("ChatPanel"), where they were filed when
the panel rendered them itself."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication

from desktop.transcript_links import CHECK, CITE, TranscriptLink, link_to
from rag import Citation, Claim, Quote, Source, link_marks


@dataclass
class ShownTurn:
    """One question and its answer as the window shows them."""

    question: str
    answer: str = ""
    reasoning: str = ""
    citations: list[Citation] = field(default_factory=list)
    cached: str | None = None
    mode: str = ""
    error: str = ""
    sources: list[Source] = field(default_factory=list)
    data: Any = None
    claims: list[Claim] = field(default_factory=list)
    model: str = ""
    quote: Quote | None = None
    stand_in: bool = False  # written by a small stand-in model: the note says to check each sentence
    found: int = 0  # passages retrieved, when the time to the first word left some of them unread
    read_speed: float = 0.0  # the model's pace here (tokens a second) that bounded the sources
    starts_within: float = 0.0  # the time to the first word asked for, in seconds


def transcript_markdown(turns: list[ShownTurn], busy: bool) -> str:
    """The turns as Markdown; citation marks become ``cite:TURN/N`` links, sentences to check ``check:TURN/K`` links.

    ``busy``: the last turn's answer is still being written."""
    parts = []
    for index, turn in enumerate(turns):
        parts.extend(_turn_lines(index, turn, streaming=busy and index == len(turns) - 1))
    return "\n".join(parts)


def linked_claim(turns: list[ShownTurn], link: TranscriptLink) -> Claim | None:
    """The claim a ``check:`` link names, or None where the transcript holds none by that number."""
    if link.turn >= len(turns) or link.number >= len(turns[link.turn].claims):
        return None
    return turns[link.turn].claims[link.number]


def linked_source(turns: list[ShownTurn], link: TranscriptLink) -> Source | None:
    """The source a ``cite:`` link names (one the answer cites, else one it was drawn from), or None."""
    if link.turn >= len(turns):
        return None
    shown = turns[link.turn]
    return next((s for s in [*shown.citations, *shown.sources] if s.number == link.number), None)


def _turn_lines(index: int, turn: ShownTurn, streaming: bool) -> list[str]:
    """One turn: the question, the quote, the answer (or an ellipsis while it has no words yet), what went wrong."""
    you = QCoreApplication.translate("ChatPanel", "You")
    lines = [f"**{you}:** {_escape(turn.question)}\n"]
    if turn.quote is not None:
        lines.append(f"> “{_escape(turn.quote.text)}” {_cite(index, turn.quote.number)}\n")
    if turn.data is None:
        linked = _linked(turn.answer, index, turn.claims)
    else:
        linked = _linked(QCoreApplication.translate("ChatPanel", "(structured answer below)"), index, [])
    lines.append(linked or ("…" if streaming else ""))
    if turn.error:
        lines.append(f"\n*{_escape(turn.error)}*")
    lines.extend(_sources_lines(index, turn, streaming))
    lines.append("\n\n---\n")
    return lines


def _sources_lines(index: int, turn: ShownTurn, streaming: bool) -> list[str]:
    """Under an answer: what it cites, what else it was drawn from, and what to check."""
    lines = []
    cited = {c.number for c in turn.citations}
    if turn.citations:
        heading = QCoreApplication.translate("ChatPanel", "Sources")
        lines.append(f"\n<small>{heading}: {_source_links(index, turn.citations)}</small>")
    read = [s for s in turn.sources if s.number not in cited]
    if read and (turn.citations or turn.answer) and not streaming:
        if turn.citations:
            label = QCoreApplication.translate("ChatPanel", "Also read")
        else:
            label = QCoreApplication.translate("ChatPanel", "The answer cites none of its sources; it was drawn from")
        lines.append(f"\n<small>{label}: {_source_links(index, read)}</small>")
    if turn.found > len(turn.sources) and turn.read_speed and not streaming:
        note = QCoreApplication.translate(
            "ChatPanel", "Read the best {} of {} passages found: what this model reads in {} s on this computer "
            "({} tokens a second). Settings › Model › Answer starts within sets the time.")
        lines.append("\n<small>ℹ " + note.format(len(turn.sources), turn.found, f"{turn.starts_within:g}",
                                                 f"{turn.read_speed:.0f}") + "</small>")
    if turn.stand_in:
        note = QCoreApplication.translate("ChatPanel", "Written by the small starter model, a stand-in for "
                                          "gpt-oss-20b: check each sentence against its source.")
        lines.append(f"\n<small>ℹ {note}</small>")
    flagged = [c for c in turn.claims if c.flagged]
    if flagged and turn.data is None:
        note = QCoreApplication.translate("ChatPanel", "Sentences to check: {} (underlined; hover for why).")
        lines.append(f"\n<small>⚠ {note.format(len(flagged))}</small>")
    return lines


def _source_links(index: int, sources: list[Citation] | list[Source]) -> str:
    return " · ".join(f"[{s.number}: {_escape(s.label)}]({link_to(CITE, index, s.number)})" for s in sources)


def _cite(turn: int, number: int) -> str:
    """A ``[n]`` mark as a link to its source."""
    return f"[\\[{number}\\]]({link_to(CITE, turn, number)})"


_LEAD = re.compile(r"\s*(?:(?:[-*+]|\d+[.)]|#{1,6})\s+)?")  # spaces, and a list's bullet or a heading's #


def _linked(answer: str, turn: int, claims: list[Claim]) -> str:
    """The answer as Markdown: ``[n]`` marks become ``cite:TURN/N`` links, and each flagged
    sentence's words a ``check:TURN/K`` link (``desktop.claim_marks`` restyles those)."""
    out, at = [], 0
    for k, claim in enumerate(claims):
        if not claim.flagged or claim.start < at:
            continue
        out.append(link_marks(answer[at:claim.start], lambda n: _cite(turn, n)))
        # The sentence's words around its marks: each run of words one link (marks cannot nest in one).
        pieces = re.split(r"\x00(\d+)\x00", link_marks(answer[claim.start:claim.end], lambda n: f"\x00{n}\x00"))
        for j, piece in enumerate(pieces):
            out.append(_cite(turn, int(piece)) if j % 2 else _checked(piece, link_to(CHECK, turn, k)))
        at = claim.end
    out.append(link_marks(answer[at:], lambda n: _cite(turn, n)))
    return "".join(out)


def _checked(piece: str, href: str) -> str:
    """A run of a flagged sentence's words as one link, its bullet or heading mark and spaces left outside it."""
    # The pattern matches the empty string too, so there is always a match.
    lead = _LEAD.match(piece).group()  # type: ignore[union-attr]
    if not piece[len(lead):].strip():
        return piece
    words, trail = piece[len(lead):].rstrip(), piece[len(piece.rstrip()):]
    label = words.replace("[", "\\[").replace("]", "\\]")
    return f"{lead}[{label}]({href}){trail}"


def _escape(text: str) -> str:
    return html.escape(text).replace("*", "\\*").replace("_", "\\_")
