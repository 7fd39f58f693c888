"""The window as people see it, under a real X server: the first-run page, an answer with its
PDF citation open, an answer with a code fence, a stopped answer and a structured answer, in
English and Chinese, at 1x and 1.5x. The window must fit the screen, no widget may overlap a
sibling and no label may be cut (docs/screenshots.py, which also makes the images kept in
docs/screenshots/)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QWidget

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("first-run", "answer", "code", "stopped", "structured")
RUNS = ("en-1x", "zh-1x", "en-1.5x", "zh-1.5x")
SCREEN = (1920, 1200)  # docs/screenshots.py's Xvfb: at 1.5x the window must shrink to fit it


def distinct_colours(image: QImage) -> int:
    step = max(1, image.width() // 64)
    return len({image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)})


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (make test installs it)")
def test_every_view_in_both_languages_and_scales_fits_and_has_nothing_overlapping_or_cut(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # the walk's own screen, of a known size
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "screenshots.py"), "--out", str(tmp_path)],
                            check=False, capture_output=True, text=True, timeout=1800, env=env)
    report = json.loads(result.stdout.splitlines()[-1]) if result.stdout.strip() else {}
    assert result.returncode == 0 and not any(report["problems"].values()), result.stdout[-4000:] + result.stderr[-2000:]
    for view in VIEWS:
        one, half = QImage(str(tmp_path / f"{view}-en-1x.png")), QImage(str(tmp_path / f"{view}-en-1.5x.png"))
        assert (one.width(), one.height()) == (1280, 800), view  # the window's own size, where the screen holds it
        assert half.width() <= SCREEN[0] and half.height() <= SCREEN[1], view  # shrunk to the screen at 1.5x
        assert half.width() > one.width() and half.height() > one.height(), view  # still drawn larger
        for run in RUNS:
            image = QImage(str(tmp_path / f"{view}-{run}.png"))
            assert not image.isNull() and distinct_colours(image) > 8, f"{view}-{run} is blank"  # a blank window has one or two
    for name in (f"{view}-{run}.png" for view in VIEWS for run in RUNS):
        assert (ROOT / "docs" / "screenshots" / name).exists(), f"docs/screenshots/{name}: run docs/screenshots.py"


def test_the_check_finds_widgets_that_overlap_and_labels_that_are_cut(qtbot):
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "docs" / "screenshots.py")
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    parent = QWidget()
    qtbot.addWidget(parent)
    QLabel("one", parent).setGeometry(0, 0, 100, 20)
    QLabel("two", parent).setGeometry(50, 10, 100, 20)
    cut = QLabel("a sentence that needs several lines at this width " * 3, parent)
    cut.setWordWrap(True)
    cut.setGeometry(0, 40, 100, 15)
    parent.resize(300, 200)
    parent.show()
    found = screenshots.problems(parent)
    assert any(f.startswith("overlap: QLabel 'one'") and "QLabel 'two'" in f for f in found), found
    assert any(f.startswith("cut: QLabel 'a sentence") for f in found), found
    cut.setGeometry(0, 40, 100, cut.heightForWidth(100))
    assert all("cut:" not in f for f in screenshots.problems(parent))
