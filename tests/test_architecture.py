"""The arrows point one way (docs/architecture.md): desktop | server -> archivist -> rag -> engine; only desktop touches Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_packages_is_cheap():
    code = (
        "import sys, rag, archivist, rag.knowledge_base, rag.service.dispatch, rag.service.http_channel, archivist.cli, engine;"
        "heavy = {'torch', 'chromadb', 'sentence_transformers', 'llama_cpp', 'PySide6'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
