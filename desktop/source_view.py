"""A cited passage: its text highlighted, where it is, the PDF page itself, and a way to open the file."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtPdf import QPdfDocument, QPdfSearchModel
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QTextBrowser, QVBoxLayout, QWidget

from rag import Source, display_path


class SourcePanel(QWidget):
    """Shows one citation; for a PDF also the cited page, the passage marked by a search."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self.tr("Click a citation to see its source."))
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.passage = QTextBrowser()
        self.open_button = QPushButton(self.tr("Open file"))
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_file)
        self.document = QPdfDocument(self)
        self.search = QPdfSearchModel(self)
        self.search.setDocument(self.document)
        self.pdf = QPdfView()
        self.pdf.setDocument(self.document)
        self.pdf.setSearchModel(self.search)
        self.pdf.setPageMode(QPdfView.PageMode.SinglePage)
        self.pdf.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf.hide()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.passage)
        split.addWidget(self.pdf)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)  # the page itself gets the room; the passage above is a few lines
        self.split = split
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(actions)
        layout.addWidget(split, 1)
        self.path: Path | None = None
        self.page: int | None = None

    def show_citation(self, citation: Source) -> None:
        """Show a citation (or a source): file and page, the passage highlighted, the PDF page."""
        self.path, self.page = Path(citation.path), citation.page
        where = self.tr("page {}").format(citation.page) if citation.page is not None else ""
        heading = f" — {citation.heading}" if citation.heading else ""
        self.title.setText(f"[{citation.number}] <b>{html.escape(self.path.name)}</b> {where}{html.escape(heading)}"
                           f"<br><small>{html.escape(display_path(self.path))}</small>")
        text = citation.text
        self.passage.setHtml(
            f"<p style='white-space: pre-wrap'><span style='background-color: #fff3a8; color: #000'>{html.escape(text.strip())}</span></p>"
        )
        self.open_button.setEnabled(self.path.exists())
        self._show_pdf_page(text)

    def _show_pdf_page(self, text: str) -> None:
        if self.path is None or self.path.suffix.lower() != ".pdf" or self.page is None or not self.path.exists():
            self.pdf.hide()
            return
        if self.document.load(str(self.path)) != QPdfDocument.Error.None_:
            self.pdf.hide()
            return
        if self.pdf.isHidden():
            self.pdf.show()
            height = max(1, self.split.height())
            self.split.setSizes([height // 4, height - height // 4])
        self.pdf.pageNavigator().jump(self.page - 1, QPointF(), 0)
        words = text.split()
        self.search.setSearchString(" ".join(words[:6]) if words else "")

    def open_file(self) -> None:
        """Open the file in the system's viewer (the PDF view above shows the cited page)."""
        if self.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path)))
