"""The sentences to check, as the transcript marks them: a subtle underline, the reason on hover, and
the source a click opens.

Its strings are translated under the chat panel's context ("ChatPanel"), where they were filed when
the panel marked the sentences itself."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QBrush, QColor, QTextCharFormat

from desktop.plain_text import tooltip
from rag import Claim

_UNDERLINE = "#c07000"


def mark_claim(form: QTextCharFormat, ink: QBrush, tip: str) -> None:
    """Style ``form`` as a sentence to check: in the colour of plain text (``ink``), so that it does
    not look like a link, underlined with dots, ``tip`` on hover."""
    form.setForeground(ink)
    form.setFontUnderline(True)
    form.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
    form.setUnderlineColor(QColor(_UNDERLINE))
    form.setToolTip(tooltip(tip))


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
