"""A cited passage: its text highlighted, where it is, the PDF page itself, and a way to open the file.

On a PDF page with a text layer the passage is marked line by line where PDFium's text positions
put it (``archivist.pdf_marks``). Text recognized from a page's image has no text layer: that page
(of a PDF, or an image file) is shown as a picture with the passage's box marked on it."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QGuiApplication,
    QImage,
    QImageReader,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QShortcut,
)
from PySide6.QtPdf import QPdfDocument
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

from archivist.pdf_marks import Rect, passage_rects
from rag import Source, display_path

_ZOOM = (0.5, 4.0)  # the least and the most, in pane widths
_MARK = QColor(255, 222, 60)  # multiplied into the page: white turns yellow, the letters stay black


class MarkedPdfView(QPdfView):
    """A PDF view (one page at a time) that marks a passage's lines over the page it shows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.marks: dict[int, list[Rect]] = {}  # page index -> rectangles in points from its top-left

    def set_marks(self, marks: dict[int, list[Rect]]) -> None:
        """Mark these rectangles on their pages (by index) from now on."""
        self.marks = marks
        self.viewport().update()

    def page_frame(self) -> tuple[QRectF, float] | None:
        """Where the shown page lies in the viewport, and its pixels per point (as QPdfView lays it out)."""
        document = self.document()
        if document is None or document.status() != QPdfDocument.Status.Ready:
            return None
        points = document.pagePointSize(self.pageNavigator().currentPage())
        if points.width() <= 0 or points.height() <= 0:
            return None
        screen = QGuiApplication.primaryScreen()
        dots = (screen.logicalDotsPerInch() if screen is not None else 96.0) / 72
        margins, width = self.documentMargins(), self.viewport().width()
        if self.zoomMode() == QPdfView.ZoomMode.Custom:
            w, h = round(points.width() * dots * self.zoomFactor()), round(points.height() * dots * self.zoomFactor())
        else:  # fit to width
            w0, h0 = round(points.width() * dots), round(points.height() * dots)
            factor = (width - margins.left() - margins.right()) / max(1, w0)
            w, h = round(w0 * factor), round(h0 * factor)
        x = (max(w + margins.left() + margins.right(), width) - w) // 2
        frame = QRectF(x - self.horizontalScrollBar().value(), margins.top() - self.verticalScrollBar().value(), w, h)
        return frame, w / points.width()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        rects = self.marks.get(self.pageNavigator().currentPage())
        placed = self.page_frame() if rects else None
        if not rects or placed is None:
            return
        frame, scale = placed
        painter = QPainter(self.viewport())
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
        for left, top, right, bottom in rects:
            mark = QRectF(frame.left() + left * scale, frame.top() + top * scale, (right - left) * scale,
                          (bottom - top) * scale)
            painter.fillRect(mark.adjusted(-1, -1, 1, 1), _MARK)
        painter.end()


class SourcePanel(QWidget):
    """Shows one citation; for a PDF also the cited page, the passage marked on it line by line."""

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
        self.pdf = MarkedPdfView()
        self.pdf.setDocument(self.document)
        self.pdf.setPageMode(QPdfView.PageMode.SinglePage)
        self.pdf.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf.hide()
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
        """Bring the passage's first marked line on the cited page into view, a third down the pane."""
        if self.page is None or self.pdf.isHidden():
            return
        rects = self.pdf.marks.get(self.page - 1)
        placed = self.pdf.page_frame()
        if rects and placed is not None:
            # The view shows one page, so its scroll bar spans that page: the mark's height on it, in pixels.
            frame, scale = placed
            y = frame.top() + self.pdf.verticalScrollBar().value() + min(r[1] for r in rects) * scale
            self.pdf.verticalScrollBar().setValue(round(y - self.pdf.viewport().height() / 3))

    def clear(self) -> None:
        """Show no source (a new conversation, another collection): the hint again, nothing open."""
        self.path = self.page = self.box = None
        self.title.setText(self.tr("Click a citation to see its source."))
        self.passage.clear()
        self.pdf.set_marks({})
        self.pdf.hide()
        self.image_area.hide()
        self.document.close()
        self.open_button.setEnabled(False)
        self._zoomable(False)

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
        if not self.pdf.isHidden():  # once more when the pane has its size: the page's height follows its width
            QTimer.singleShot(0, self, self._scroll_to_passage)

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
        self.pdf.set_marks({})
        if self.path is None or self.path.suffix.lower() != ".pdf" or self.page is None or not self._readable():
            self.pdf.hide()
            return
        if self.document.load(str(self.path)) != QPdfDocument.Error.None_:
            self.pdf.hide()
            return
        self._give_room(self.pdf)
        self.pdf.pageNavigator().jump(self.page - 1, QPointF(), 0)
        # A passage never spans pages (the loader cuts at each), and the view shows one page: its marks are the page's.
        self.pdf.set_marks({self.page - 1: passage_rects(self.path, self.page - 1, text)})

    def _readable(self) -> bool:
        """Whether the cited file is one of this machine's to show: a path a team server sent is
        never a network share (reaching ``\\\\host\\share`` would hand the host the user's sign-in)."""
        return self.path is not None and not str(self.path).startswith(("\\\\", "//")) and self.path.is_file()

    def open_file(self) -> None:
        """Open the file in the system's viewer (the PDF view above shows the cited page)."""
        if self._readable():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path)))
