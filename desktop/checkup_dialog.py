"""The check-up page: a collection's test questions, run on demand, compared with last time."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import Backend
from desktop.plain_text import plain_label
from desktop.workers import Job
from rag import TOP, CheckQuestion, CheckupReport, CheckupState, CollectionStatus, KnowledgeBaseClient, StepProgress


class CheckupDialog(QDialog):
    """Saved test questions of the current collection; Run shows hit rate at 5 and what changed."""

    def __init__(self, backend: Backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.collection = backend.collection
        self.state = CheckupState([], None)
        self.setWindowTitle(self.tr("Check-up of {}").format(self.collection))
        self.resize(820, 520)
        intro = QLabel(self.tr(
            "Questions you know the answers to, each with the document that should answer it. A run searches each "
            "one as asking does and counts it found when that document is among the first {} passages."
        ).format(TOP))
        intro.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels([self.tr("Question"), self.tr("Document"), self.tr("Passage"), self.tr("Last run")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.question = QLineEdit()
        self.question.setPlaceholderText(self.tr("How often does the pump need oil?"))
        self.document = QComboBox()
        self.document.setEditable(True)
        self.passage = QLineEdit()
        self.passage.setPlaceholderText(self.tr("Optional: a phrase of the answering passage"))
        add = QPushButton(self.tr("Add question"))
        add.clicked.connect(self.add_question)
        remove = QPushButton(self.tr("Remove selected"))
        remove.clicked.connect(self.remove_selected)
        self.run_button = QPushButton(self.tr("Run check-up"))
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.result = plain_label(QLabel())
        self.result.setWordWrap(True)
        form = QFormLayout()
        form.addRow(self.tr("Question"), self.question)
        form.addRow(self.tr("Answered by"), self.document)
        form.addRow(self.tr("Passage"), self.passage)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        row.addWidget(self.run_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.result)
        layout.addWidget(close)
        self.job: Job | None = None
        self._fill()
        collection = self.collection
        backend.call("io", "check-up", lambda kb, _job: kb.checkup(collection)).done.connect(self._set_state)
        backend.call("io", "status", lambda kb, _job: kb.status(collection)).done.connect(self._documents)

    def _documents(self, status: CollectionStatus) -> None:
        self.document.addItems(sorted(r.path.name for r in status.files if r.status == "indexed"))

    def _set_state(self, state: CheckupState) -> None:
        self.state = state
        self._fill()

    def _fill(self) -> None:
        last = self.state.last
        self.table.setRowCount(len(self.state.questions))
        for row, q in enumerate(self.state.questions):
            rank = last.ranks.get(q.question) if last else None
            shown = "" if last is None or q.question not in last.ranks else (
                self.tr("found at {}").format(rank) if rank and rank <= TOP else self.tr("missed"))
            for column, text in enumerate((q.question, q.document, q.passage, shown)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.run_button.setEnabled(bool(self.state.questions))

    def add_question(self) -> None:
        question, document = self.question.text().strip(), self.document.currentText().strip()
        if not question or not document:
            self.result.setText(self.tr("A test question needs the question and the document that answers it."))
            return
        check, collection = CheckQuestion(question, document, self.passage.text().strip()), self.collection
        self.backend.call("io", "check-up", lambda kb, _job: kb.add_check(collection, check)).done.connect(self._set_state)
        self.question.clear()
        self.passage.clear()

    def remove_selected(self) -> None:
        chosen = [self.state.questions[i].question for i in sorted({i.row() for i in self.table.selectedIndexes()})]
        collection = self.collection

        def remove(kb: KnowledgeBaseClient, _job: Job) -> CheckupState:
            state = self.state
            for question in chosen:
                state = kb.remove_check(collection, question)
            return state

        self.backend.call("io", "check-up", remove).done.connect(self._set_state)

    def run(self) -> None:
        self.run_button.setEnabled(False)
        self.result.setText(self.tr("Running…"))
        collection = self.collection
        self.job = self.backend.call("io", "check-up", lambda kb, job: kb.run_checkup(collection, job.report))
        self.job.progress.connect(self._progress)
        self.job.done.connect(self._shown)
        self.job.failed.connect(lambda error: (self.result.setText(str(error)), self.run_button.setEnabled(True)))

    def _progress(self, step: StepProgress) -> None:
        self.result.setText(self.tr("Running… {} of {}").format(step.done, step.total))

    def _shown(self, report: CheckupReport) -> None:
        found = len(report.run.ranks) - len(report.run.missed())
        lines = [self.tr("Hit rate at {}: {:.0%} ({} of {})").format(TOP, report.run.hit_rate, found, len(report.run.ranks))]
        if report.previous is not None:
            lines[0] += " " + self.tr("({:+.0%} since the last run)").format(report.run.hit_rate - report.previous.hit_rate)
        lines += [self.tr("Now missed: {}").format(q) for q in report.newly_missed]
        lines += [self.tr("Now found: {}").format(q) for q in report.newly_found]
        self.result.setText("\n".join(lines))
        self._set_state(CheckupState(self.state.questions, report.run))
