"""Make docs/screenshot.png: the window as shipped, the samples loaded, a question asked, its
first citation open. Runs offscreen, in a scratch data folder.

    python docs/screenshot.py [OUT.png]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How often do the bearings need oil, and which oil?"


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"
    scratch = Path(tempfile.mkdtemp(prefix="archivist-shot-"))
    os.environ.update(QT_QPA_PLATFORM="offscreen", ARCHIVIST_CONFIG_DIR=str(scratch / "config"),
                      ARCHIVIST_DATA_DIR=str(scratch / "data"), ARCHIVIST_SYSTEM_CONFIG=str(scratch / "system.toml"))
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.backend import Backend
    from desktop.main_window import MainWindow
    from rag.app import Settings

    app = QApplication([])
    backend = Backend(Settings.load())
    window = MainWindow(backend)
    window.resize(1360, 820)
    window.show()
    steps = iter(["samples", "ask", "cite", "shoot"])
    state = {"step": next(steps)}

    def tick() -> None:
        step = state["step"]
        if step == "samples" and backend.kb is not None:
            window.load_samples()
        elif step == "ask" and window.ingest_job is None and window.library.model.rowCount() >= 3:
            window.chat.question.setPlainText(QUESTION)
            window.chat._submit()
        elif step == "cite" and not window.chat.busy and window.asking.ask_job is None and window.chat.turns:
            turn = window.chat.turns[-1]
            shown = turn.citations or turn.sources
            if shown:
                window.chat.citation_clicked.emit(shown[0])
        elif step == "shoot":
            window.grab().save(str(out))
            print(f"wrote {out}")
            app.quit()
            return
        else:
            return
        state["step"] = next(steps)

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(1500)
    QTimer.singleShot(0, backend.open)
    code = app.exec()
    backend.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
