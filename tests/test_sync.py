"""`archivist-cli sync`: a collection kept in step with a folder, once or watching it."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from samples import PROSE

from archivist.cli import main
from rag.indexing.folder_changes import Changes, FolderWatcher, worth_indexing


def _corpus(root: Path) -> Path:
    root.mkdir()
    for i, text in enumerate(PROSE[:3]):
        (root / f"note{i}.txt").write_text(text)
    return root


def test_sync_once_adds_changes_and_removes(capsys, tmp_path: Path):
    folder = _corpus(tmp_path / "shared")
    assert main(["sync", str(folder), "-c", "Team"]) == 0
    out = capsys.readouterr().out
    assert out.count("indexed ") == 3 and "holds 3 documents" in out

    (folder / "note0.txt").write_text("The pump in hall 3 needs oil every 200 hours.")
    (folder / "note1.txt").unlink()
    (folder / "new.md").write_text("# Boilers\n\nThe boiler is serviced in May.")
    assert main(["sync", str(folder), "-c", "Team"]) == 0
    out = capsys.readouterr().out
    assert "removed  " in out and "note1.txt" in out
    assert sum("indexed " in line for line in out.splitlines()) == 2
    assert "holds 3 documents" in out


def test_watcher_settles_bursts_into_one_change_set(tmp_path: Path):
    folder = tmp_path / "w"
    folder.mkdir()
    delivered: queue.Queue[Changes] = queue.Queue()
    watcher = FolderWatcher([folder], delivered.put, settle=0.5)
    watcher.start()
    try:
        for i in range(5):
            (folder / f"a{i}.txt").write_text(f"text {i}")
        (folder / "~$draft.docx").write_text("lock file")
        (folder / "a4.txt").unlink()
        changes = delivered.get(timeout=10)
        assert changes.changed == {folder / f"a{i}.txt" for i in range(4)}
        assert changes.removed == {folder / "a4.txt"}
        assert delivered.empty()
    finally:
        watcher.stop()
    assert not worth_indexing(folder / "report.docx.tmp") and not worth_indexing(folder / ".hidden.txt")
    assert worth_indexing(folder / "report.docx")


def test_sync_watch_follows_the_folder_and_logs(tmp_path: Path):
    folder = _corpus(tmp_path / "shared")
    data = tmp_path / "data"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "archivist.cli", "--data-dir", str(data), "sync", str(folder), "-c", "Team", "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()

    def wait_for(*words: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if all(w in line for w in words):
                return line
        raise AssertionError(f"no line with {words}")

    try:
        wait_for("watching")
        (folder / "boiler.md").write_text("# Boilers\n\nThe boiler is serviced every May.")
        wait_for("indexed", "boiler.md")
        (folder / "note2.txt").unlink()
        wait_for("removed", "note2.txt")
        sub = folder / "archive"
        sub.mkdir()
        (sub / "old.txt").write_text("An old memo about the car park.")
        wait_for("indexed", "old.txt")
        shutil.move(str(sub), str(tmp_path / "elsewhere"))  # a folder moved out of the watch
        wait_for("removed", "old.txt")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        errors = proc.stderr.read()
        proc.stderr.close()
        proc.stdout.close()
    assert proc.returncode == 0, errors[-2000:]
    log = (data / "logs" / "archivist.log").read_text()
    assert "indexed  " in log and "boiler.md" in log and "removed  " in log and "stopped watching" in log

    assert main(["--data-dir", str(data), "status", "-c", "Team"]) == 0
