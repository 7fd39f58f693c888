"""PySide6 6.12.0 on Python 3.11 returns ``None``, ``True`` and ``False`` to Python without
counting the reference it hands back: every call of a method that returns nothing
(``setText``, ``setFontItalic``…) takes one reference from ``None``, every ``emit`` one from
``True``. A long session, a streamed answer, brings a count to zero and the interpreter aborts
(``Fatal Python error: none_dealloc`` or ``bool_dealloc``), most often while quitting.

Python 3.12 made these objects immortal (PEP 683). Here, where the installed PySide is measured
to take references, they are given a count no session can spend, once, at import of ``desktop``.
"""

from __future__ import annotations

import ctypes
import sys

_SPARE = min(1 << 40, sys.maxsize >> 2)  # a million calls a second would take twelve days to spend 2**40


def _taken(probe: object) -> bool:
    """Whether calling PySide takes references from ``None`` or ``True``."""
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtGui import QTextCharFormat

    class Probe(QObject):
        fired = Signal()

    form, sender = QTextCharFormat(), Probe()
    before = sys.getrefcount(probe)
    for _ in range(16):
        form.setFontItalic(True)
        sender.fired.emit()
    return sys.getrefcount(probe) < before - 8


def keep_singletons_alive() -> bool:
    """Give ``None``, ``True`` and ``False`` references to spare where PySide takes them
    (Python 3.11); says whether it did."""
    if sys.version_info >= (3, 12) or hasattr(sys, "getobjects"):  # immortal there; a trace-refs build's layout differs
        return False
    if not (_taken(None) or _taken(True)):
        return False
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _SPARE  # ob_refcnt, the object's first field
    return True
