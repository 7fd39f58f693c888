"""Screenshots of the window as shipped, checked for widgets that overlap or words cut off.

A walk a new user takes, shot at each step: the first-run page; an answer with its PDF
citation open; an answer to a question the starter answers with a code fence; an answer
stopped while it was written; a structured answer. In English and Chinese, at 1x and 1.5x
scaling, on a 1920×1200 screen (at 1.5x it holds 1280×800 logical pixels, the window's own
size: the window must shrink to fit it): docs/screenshots/VIEW-LANG-SCALEx.png. Each language
and scale runs in a process of its own under X (Xvfb is started when there is no display), over
one scratch data folder: the samples (and docs/deployment.md) are indexed once, and the answers
come from the cache after the first run (a stopped answer is never cached: it is written, then
stopped, each time). Prints what overlaps or is cut and exits 1 if anything is.

    python docs/screenshots.py [--out DIR] [--only en-1x,zh-1.5x]

Checked in every view: the window lies within the screen; no visible widget's geometry intersects
a visible sibling's; no visible word-wrapped label is shorter than its text needs; the transcript
needs no sideways scrolling. tests/test_screenshots.py runs it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
RUNS = ("en-1x", "zh-1x", "en-1.5x", "zh-1.5x")
VIEWS = ("first-run", "answer", "code", "stopped", "structured")
SCREEN = (1920, 1200)  # physical pixels; at 1.5x, 1280×800 logical: the window's default size, less the title bar
QUESTION = "How often do the bearings need oil?"  # the quote above the answer holds it
CODE = "How often are the tomato beds watered in summer?"  # with docs/deployment.md the starter wrote ```toml
LONG = "Write a very long essay about pumps, oil and maintenance."  # stopped once it has begun
STRUCTURED = ("key_facts", "What are the key facts about the pump's maintenance?")


def problems(root) -> list[str]:  # root: QWidget (Qt is imported in the child only)
    """Widgets of ``root`` that overlap a sibling, and labels whose text is cut."""
    from PySide6.QtWidgets import QLabel, QWidget

    found = []
    for parent in [root, *root.findChildren(QWidget)]:
        if not parent.isVisible():
            continue
        kids = [w for w in parent.children() if isinstance(w, QWidget) and w.isVisible() and not w.isWindow()
                and not w.geometry().isEmpty()]
        for a, b in itertools.combinations(kids, 2):
            if a.geometry().intersects(b.geometry()):
                found.append(f"overlap: {_name(a)} {_rect(a)} and {_name(b)} {_rect(b)} in {_name(parent)}")
        if isinstance(parent, QLabel) and parent.wordWrap() and parent.text():
            needed = parent.heightForWidth(parent.width())
            if parent.height() < needed:
                found.append(f"cut: {_name(parent)} is {parent.height()} px high, its text needs {needed}")
    return found


def _name(widget) -> str:
    text = getattr(widget, "text", None)
    label = text()[:40] if callable(text) and isinstance(text(), str) and text() else widget.objectName()
    return f"{type(widget).__name__}" + (f" {label!r}" if label else "")


def _rect(widget) -> str:
    g = widget.geometry()
    return f"({g.x()},{g.y()} {g.width()}x{g.height()})"


def fits(window) -> list[str]:  # window: QWidget
    """The window (its frame too) lies within its screen's available area."""
    room, frame = window.screen().availableGeometry(), window.frameGeometry()
    if room.contains(frame):
        return []
    size = f"{frame.width()}x{frame.height()} at ({frame.x()},{frame.y()})"
    return [f"window: {size} does not fit the screen's {room.width()}x{room.height()}"]


def child(lang: str, out: Path, data: Path) -> int:
    """One language at the scale QT_SCALE_FACTOR sets: the walk's views, saved and checked."""
    from PySide6.QtCore import QLocale, QTimer
    from PySide6.QtWidgets import QApplication

    from archivist import Settings
    from desktop.app import close, follow_system_theme, install_translations
    from desktop.backend import Backend
    from desktop.main_window import MainWindow

    app = QApplication([])
    follow_system_theme(app)
    if lang == "zh" and not install_translations(app, QLocale("zh_CN")):
        print("problem: no font here draws Chinese", flush=True)
        return 1
    backend = Backend(Settings(data_dir=str(data)))
    window = MainWindow(backend, first_run=True)  # sized to the screen as the app opens it
    window.show()
    scale = os.environ.get("QT_SCALE_FACTOR", "1")
    state: dict[str, object] = {"step": "first-run", "since": time.monotonic(), "code": 0}
    chat = window.chat

    def shoot(view: str) -> None:
        app.processEvents()
        path = out / f"{view}-{lang}-{scale}x.png"
        window.grab().save(str(path))
        print(f"wrote {path}", flush=True)
        found = fits(window) + problems(window)
        if chat.transcript.horizontalScrollBar().isVisible():
            found.append("cut: the transcript scrolls sideways")
        for problem in found:
            print(f"problem: {view}: {problem}", flush=True)
            state["code"] = 1

    def then(step: str) -> None:
        state["step"], state["since"] = step, time.monotonic()

    def waited(seconds: float) -> bool:
        return time.monotonic() - float(state["since"]) > seconds

    def idle() -> bool:
        return not chat.busy and window.asking.ask_job is None and bool(chat.turns)

    def ask(question: str) -> None:
        chat.question.setPlainText(question)
        chat._submit()

    def tick() -> None:
        step = state["step"]
        if waited(600):
            print(f"problem: timed out at step {step}", flush=True)
            state["code"] = 1
            app.quit()
        elif step == "first-run":
            shoot("first-run")
            window.pages.setCurrentIndex(0)
            then("samples")
        elif step == "samples" and backend.kb is not None:
            window.load_samples()
            then("deployment")
        elif step == "deployment" and window.ingest_job is None and window.library.model.rowCount() >= 3:
            window.add_paths([ROOT / "docs" / "deployment.md"], False)
            then("indexed")
        elif step == "indexed" and window.ingest_job is None and window.library.model.rowCount() >= 4:
            ask(QUESTION)
            then("answered")
        elif step == "answered" and idle():
            turn = chat.turns[-1]
            print(f"answer: {turn.answer!r}", flush=True)
            shown = turn.citations or turn.sources
            pdf = [s for s in shown if str(s.path).lower().endswith(".pdf")]
            chat.citation_clicked.emit((pdf or shown)[0])
            then("answer")
        elif step == "answer" and waited(2):  # the page drawn
            shoot("answer")
            ask(CODE)
            then("code")
        elif step == "code" and idle() and chat.turns[-1].question == CODE and waited(0.5):
            print(f"code fence: {'```' in chat.turns[-1].answer}", flush=True)
            shoot("code")
            ask(LONG)
            then("writing")
        elif step == "writing" and chat.turns[-1].question == LONG and chat.turns[-1].answer.strip():
            chat.stop.emit()
            then("stopped")
        elif step == "stopped" and idle() and waited(0.5):
            shoot("stopped")
            structured = chat.structured
            structured.toggle.setChecked(True)
            structured.picker.setCurrentIndex(structured.picker.findData(STRUCTURED[0]))
            ask(STRUCTURED[1])
            then("structured")
        elif step == "structured" and idle() and chat.turns[-1].question == STRUCTURED[1]:
            tree = chat.structured.tree
            if tree.topLevelItemCount():
                tree.setCurrentItem(tree.topLevelItem(0))
            then("shoot structured")
        elif step == "shoot structured" and waited(1):
            shoot("structured")
            app.quit()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(250)
    QTimer.singleShot(0, backend.open)
    app.exec()
    close(window, backend)
    return int(state["code"])


def _display() -> tuple[dict[str, str], subprocess.Popen | None]:
    """An X display: the session's, else an Xvfb of our own, of the screen the walk is made for."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "QT_SCALE_FACTOR")}
    if os.environ.get("DISPLAY"):
        return env, None
    if shutil.which("Xvfb") is None:
        sys.exit("no display and no Xvfb (tests/setup-system.sh installs it)")
    display = f":{60 + os.getpid() % 30}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
    for _ in range(150):  # a busy machine takes a moment to open the display
        if socket.exists() or xvfb.poll() is not None:
            break
        time.sleep(0.1)
    return {**env, "DISPLAY": display}, xvfb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", default=",".join(RUNS), help="runs, e.g. en-1x,zh-1.5x")
    parser.add_argument("--child", nargs=3, metavar=("LANG", "OUT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        lang, out, data = args.child
        code = child(lang, Path(out), Path(data))
        sys.stdout.flush()
        # Skips the interpreter's teardown, where PySide once aborted ("bool_dealloc") after the work was done.
        os._exit(code)
    args.out.mkdir(parents=True, exist_ok=True)
    env, xvfb = _display()
    scratch = Path(tempfile.mkdtemp(prefix="archivist-shots-"))
    env.update(QT_QPA_PLATFORM="xcb", ARCHIVIST_CONFIG_DIR=str(scratch / "config"),
               ARCHIVIST_SYSTEM_CONFIG=str(scratch / "system.toml"), LANGUAGE="", LC_ALL="C.UTF-8")
    found: dict[str, list[str]] = {}
    try:
        for run in args.only.split(","):
            lang, scale = run.split("-")
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, __file__, "--child", lang, str(args.out), str(scratch / "data")],
                env={**env, "QT_SCALE_FACTOR": scale.rstrip("x")}, check=False, capture_output=True, text=True, timeout=900)
            lines = result.stdout.splitlines()
            found[run] = [line for line in lines if line.startswith("problem:")]
            if result.returncode and not found[run]:
                fatal = [line for line in result.stderr.splitlines() if line.startswith("Fatal Python error")]
                found[run] = [f"problem: exit {result.returncode}: {' '.join(fatal)} {result.stderr[-1500:]}"]
            print(f"{run}: {sum(ln.startswith('wrote') for ln in lines)} screenshots, {len(found[run])} problems, "
                  f"{time.monotonic() - started:.0f} s", flush=True)
            for line in found[run] + [line for line in lines if line.startswith(("answer:", "code fence:"))]:
                print(f"  {line}", flush=True)
    finally:
        if xvfb is not None:
            xvfb.terminate()
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"problems": found}))
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
