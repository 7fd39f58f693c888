"""Structured mode: pick or write a schema, see the result as a tree, copy or save it, extract in bulk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.plain_text import plain_label, tooltip
from rag import FieldSource, NamedSchema, SchemaInvalid
from rag import parse_schema as parse
from rag import shipped_schemas as shipped

_CUSTOM = "__custom__"
# The shipped schemas' titles, so that they are translated too.
_TITLES = {
    "action_items": QT_TRANSLATE_NOOP("Schemas", "Action items"),
    "financial_summary": QT_TRANSLATE_NOOP("Schemas", "Financial summary"),
    "key_facts": QT_TRANSLATE_NOOP("Schemas", "Key facts"),
    "people_contacts": QT_TRANSLATE_NOOP("Schemas", "People and contacts"),
    "timeline": QT_TRANSLATE_NOOP("Schemas", "Timeline"),
}


class SchemaEditor(QDialog):
    """Write a JSON Schema; errors show inline as you type, and OK waits for a usable one."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Your own schema"))
        self.resize(560, 480)
        self.editor = QPlainTextEdit(text)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.textChanged.connect(self.validate)
        self.error = plain_label(QLabel())  # a schema's own words: property names, paths
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("A JSON Schema describing the object the answer must be (an object or an array at the top).")))
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.schema: NamedSchema | None = None
        self.validate()

    def validate(self) -> bool:
        text = self.editor.toPlainText()
        try:
            data = json.loads(text)
            self.schema = parse(data, "custom")
        except json.JSONDecodeError as exc:
            self.schema = None
            message = self.tr("Not valid JSON: {} (line {}, column {})").format(exc.msg, exc.lineno, exc.colno)
        except SchemaInvalid as exc:
            self.schema = None
            message = exc.reason
        else:
            message = self.tr("The schema is valid.")
        self.error.setText(message)
        self.error.setStyleSheet("color: #1e8449;" if self.schema else "color: #c0392b;")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self.schema is not None)
        return self.schema is not None


class StructuredPanel(QWidget):
    """The structured-mode controls (placed by the chat panel) and the result view."""

    extract_requested = Signal(object, str)  # schema, output path
    source_clicked = Signal(object)  # the citation of a field's value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.toggle = QCheckBox(self.tr("Structured answer"))
        self.toggle.setToolTip(self.tr("Answer as an object of a fixed shape instead of prose"))
        self.picker = QComboBox()
        self.picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.picker.setMinimumContentsLength(8)  # long schema titles are elided, not given the width
        self.schemas = {s.name: s for s in shipped()}
        for schema in self.schemas.values():
            title = _TITLES.get(schema.name, schema.title)
            self.picker.addItem(QCoreApplication.translate("Schemas", title), schema.name)
        self.picker.addItem(self.tr("Your own…"), _CUSTOM)
        self.picker.activated.connect(self._picked)
        self.edit_button = QPushButton(self.tr("Edit schema…"))
        self.edit_button.clicked.connect(self.edit_custom)
        self.custom: NamedSchema | None = None
        self.toggle.toggled.connect(self._toggled)

        self.result = QWidget()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels([self.tr("Field"), self.tr("Value"), self.tr("Sources")])
        # The value gets the width the field's name and its sources leave (a long one is elided, whole on hover).
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemClicked.connect(self._clicked)
        copy = QPushButton(self.tr("Copy JSON"))
        copy.clicked.connect(self.copy_json)
        save = QPushButton(self.tr("Save…"))
        save.clicked.connect(self.save_json)
        self.extract_button = QPushButton(self.tr("Extract from every document…"))
        self.extract_button.clicked.connect(self._extract)
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_extract = QPushButton(self.tr("Cancel"))
        self.cancel_extract.hide()
        buttons = QHBoxLayout()
        for widget in (copy, save, self.extract_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.progress)
        buttons.addWidget(self.cancel_extract)
        layout = QVBoxLayout(self.result)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.data: Any = None
        self._toggled(False)

    def _toggled(self, on: bool) -> None:
        self.picker.setEnabled(on)
        self.edit_button.setVisible(on and self.picker.currentData() == _CUSTOM)
        self.result.setVisible(on)

    def _picked(self, _index: int) -> None:
        custom = self.picker.currentData() == _CUSTOM
        self.edit_button.setVisible(custom)
        if custom and self.custom is None:
            self.edit_custom()

    def edit_custom(self) -> None:
        start = json.dumps(self.custom.schema if self.custom else {
            "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": False,
        }, indent=2)
        dialog = SchemaEditor(start, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.schema is not None:
            self.custom = dialog.schema

    def schema(self) -> NamedSchema | None:
        """The schema in force, or None when structured mode is off."""
        if not self.toggle.isChecked():
            return None
        name = self.picker.currentData()
        return self.custom if name == _CUSTOM else self.schemas.get(name)

    def show_result(self, data: Any, field_sources: list[FieldSource] = ()) -> None:
        """Show the object; each top-level field says which sources it came from (a click
        shows the passage), or that none of the sources holds its value."""
        self.data = data
        self.tree.clear()
        _fill(self.tree.invisibleRootItem(), data, "")
        by_field = {f.field: f for f in field_sources}
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            item = root.child(i)
            found = by_field.get(item.text(0))
            if found is None:
                continue
            item.setData(2, Qt.ItemDataRole.UserRole, found.citations)
            marks = " ".join(f"[{c.number}]" for c in found.citations)
            if found.supported:
                item.setText(2, marks)
                item.setToolTip(2, tooltip("\n".join(f"[{c.number}] {c.path.name}: {c.snippet}" for c in found.citations)))
            else:
                item.setText(2, ("⚠ " + self.tr("not found in the sources") + " " + marks).strip())
                item.setToolTip(2, self.tr("No retrieved passage contains this value; check it before relying on it."))
                item.setForeground(2, Qt.GlobalColor.darkRed)
        self.tree.expandAll()

    def _clicked(self, item: Any, _column: int) -> None:
        while item.parent() is not None:  # a nested value answers for its top-level field
            item = item.parent()
        citations = item.data(2, Qt.ItemDataRole.UserRole)
        if citations:
            self.source_clicked.emit(citations[0])

    def copy_json(self) -> None:
        if self.data is not None:
            QGuiApplication.clipboard().setText(json.dumps(self.data, indent=2, ensure_ascii=False))

    def save_json(self) -> None:
        if self.data is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save result"), str(Path.home() / "result.json"),
                                              "JSON (*.json)")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(self.data, f, indent=2, ensure_ascii=False)

    def _extract(self) -> None:
        schema = self.schema() or next(iter(self.schemas.values()))
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Extract to"), str(Path.home() / f"{schema.name}.csv"), self.tr("CSV (*.csv);;JSON Lines (*.jsonl)")
        )
        if path:
            self.extract_requested.emit(schema, path)

    def show_extract_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(self.tr("%v of %m documents"))
        widest = self.tr("%v of %m documents").replace("%v", str(total)).replace("%m", str(total))
        self.progress.setMinimumWidth(self.progress.fontMetrics().horizontalAdvance(widest) + 40)  # never "3 of 4 documen"
        busy = done < total
        self.progress.setVisible(busy)
        self.cancel_extract.setVisible(busy)
        self.extract_button.setEnabled(not busy)


def _fill(parent: QTreeWidgetItem, value: Any, path: str) -> None:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return
    for key, item in items:
        here = f"{path}/{key}" if path else str(key)
        shown = "" if isinstance(item, dict | list) else json.dumps(item, ensure_ascii=False)
        node = QTreeWidgetItem(parent, [str(key), shown])
        node.setToolTip(1, tooltip(shown))
        node.setData(0, Qt.ItemDataRole.UserRole, here)
        _fill(node, item, here)
