"""Re-embedding a collection after the embedding model changed: asked, shown, stoppable."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from desktop.backend import Backend
from desktop.workers import Job
from rag import EmbedderMismatch, StepProgress


def offer_reembed(parent: QWidget, backend: Backend, error: EmbedderMismatch, finished: Callable[[], None]) -> None:
    """Explain the mismatch and offer to re-embed the collection now."""
    box = QMessageBox(QMessageBox.Icon.Question, parent.tr("The embedding model changed"), "", parent=parent)
    box.setText(parent.tr(
        "{} was indexed with {}; search now uses {}.\n\nRe-embedding reads its passages again with the new model. "
        "The old vectors stay in use until it is complete, and you can stop at any time."
    ).format(error.collection, error.built_with, error.requested))
    start = box.addButton(parent.tr("Re-embed now"), QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is start:
        ReembedProgress(parent, backend, error.collection, finished).start()


class ReembedProgress(QProgressDialog):
    """Runs ``KnowledgeBase.reembed`` on the indexing pool, with progress and Stop."""

    def __init__(self, parent: QWidget, backend: Backend, collection: str, finished: Callable[[], None]) -> None:
        super().__init__(parent.tr("Re-embedding {}…").format(collection), parent.tr("Stop"), 0, 0, parent)
        self.setWindowTitle(parent.tr("Re-embedding"))
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.backend = backend
        self.collection = collection
        self.finished_callback = finished
        self.job: Job | None = None
        self.outcome = ""

    def start(self) -> None:
        collection = self.collection
        self.job = self.backend.call(
            "ingest", "re-embed",
            lambda kb, job: kb.reembed(collection, job.report, job.cancel),
        )
        self.canceled.connect(self.job.stop)
        self.job.progress.connect(self._progress)
        self.job.done.connect(lambda info: self._end(self.tr("{} now searches with {}.").format(info.name, info.embedder)))
        self.job.failed.connect(lambda error: self._end(str(error)))
        self.show()

    def _progress(self, step: StepProgress) -> None:
        done, total = step.done, step.total
        self.setMaximum(max(1, total))
        self.setValue(done)
        self.setLabelText(self.tr("Re-embedding {}: {} of {} passages").format(self.collection, done, total))

    def _end(self, message: str) -> None:
        self.outcome = message
        self.close()
        QMessageBox.information(self.parentWidget(), self.tr("Re-embedding"), message)
        self.finished_callback()
