"""A cited passage: its text highlighted, where it is, the PDF page itself, and a way to open the file.

Text recognized from a page's image has no text layer to search: that page (of a PDF, or an
image file) is shown as a picture with the passage's box marked on it."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QImage,
    QImageReader,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
    QShortcut,
)
from PySide6.QtPdf import QPdfDocument, QPdfSearchModel
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rag import Source, display_path

_ZOOM = (0.5, 4.0)  # the least and the most, in pane widths


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
        # The page's size: 1 fits the pane's width; Ctrl+plus and Ctrl+minus while the pane has focus.
        self.zoom = 1.0
        self.zoom_out = self._zoom_button("−", self.tr("Zoom out"), QKeySequence.StandardKey.ZoomOut, 1 / 1.25)
        self.zoom_fit = self._zoom_button(self.tr("Fit width"), self.tr("Fit the page to the pane's width"), None, 0)
        self.zoom_in = self._zoom_button("+", self.tr("Zoom in"), QKeySequence.StandardKey.ZoomIn, 1.25)
        self.document = QPdfDocument(self)
        self.search = QPdfSearchModel(self)
        self.search.setDocument(self.document)
        self.pdf = QPdfView()
        self.pdf.setDocument(self.document)
        self.pdf.setSearchModel(self.search)
        self.pdf.setPageMode(QPdfView.PageMode.SinglePage)
        self.pdf.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf.hide()
        self.search.countChanged.connect(self._scroll_to_passage)
        self.image = QLabel()  # a page whose text was recognized, the passage marked on it
        self.image_area = QScrollArea()
        self.image_area.setWidget(self.image)
        self.image_area.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.image_area.hide()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.passage)
        split.addWidget(self.pdf)
        split.addWidget(self.image_area)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)  # the page itself gets the room; the passage above is a few lines
        split.setStretchFactor(2, 4)
        self.split = split
        actions = QHBoxLayout()
        for button in (self.zoom_out, self.zoom_fit, self.zoom_in):
            actions.addWidget(button)
        actions.addStretch(1)
        actions.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(actions)
        layout.addWidget(split, 1)
        self.path: Path | None = None
        self.page: int | None = None
        self.box: tuple[float, float, float, float] | None = None
        self._zoomable(False)

    def _zoom_button(self, text: str, tip: str, key: QKeySequence.StandardKey | None, factor: float) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip if key is None else f"{tip} ({QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)})")
        button.clicked.connect(lambda: self.set_zoom(self.zoom * factor if factor else 1.0))
        if key is not None:
            shortcut = QShortcut(QKeySequence(key), self, lambda: self.set_zoom(self.zoom * factor))
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        return button

    def _zoomable(self, on: bool) -> None:
        self.zoom_out.setEnabled(on and self.zoom > _ZOOM[0])
        self.zoom_in.setEnabled(on and self.zoom < _ZOOM[1])
        self.zoom_fit.setEnabled(on and self.zoom != 1.0)

    def set_zoom(self, zoom: float) -> None:
        """Show the page at ``zoom`` times the pane's width (kept within 0.5 and 4)."""
        self.zoom = round(min(_ZOOM[1], max(_ZOOM[0], zoom)), 3)  # in and out again is 1 (fit), not 0.9999…
        if not self.image_area.isHidden() and self.box is not None:
            self._show_page_image(self.box)  # drawn again at the new width, the box scrolled into view
        self._zoom_pdf()

    def _zoom_pdf(self) -> None:
        if not self.pdf.isHidden():
            if self.zoom == 1.0:
                self.pdf.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            else:
                self.pdf.setZoomMode(QPdfView.ZoomMode.Custom)
                self.pdf.setZoomFactor(self._fit_factor() * self.zoom)
            self._scroll_to_passage()
        self._zoomable(not self.pdf.isHidden() or not self.image_area.isHidden())

    def _fit_factor(self) -> float:
        """The PDF view's zoom factor at which the cited page fills the pane's width."""
        points = self.document.pagePointSize(max(0, (self.page or 1) - 1)).width()
        dots = self.pdf.logicalDpiX() / 72 * max(1.0, points)
        return max(0.05, (self.pdf.viewport().width() - 2 * self.pdf.documentMargins().left()) / dots)

    def _scroll_to_passage(self) -> None:
        """Bring the passage's first match on the cited page into view (it is marked by the search)."""
        if self.page is None or self.pdf.isHidden():
            return
        found = self.search.resultsOnPage(self.page - 1)
        if found:
            # The view shows one page, so its scroll bar spans that page: the match's height on it, in pixels.
            where = found[0].rectangles()[0].top() if found[0].rectangles() else found[0].location().y()
            factor = self._fit_factor() * self.zoom
            y = self.pdf.documentMargins().top() + where * self.pdf.logicalDpiY() / 72 * factor
            self.pdf.verticalScrollBar().setValue(round(y - self.pdf.viewport().height() / 3))

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
        self.open_button.setEnabled(self._readable())
        self.box = citation.box
        if citation.box is not None and self._show_page_image(citation.box):
            self.pdf.hide()
        else:
            self.image_area.hide()
            self._show_pdf_page(text)
        self._zoom_pdf()

    def _give_room(self, pane: QWidget) -> None:
        if pane.isHidden():
            pane.show()
            height = max(1, self.split.height())
            self.split.setSizes([height // 4, height - height // 4, 0] if pane is self.pdf else [height // 4, 0, height - height // 4])

    def _page_image(self, width: int) -> QImage:
        """The cited page as an image ``width`` pixels wide (null when it cannot be drawn)."""
        assert self.path is not None
        if self.path.suffix.lower() == ".pdf":
            if self.page is None or self.document.load(str(self.path)) != QPdfDocument.Error.None_:
                return QImage()
            points = self.document.pagePointSize(self.page - 1)
            return self.document.render(self.page - 1, QSize(width, round(width * points.height() / max(1.0, points.width()))))
        reader = QImageReader(str(self.path))
        reader.setAutoTransform(True)  # as the recognizer saw it: EXIF rotation applied
        if self.page is not None:
            reader.jumpToImage(self.page - 1)
        image = reader.read()
        return image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation) if not image.isNull() else image

    def _show_page_image(self, box: tuple[float, float, float, float]) -> bool:
        if not self._readable():
            return False
        image = self._page_image(round(max(480, self.image_area.viewport().width() - 8) * self.zoom))
        if image.isNull():
            return False
        image = image.convertToFormat(QImage.Format.Format_ARGB32)
        w, h = image.width(), image.height()
        mark = QRectF(box[0] * w, box[1] * h, (box[2] - box[0]) * w, (box[3] - box[1]) * h).adjusted(-4, -4, 4, 4)
        painter = QPainter(image)
        painter.fillRect(mark, QColor(255, 214, 0, 90))
        painter.setPen(QPen(QColor("#d68910"), 2))
        painter.drawRect(mark)
        painter.end()
        self.image.setPixmap(QPixmap.fromImage(image))
        self.image.resize(image.size())
        self._give_room(self.image_area)
        self.image_area.ensureVisible(int(mark.center().x()), int(mark.center().y()), 40, int(mark.height() / 2) + 60)
        return True

    def _show_pdf_page(self, text: str) -> None:
        if self.path is None or self.path.suffix.lower() != ".pdf" or self.page is None or not self._readable():
            self.pdf.hide()
            return
        if self.document.load(str(self.path)) != QPdfDocument.Error.None_:
            self.pdf.hide()
            return
        self._give_room(self.pdf)
        self.pdf.pageNavigator().jump(self.page - 1, QPointF(), 0)
        words = text.split()
        self.search.setSearchString(" ".join(words[:6]) if words else "")

    def _readable(self) -> bool:
        """Whether the cited file is one of this machine's to show: a path a team server sent is
        never a network share (reaching ``\\\\host\\share`` would hand the host the user's sign-in)."""
        return self.path is not None and not str(self.path).startswith(("\\\\", "//")) and self.path.is_file()

    def open_file(self) -> None:
        """Open the file in the system's viewer (the PDF view above shows the cited page)."""
        if self._readable():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path)))
