"""The first minutes with the window: a first-run page that reads cleanly and does not come back
once a choice is made, Ctrl+Q before any click, and a cited page shown at a readable size."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from archivist.settings import Settings, config_dir
from desktop.app import is_first_run
from desktop.backend import Backend
from desktop.main_window import MainWindow
from desktop.welcome import WelcomePage
from rag.answering.sources import Source


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.mark.parametrize("size", [(1280, 800), (800, 600), (640, 480)])
def test_the_first_run_page_s_words_neither_overlap_nor_get_cut(qtbot, tmp_path: Path, size: tuple[int, int]):
    page = WelcomePage(tmp_path / "models")
    qtbot.addWidget(page)
    page.resize(*size)
    page.show()
    qtbot.waitExposed(page)
    shown = [w for w in page.findChildren(QLabel) + page.findChildren(QPushButton) if w.isVisible()]
    for label in (w for w in shown if isinstance(w, QLabel)):
        assert label.height() >= label.heightForWidth(label.width()), label.text()  # every line of it shown
    boxes = sorted((w.mapTo(page, w.rect().topLeft()).y(), w.height(), w.text()) for w in shown)
    for (top, height, text), (next_top, _, next_text) in itertools.pairwise(boxes):
        assert top + height <= next_top, f"{text!r} runs into {next_text!r}"


def test_choosing_the_starter_model_is_remembered(qtbot, settings: Settings):
    assert is_first_run(settings)  # no settings saved, no gpt-oss here
    win = MainWindow(Backend(settings), first_run=True)
    qtbot.addWidget(win)
    assert win.pages.currentWidget() is win.welcome
    win.welcome.use_starter.emit()
    assert win.pages.currentIndex() == 0
    assert (config_dir() / "settings.toml").exists()
    assert not is_first_run(Settings.load())  # the next launch opens on the library


def test_ctrl_q_quits_before_anything_was_clicked(qtbot, settings: Settings):
    win = MainWindow(Backend(settings))
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()  # as the app does after show()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5_000)
    quit_action = next(a for a in win.findChildren(type(win.menuBar().actions()[0])) if a.text() == "Quit")
    assert "Ctrl+Q" in [k.toString() for k in quit_action.shortcuts()]
    assert quit_action.shortcutContext() == Qt.ShortcutContext.ApplicationShortcut
    qtbot.keyClick(win.chat.question, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=5_000)


def test_a_cited_page_gets_room_to_be_read(qtbot, settings: Settings, tmp_path: Path):
    win = MainWindow(Backend(settings))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    QApplication.processEvents()
    before = win.split.sizes()
    assert before[2] < 0.4 * sum(before)
    source = Source(1, tmp_path / "manual.pdf", 2, None, 0, 40, "The bearings need oil every 200 hours.", 1.0)
    win.chat.citation_clicked.emit(source)
    after = win.split.sizes()
    assert after[2] >= 0.39 * sum(after) and after[0] >= 300  # the library keeps room for its names
    assert "manual.pdf" in win.sources.title.text()


def test_a_cited_pdf_page_zooms_and_keeps_its_passage_in_view(qtbot, settings: Settings, tmp_path: Path):
    from PySide6.QtPdfWidgets import QPdfView
    from samples import make_pdf

    passage = "The bearings need oil every 200 operating hours."
    filler = "\n".join(f"Line {i} of the introduction says nothing about maintenance." for i in range(36))
    pdf = make_pdf(tmp_path / "manual.pdf", ["Cover page.", f"{filler}\n{passage}"])  # the passage at the page's foot
    win = MainWindow(Backend(settings))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    panel = win.sources
    assert not panel.zoom_in.isEnabled()  # nothing to zoom yet
    win.chat.citation_clicked.emit(Source(1, pdf, 2, None, 0, len(passage), passage, 1.0))
    qtbot.waitUntil(lambda: bool(panel.pdf.marks.get(1)), timeout=10_000)  # the passage found and marked on its page
    assert panel.pdf.zoomMode() == QPdfView.ZoomMode.FitToWidth and panel.zoom_in.isEnabled()
    assert not panel.zoom_fit.isEnabled()
    fit = panel._fit_factor()
    panel.zoom_in.click()
    panel.zoom_in.click()
    assert panel.pdf.zoomMode() == QPdfView.ZoomMode.Custom
    assert abs(panel.pdf.zoomFactor() - fit * 1.562) < 1e-6 and panel.zoom_fit.isEnabled()
    bar = panel.pdf.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() > bar.maximum() // 2, timeout=5_000)  # scrolled to it
    panel.zoom_out.click()
    panel.zoom_out.click()
    assert panel.zoom == 1.0 and panel.pdf.zoomMode() == QPdfView.ZoomMode.FitToWidth and not panel.zoom_fit.isEnabled()
    for _ in range(10):
        panel.zoom_out.click()
    assert panel.zoom == 0.5 and not panel.zoom_out.isEnabled()
    panel.zoom_fit.click()
    assert panel.pdf.zoomMode() == QPdfView.ZoomMode.FitToWidth and panel.zoom == 1.0
