"""A one-line label that never widens what holds it: a long text is elided, and whole in its tooltip.

A plain ``QLabel`` asks for the width of its whole text as its minimum, so a long file name in a
progress line widens the pane or the status bar that holds it, and the window with them."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget

from desktop.plain_text import tooltip


class ElidedLabel(QLabel):
    """Shows as much of its text as fits, cut with "…" (in the middle by default); ``text()`` is
    the whole text, and so is the tooltip while the text is cut."""

    def __init__(self, text: str = "", elide: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)  # file and model names are text, never HTML
        self._whole = ""
        self._elide = elide
        self._tooltip = ""
        self.setText(text)

    def text(self) -> str:  # the whole text, not the part shown
        return self._whole

    def setText(self, text: str) -> None:
        self._whole = text
        self.updateGeometry()
        self._fit()

    def setToolTip(self, text: str) -> None:
        self._tooltip = text
        self._fit()

    def shown(self) -> str:
        """The text as drawn (cut to the width)."""
        return super().text()

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._whole) + margins.left() + margins.right() + 2
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 4, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self._whole, self._elide, max(0, room))
        super().setText(shown)
        cut = shown != self._whole
        tip = "\n".join(t for t in (self._whole if cut else "", self._tooltip) if t)
        super().setToolTip(tooltip(tip))
