"""The About box: versions and licences, the models' included."""

from __future__ import annotations

import platform
from importlib import metadata

from PySide6.QtCore import QCoreApplication, qVersion
from PySide6.QtWidgets import QMessageBox, QWidget


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def show_about(parent: QWidget) -> None:
    """Show versions of Archivist and its main parts, and the licences that apply."""
    parts = [
        ("Archivist", _version("archivist"), "MIT"),
        ("Python", platform.python_version(), "PSF"),
        ("Qt / PySide6", f"{qVersion()} / {_version('PySide6-Essentials')}", "LGPL-3.0"),
        ("llama.cpp (llama-cpp-python)", _version("llama_cpp_python"), "MIT"),
        ("ChromaDB", _version("chromadb"), "Apache-2.0"),
        ("sentence-transformers", _version("sentence-transformers"), "Apache-2.0"),
        ("openai-harmony", _version("openai-harmony"), "Apache-2.0"),
        ("all-MiniLM-L6-v2 " + QCoreApplication.translate("About", "(embedding model)"), "", "Apache-2.0"),
        ("SmolLM2-135M-Instruct " + QCoreApplication.translate("About", "(starter model)"), "", "Apache-2.0"),
        ("gpt-oss-20b / 120b " + QCoreApplication.translate("About", "(when downloaded)"), "", "Apache-2.0"),
        ("o200k_base " + QCoreApplication.translate("About", "(vocabulary)"), "", "MIT"),
    ]
    rows = "".join(f"<tr><td>{name}</td><td>{version}</td><td>{licence}</td></tr>" for name, version, licence in parts)
    part = QCoreApplication.translate("About", "Part")
    version = QCoreApplication.translate("About", "Version")
    licence = QCoreApplication.translate("About", "Licence")
    QMessageBox.about(
        parent,
        QCoreApplication.translate("About", "About Archivist"),
        QCoreApplication.translate("About", "<h3>Archivist</h3><p>A private knowledge base that stays on this computer.</p>")
        + f"<table cellspacing='6'><tr><th align='left'>{part}</th><th align='left'>{version}</th>"
        f"<th align='left'>{licence}</th></tr>{rows}</table>",
    )
