"""Nothing reaches past loopback during ingest or search."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from samples import PROSE, make_pdf


def test_ingest_and_search_open_no_outside_socket(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(PROSE[0])
    make_pdf(corpus / "b.pdf", PROSE[1:3])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "ANONYMIZED"))}
    env["PYTHONPATH"] = str(Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("offline_probe.py")), str(tmp_path / "data"), str(corpus)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ATTEMPTS 0" in result.stdout, result.stdout
