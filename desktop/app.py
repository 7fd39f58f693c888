"""The desktop app's entry point: the composition root of the window.

The window shows first; the knowledge base (Chroma, the embedder, the model's header) opens
on a worker thread right after, so start-up never waits for the heavy imports.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QLibraryInfo, QLocale, Qt, QTimer, QTranslator
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

if TYPE_CHECKING:
    from archivist import Settings
    from desktop.backend import Backend

APP_NAME = "Archivist"


# Families that draw Chinese, best first: Noto CJK (what the .deb depends on; Adobe calls the same
# design Source Han Sans), WenQuanYi (older Linux), then those Windows and macOS come with.
CHINESE_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                    "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB")


def install_translations(app: QApplication, locale: QLocale | None = None) -> list[QTranslator]:
    """Load Archivist's and Qt's own translations for the locale (the system's by default).

    A Chinese translation comes with a font that draws it: the application font gets the
    installed Chinese families after its own. Where none is installed the window stays in
    English, since a translation drawn as empty boxes reads worse than no translation."""
    from resources import resource_path

    locale = locale or QLocale.system()
    chinese = locale.language() == QLocale.Language.Chinese
    families = chinese_families() if chinese else []
    if chinese and not families:
        logging.getLogger(__name__).warning(
            "no font on this computer draws Chinese, so the window stays in English "
            "(install one: Debian and Ubuntu's fonts-noto-cjk, Fedora's google-noto-sans-cjk-fonts)")
        return []
    translators = []
    for name, folder in (("archivist", str(resource_path("translations"))),
                         ("qtbase", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath))):
        translator = QTranslator(app)
        if translator.load(locale, name, "_", folder):
            app.installTranslator(translator)
            translators.append(translator)
    if translators and families:
        font = app.font()
        font.setFamilies([font.family(), *families])  # Latin letters keep the system's font
        app.setFont(font)
    return translators


def chinese_families() -> list[str]:
    """The installed font families that draw Chinese, the preferred ones first."""
    from PySide6.QtGui import QFontDatabase

    installed = QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese)
    return [f for f in CHINESE_FAMILIES if f in installed] + sorted(f for f in installed if f not in CHINESE_FAMILIES)


def follow_system_theme(app: QApplication) -> None:
    """Fusion with the system's light or dark colours, so every platform looks right."""
    app.setStyle("Fusion")
    scheme = QGuiApplication.styleHints().colorScheme()
    if scheme.name == "Dark":
        palette = QPalette()
        for role, colour in (
            (QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
            (QPalette.ColorRole.Base, "#1f1f1f"), (QPalette.ColorRole.AlternateBase, "#2a2a2a"),
            (QPalette.ColorRole.Text, "#e6e6e6"), (QPalette.ColorRole.Button, "#353535"),
            (QPalette.ColorRole.ButtonText, "#e6e6e6"), (QPalette.ColorRole.Highlight, "#2e86c1"),
            (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#353535"),
            (QPalette.ColorRole.ToolTipText, "#e6e6e6"), (QPalette.ColorRole.Link, "#5dade2"),
        ):
            palette.setColor(role, colour)
        app.setPalette(palette)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="archivist", description="Archivist, the private knowledge base.")
    parser.add_argument("--data-dir", type=Path, help="use this data folder")
    parser.add_argument("--self-test", action="store_true", help="check the installation without a window and exit")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the window once it is ready, then quit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start Archivist's window (or run the self-test)."""
    multiprocessing.freeze_support()  # the frozen app's own processes (knowledge base, engine) start through main
    args = _arguments(sys.argv[1:] if argv is None else argv)
    from archivist import Settings, configure_logs, crash_reports, enforce_offline, run_self_test

    enforce_offline()
    if args.self_test:
        return run_self_test(args.data_dir)
    settings = Settings.load()
    if args.data_dir:
        settings.data_dir = str(args.data_dir)
    crashes = crash_reports(settings.log_path)  # before this run's own report file opens
    configure_logs(settings.log_path, process="window")
    # The knowledge base takes seconds to open (torch's import): its process starts before anything else
    # (or, with a team server, the connection to it).
    from archivist import connect

    knowledge_base = connect(settings)
    knowledge_base.start()
    first_run = is_first_run(settings)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    from PySide6.QtGui import QIcon

    from resources import resource_path

    app.setWindowIcon(QIcon(str(resource_path("icons", "archivist.svg"))))
    follow_system_theme(app)
    install_translations(app)

    from desktop.backend import Backend
    from desktop.main_window import MainWindow

    backend = Backend(settings, process=knowledge_base)
    window = MainWindow(backend, first_run=first_run)
    window.show()
    window.raise_()
    window.activateWindow()  # keys (Ctrl+Q, typing a question) work before the first click
    if crashes:
        crash_notice(window, crashes)  # the window, its parent, keeps it
    QTimer.singleShot(0, backend.open)
    if os.environ.get("ARCHIVIST_REPORT_STARTUP"):  # for bench/desktop.py
        QTimer.singleShot(0, lambda: print("shown", flush=True))
        backend.ready.connect(lambda: _report_searchable(backend))
    if args.screenshot:
        _screenshot_when_ready(window, backend, args.screenshot)
    logging.getLogger(__name__).info("window shown")
    code = app.exec()
    close(window, backend)
    return code


def close(window: QWidget, backend: Backend) -> None:
    """After the event loop: end the knowledge base and every job (idempotent; the window's close
    did it, but ``app.quit()`` skips that), then delete the window while Qt still runs. Left to the
    interpreter's teardown, a worker's last signal or a widget freed after the application has
    crashed the app on quitting (``Fatal Python error: bool_dealloc``)."""
    import shiboken6

    backend.shutdown()
    window.hide()
    if shiboken6.isValid(window):
        shiboken6.delete(window)


def crash_notice(window: QWidget, reports: list[Path]) -> QMessageBox:
    """Say once, without blocking, that a part of Archivist crashed last time, and where its report is."""
    box = QMessageBox(QMessageBox.Icon.Warning, window.tr("Archivist stopped unexpectedly"), window.tr(
        "Part of Archivist stopped unexpectedly last time ({}). Your documents and conversations are kept. "
        "The crash report is in {}; please include it if you report the problem."
    ).format(", ".join(p.stem.split("-")[1] for p in reports), reports[-1].parent), parent=window)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.open()
    return box


def _report_searchable(backend: Backend) -> None:
    """Print when a first search returns, then this process's memory (for bench/desktop.py)."""
    import psutil

    job = backend.call("io", "first search", lambda kb, _job: kb.search("pump", backend.collection))
    job.done.connect(lambda _r: print(f"searchable\nrss {psutil.Process().memory_info().rss}", flush=True))


def is_first_run(settings: Settings) -> bool:
    """Whether to greet with the first-run page: nothing chosen yet (no settings saved, no model
    set, no team server) and no gpt-oss found."""
    from archivist import config_dir

    chosen = (config_dir() / "settings.toml").exists() or settings.model_path or settings.team_url
    return not chosen and _no_gpt_oss(settings)


def _no_gpt_oss(settings: Settings) -> bool:
    from archivist import find_model
    from rag import ArchivistError

    try:
        return find_model(settings).stand_in
    except ArchivistError:  # no model at all is also "first run"
        return True


def _screenshot_when_ready(window: object, backend: object, path: Path) -> None:
    """Wait for the knowledge base, let the window settle, grab the screen, quit."""

    def shoot() -> None:
        # Grab what the X server shows in the window's place, frame and all, not Qt's own copy.
        screen = QGuiApplication.primaryScreen()
        frame = window.frameGeometry()  # type: ignore[attr-defined]
        image = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        image.save(str(path))
        QApplication.quit()

    backend.ready.connect(lambda: QTimer.singleShot(1500, shoot))  # type: ignore[attr-defined]
    backend.failed.connect(lambda _e: QTimer.singleShot(500, shoot))  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
