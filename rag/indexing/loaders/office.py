"""What the Office loaders (.docx, .xlsx, .pptx) share: a password-protected file is an OLE
container, not the zip its name promises, and is told apart from a corrupt one."""

from __future__ import annotations

from pathlib import Path

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def ole_container(path: Path) -> bool:
    """Whether an Office file is an OLE container: with a .docx, .xlsx or .pptx name, that
    is a password-protected document (or an old binary format)."""
    with path.open("rb") as f:
        return f.read(8) == _OLE_MAGIC
