"""The sentences to check, marked in the rendered transcript: a subtle underline, the reason on hover.

Its strings are translated under the chat panel's context ("ChatPanel"), where they were filed when
the panel marked the sentences itself."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QBrush, QColor, QTextCharFormat, QTextCursor, QTextDocument

from desktop.transcript import ShownTurn, linked_claim
from desktop.transcript_links import CHECK, TranscriptLink, parse_link
from rag import Claim

_UNDERLINE = "#c07000"


def underline_claims(document: QTextDocument, turns: list[ShownTurn], ink: QBrush) -> None:
    """Underline, subtly, each sentence its source does not bear out, with the reason on hover.

    The sentences are the transcript's ``check:`` links; ``ink`` is the colour of plain text, so
    that they do not look like links."""
    for position, length, old, link in _check_links(document):
        claim = linked_claim(turns, link)
        if claim is None:
            continue
        mark = QTextCharFormat(old)
        mark.setForeground(ink)
        mark.setFontUnderline(True)
        mark.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
        mark.setUnderlineColor(QColor(_UNDERLINE))
        mark.setToolTip(why(claim))
        cursor = QTextCursor(document)
        cursor.setPosition(position)
        cursor.setPosition(position + length, QTextCursor.MoveMode.KeepAnchor)
        cursor.setCharFormat(mark)


def why(claim: Claim) -> str:
    """The hover text of a flagged sentence."""
    if claim.supported is None:
        text = QCoreApplication.translate("ChatPanel", "This sentence cites no source.")
    else:
        text = QCoreApplication.translate("ChatPanel", "Not borne out by its source: {}.").format(claim.problem)
    if claim.suggested is not None:
        holds = QCoreApplication.translate("ChatPanel", "[{}] holds it; click to open it.")
        text += " " + holds.format(claim.suggested)
    return text


def source_to_open(claim: Claim) -> int | None:
    """The source a click on a flagged sentence opens: one that holds it, else the first it cites."""
    return claim.suggested if claim.suggested is not None else next(iter(claim.cited), None)


def _check_links(document: QTextDocument) -> list[tuple[int, int, QTextCharFormat, TranscriptLink]]:
    """Each run of text that is a ``check:`` link: where it starts, how long it is, its format, where it leads.

    All are found before any is restyled, since restyling splits and merges the fragments walked here."""
    spans = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            link = parse_link(fragment.charFormat().anchorHref())
            if link is not None and link.kind == CHECK:
                spans.append((fragment.position(), fragment.length(), fragment.charFormat(), link))
            it += 1
        block = block.next()
    return spans
