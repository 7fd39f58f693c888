"""Text from documents, models and users shown as text. Qt renders a label's, a tooltip's or a
message box's text as HTML when its first line looks like markup (a file named "<b>x</b>.txt",
a model's "<img src=…>"); what comes from outside the app goes through here."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGui
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


def tooltip(text: str) -> str:
    """A tooltip that shows ``text`` as written, its line breaks kept."""
    return QtGui.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal) if text else ""


def plain_label(label: QLabel) -> QLabel:
    """``label``, set to show its text as text, never as HTML."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def warn(parent: QWidget, title: str, text: str) -> None:
    """``QMessageBox.warning``, its text shown as written."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.exec()
