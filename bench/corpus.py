"""A generated corpus of real English prose for the benchmarks: PDFs of Python's own docs.

The text is the standard library's docstrings (real prose, shipped with Python), laid out
by reportlab into pages; the same seed always gives the same corpus.
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from pathlib import Path

_MODULES = [
    "argparse", "asyncio", "collections", "concurrent.futures", "contextlib", "csv", "dataclasses",
    "datetime", "decimal", "email", "enum", "functools", "gzip", "hashlib", "heapq", "http.client",
    "inspect", "io", "itertools", "json", "logging", "mailbox", "multiprocessing", "os", "pathlib",
    "pickle", "queue", "random", "re", "shutil", "socket", "sqlite3", "statistics", "string",
    "subprocess", "tarfile", "tempfile", "textwrap", "threading", "typing", "unittest", "urllib.request",
    "uuid", "xml.etree.ElementTree", "zipfile", "zoneinfo", "difflib", "fractions", "calendar", "bisect",
]


def paragraphs() -> list[str]:
    """Docstring paragraphs of the standard library, in a fixed order."""
    out: list[str] = []
    for name in _MODULES:
        module = importlib.import_module(name)
        objects = [module] + [obj for _, obj in sorted(vars(module).items()) if inspect.isclass(obj) or inspect.isfunction(obj)]
        for obj in objects:
            if getattr(obj, "__module__", name) not in (name, None) and obj is not module:
                continue
            doc = inspect.getdoc(obj) or ""
            for para in doc.split("\n\n"):
                para = " ".join(para.split())
                if len(para) > 80 and not para.startswith((">>>", "...")):
                    out.append(para)
    return out


def write_pdfs(folder: Path, pages: int = 240, pages_per_file: int = 12) -> list[Path]:
    """Lay the prose out as ``pages`` A4 pages, ``pages_per_file`` pages per PDF."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    folder.mkdir(parents=True, exist_ok=True)
    source = paragraphs()
    files: list[Path] = []
    cursor = 0
    for index in range(pages // pages_per_file):
        path = folder / f"doc{index:03}.pdf"
        c = canvas.Canvas(str(path), pagesize=A4)
        for _ in range(pages_per_file):
            y = 800
            while y > 80:
                lines = textwrap.wrap(source[cursor % len(source)], 95)
                cursor += 1
                for line in lines:
                    if y <= 60:
                        break
                    c.drawString(40, y, line)
                    y -= 13
                y -= 9
            c.showPage()
        c.save()
        files.append(path)
    return files


if __name__ == "__main__":
    import sys

    print(len(write_pdfs(Path(sys.argv[1]))), "files")
