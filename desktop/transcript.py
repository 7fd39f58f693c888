"""The transcript: each question and its answer as a structure of blocks and runs, written into a
``QTextDocument`` by one renderer.

What the model wrote (and what a source or the user wrote) is only ever a run of text, inserted as
text: a code fence, ``<small>`` or a Markdown link in an answer shows as those characters and can
never become markup or a link. The app's own elements (the "You:" label, the quote, citations
``[n]``, sentences to check, footers, the notes on a stopped answer) are runs of their own, styled
here, and the only links are the ones ``desktop.transcript_links`` writes.

Its strings are translated under the chat panel's context ("ChatPanel"), where they were filed when
the panel rendered them itself."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QColor, QPalette, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat

from desktop.claim_marks import mark_claim, why
from desktop.transcript_links import CHECK, CITE, TranscriptLink
from rag import Citation, Claim, Quote, Source, link_marks

# How a turn ended short of its last word: stopped by the user, stopped going round in a loop, cut at its limit.
Ending = Literal["", "stopped", "repetition", "length"]
# How a run looks: the model's (or a source's, or the user's) words; the app's label; a link to a
# source; a sentence to check; a note of the app's.
RunStyle = Literal["text", "label", "cite", "check", "note"]
# What a paragraph is: a question, the quote above an answer, the answer, an error, a note under
# the answer, the rule between turns.
BlockKind = Literal["question", "quote", "answer", "error", "note", "rule"]


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
    data: object = None  # a structured answer: the JSON value its schema allows
    claims: list[Claim] = field(default_factory=list)
    model: str = ""
    quote: Quote | None = None
    stand_in: bool = False  # written by a small stand-in model: the note says to check each sentence
    found: int = 0  # passages retrieved, when the time to the first word left some of them unread
    read_speed: float = 0.0  # the model's pace here (tokens a second) that bounded the sources
    starts_within: float = 0.0  # the time to the first word asked for, in seconds
    ending: Ending = ""


@dataclass(frozen=True)
class Run:
    """A piece of a paragraph: its characters (always shown as they are), how it looks, where it leads."""

    text: str
    style: RunStyle = "text"
    link: TranscriptLink | None = None
    tip: str = ""


@dataclass(frozen=True)
class Block:
    """One paragraph of the transcript (a run's line breaks start new ones of the same kind)."""

    kind: BlockKind
    runs: tuple[Run, ...]

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


def transcript_blocks(turns: list[ShownTurn], busy: bool) -> list[Block]:
    """The turns as paragraphs; ``busy``: the last turn's answer is still being written."""
    blocks: list[Block] = []
    for index, turn in enumerate(turns):
        if index:
            blocks.append(Block("rule", ()))
        blocks.extend(_turn_blocks(index, turn, streaming=busy and index == len(turns) - 1))
    return blocks


def transcript_text(turns: list[ShownTurn], busy: bool) -> str:
    """The transcript as plain text, as the window shows it."""
    return "\n".join(block.text for block in transcript_blocks(turns, busy))


def write_transcript(document: QTextDocument, turns: list[ShownTurn], busy: bool, palette: QPalette) -> None:
    """Replace ``document``'s contents with the transcript: every run inserted as text, with its format."""
    document.clear()
    cursor = QTextCursor(document)
    cursor.beginEditBlock()
    for i, block in enumerate(transcript_blocks(turns, busy)):
        if i:
            cursor.insertBlock(_block_format(block.kind), QTextCharFormat())
        else:
            cursor.setBlockFormat(_block_format(block.kind))
        for run in block.runs:
            cursor.insertText(run.text, _char_format(run, block.kind, palette))
    cursor.endEditBlock()


def ending_of(finish: str) -> Ending:
    """How an answer that ended with the engine's ``finish`` ended short ("" where it ended whole)."""
    return {"repetition": "repetition", "length": "length"}.get(finish, "")  # type: ignore[return-value]


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


# -- the structure ----------------------------------------------------------------------------


def _turn_blocks(index: int, turn: ShownTurn, streaming: bool) -> list[Block]:
    """One turn: the question, the quote, the answer (or an ellipsis while it has no words yet),
    how it ended short, what went wrong, and the notes under it."""
    you = QCoreApplication.translate("ChatPanel", "You")
    blocks = [Block("question", (Run(you + ": ", "label"), Run(turn.question)))]
    if turn.quote is not None:
        blocks.append(Block("quote", (Run("“" + turn.quote.text + "” "), _cite(index, turn.quote.number))))
    if turn.data is not None:
        below = QCoreApplication.translate("ChatPanel", "(structured answer below)")
        blocks.append(Block("answer", (Run(below, "note"),)))
    elif turn.answer:
        blocks.append(Block("answer", tuple(_answer_runs(turn.answer, index, turn.claims))))
    elif streaming:
        blocks.append(Block("answer", (Run("…", "note"),)))
    ending = _ending_note(turn.ending)
    if ending:
        blocks.append(Block("note", (Run(ending, "note"),)))
    if turn.error:
        blocks.append(Block("error", (Run(turn.error, "note"),)))
    if not streaming:
        blocks.extend(_footer_blocks(index, turn))
    return blocks


def _ending_note(ending: Ending) -> str:
    if ending == "stopped":
        return QCoreApplication.translate("ChatPanel", "You stopped the answer before it was finished.")
    if ending == "repetition":
        return QCoreApplication.translate(
            "ChatPanel", "The answer was stopped: the model was writing the same words again and again. "
            "Regenerate, or ask in other words.")
    if ending == "length":
        return QCoreApplication.translate("ChatPanel", "The answer reached its length limit and was cut short.")
    return ""


def _footer_blocks(index: int, turn: ShownTurn) -> list[Block]:
    """Under an answer: what it cites, what else it was drawn from, and what to check."""
    blocks = []
    cited = _cited(turn)
    if cited:
        heading = QCoreApplication.translate("ChatPanel", "Sources")
        blocks.append(Block("note", (Run(heading + ": ", "note"), *_source_links(index, cited))))
    numbers = {s.number for s in cited}
    read = [s for s in turn.sources if s.number not in numbers]
    if read and (cited or turn.answer or turn.ending or turn.data is not None):
        if cited:
            label = QCoreApplication.translate("ChatPanel", "Also read")
        elif turn.ending or turn.error:
            label = QCoreApplication.translate("ChatPanel", "Read for this answer")
        else:
            label = QCoreApplication.translate("ChatPanel", "The answer cites none of its sources; it was drawn from")
        blocks.append(Block("note", (Run(label + ": ", "note"), *_source_links(index, read))))
    if turn.found > len(turn.sources) and turn.read_speed:
        note = QCoreApplication.translate(
            "ChatPanel", "Read the best {} of {} passages found: what this model reads in {} s on this computer "
            "({} tokens a second). Settings › Model › Answer starts within sets the time.")
        text = note.format(len(turn.sources), turn.found, f"{turn.starts_within:g}", f"{turn.read_speed:.0f}")
        blocks.append(Block("note", (Run("ℹ " + text, "note"),)))
    if turn.stand_in:
        note = QCoreApplication.translate(
            "ChatPanel", "Written by the small starter model, a stand-in for gpt-oss-20b: check each sentence against "
            "its source.")
        blocks.append(Block("note", (Run("ℹ " + note, "note"),)))
    flagged = [c for c in turn.claims if c.flagged]
    if flagged and turn.data is None:
        note = QCoreApplication.translate("ChatPanel", "Sentences to check: {} (underlined; hover for why).")
        blocks.append(Block("note", (Run("⚠ " + note.format(len(flagged)), "note"),)))
    return blocks


def _cited(turn: ShownTurn) -> list[Source]:
    """The sources the answer cites: its resolved citations, or for an answer that ended without
    them (stopped), the sources its marks name so far."""
    if turn.citations or turn.data is not None:
        return list(turn.citations)
    named = {n for _text, n in _pieces(turn.answer) if n is not None}
    return [s for s in turn.sources if s.number in named]


def _source_links(index: int, sources: list[Citation] | list[Source]) -> list[Run]:
    runs: list[Run] = []
    for i, source in enumerate(sources):
        if i:
            runs.append(Run(" · ", "note"))
        runs.append(Run(f"{source.number}: {source.label}", "cite", TranscriptLink(CITE, index, source.number)))
    return runs


def _cite(turn: int, number: int) -> Run:
    """A ``[n]`` mark, a link to its source."""
    return Run(f"[{number}]", "cite", TranscriptLink(CITE, turn, number))


_LEAD = re.compile(r"\s*(?:(?:[-*+]|\d+[.)]|#{1,6})\s+)?")  # spaces, and a list's bullet or a heading's #
_SENTINEL = "\x00"


def _pieces(text: str) -> list[tuple[str, int | None]]:
    """``text`` cut at its ``[n]`` marks: runs of text (number None) and the numbers the marks name."""
    marked = link_marks(text.replace(_SENTINEL, "\ufffd"), lambda n: f"{_SENTINEL}{n}{_SENTINEL}")
    parts = marked.split(_SENTINEL)
    return [(part, None) if i % 2 == 0 else ("", int(part)) for i, part in enumerate(parts) if part or i % 2]


def _answer_runs(answer: str, turn: int, claims: list[Claim]) -> list[Run]:
    """The answer's words as text, its ``[n]`` marks as links to their sources, and each flagged
    sentence's words as a sentence to check (underlined, its reason on hover)."""
    runs: list[Run] = []
    at = 0
    for k, claim in enumerate(claims):
        if not claim.flagged or claim.start < at or claim.end > len(answer):
            continue
        runs.extend(_marked_runs(answer[at:claim.start], turn))
        link = TranscriptLink(CHECK, turn, k)
        for text, number in _pieces(answer[claim.start:claim.end]):
            runs.extend([_cite(turn, number)] if number is not None else _checked(text, link, why(claim)))
        at = claim.end
    runs.extend(_marked_runs(answer[at:], turn))
    return [run for run in runs if run.text]


def _marked_runs(text: str, turn: int) -> list[Run]:
    return [_cite(turn, number) if number is not None else Run(piece) for piece, number in _pieces(text)]


def _checked(piece: str, link: TranscriptLink, tip: str) -> list[Run]:
    """A run of a flagged sentence's words, its bullet or heading mark and spaces left outside it."""
    # The pattern matches the empty string too, so there is always a match.
    lead = _LEAD.match(piece).group()  # type: ignore[union-attr]
    words = piece[len(lead):].rstrip()
    if not words:
        return [Run(piece)]
    return [Run(lead), Run(words, "check", link, tip), Run(piece[len(lead) + len(words):])]


# -- the renderer -----------------------------------------------------------------------------

_MUTED = "#6b6b6b"
_ERROR = "#b03a2e"


def _block_format(kind: BlockKind) -> QTextBlockFormat:
    block = QTextBlockFormat()
    if kind == "question":
        block.setTopMargin(4)
        block.setBottomMargin(4)
    elif kind == "quote":
        block.setLeftMargin(14)
        block.setBottomMargin(4)
    elif kind in ("note", "error"):
        block.setTopMargin(2)
    elif kind == "rule":
        block.setTopMargin(6)
        block.setBottomMargin(6)
        block.setProperty(QTextFormat.Property.BlockTrailingHorizontalRulerWidth, 1)
    return block


def _char_format(run: Run, kind: BlockKind, palette: QPalette) -> QTextCharFormat:
    """How a run looks. Only a citation or a sentence to check is an anchor, and its address is ours."""
    form = QTextCharFormat()
    if kind == "quote":
        form.setFontItalic(True)
        form.setForeground(QColor(_MUTED))
    if kind in ("note", "error"):
        form.setProperty(QTextFormat.Property.FontSizeAdjustment, -1)
        form.setForeground(QColor(_ERROR if kind == "error" else _MUTED))
    if run.style == "label":
        form.setFontWeight(700)
    elif run.style == "note" and kind == "answer":
        form.setForeground(QColor(_MUTED))
    elif run.style == "cite" and run.link is not None:
        form.setAnchor(True)
        form.setAnchorHref(run.link.href)
        form.setForeground(palette.link())
        form.setFontItalic(False)
    elif run.style == "check" and run.link is not None:
        form.setAnchor(True)
        form.setAnchorHref(run.link.href)
        mark_claim(form, palette.text(), run.tip)
    return form
