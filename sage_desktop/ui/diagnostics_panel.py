"""The Diagnostics panel: ``sage-desktop doctor`` as a checklist window.

The checks run on the thread pool (they probe the network and the
keychain); each result arrives on the GUI thread as it completes and
becomes one row with its mark. A problem's row unfolds into the catalogue's
explanation and what to do. Copy report puts the checklist and the JSON
report (the same as ``doctor --json``, no secret in either) on the
clipboard for a support ticket.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sage_desktop.diagnostics.checks import (
    DEFAULT_TIMEOUT,
    CheckResult,
    Doctor,
    Report,
    Status,
    summary_line,
)
from sage_desktop.ui.errors import ErrorBanner
from sage_desktop.ui.workers import run_task

if TYPE_CHECKING:
    from sage_desktop.context import AppContext
    from sage_desktop.session.client import TokenSource

log = logging.getLogger(__name__)

MARKS = {
    Status.OK: "✓",
    Status.WARN: "!",
    Status.FAIL: "✗",
    Status.SKIP: "-",
}
COLOURS = {
    Status.OK: "#1b7f3b",
    Status.WARN: "#9a6700",
    Status.FAIL: "#b42318",
    Status.SKIP: "#6b6b6b",
}
WORDS = {
    Status.OK: "passed",
    Status.WARN: "warning",
    Status.FAIL: "failed",
    Status.SKIP: "skipped",
}


class DiagnosticsPanel(QDialog):
    """Runs every check and shows the checklist, with Copy report.

    Args:
        context: the app's settings, vault and registry.
        parent: the window it belongs to.
        worker_factory: returns the app's refresh worker (so business
            checks use the tokens the app already holds); None starts a
            worker for the run.
        timeout: seconds each network probe may take.

    Signals:
        result_added: a :class:`CheckResult`, as each check completes.
        finished_checks: the whole :class:`Report` (or None after a crash).
    """

    result_added = Signal(object)
    finished_checks = Signal(object)

    def __init__(
        self,
        context: AppContext,
        parent: QWidget | None = None,
        *,
        worker_factory: Callable[[], TokenSource] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("diagnosticsPanel")
        self.setWindowTitle("Diagnostics")
        self.setAccessibleName("Diagnostics")
        self.resize(720, 520)
        self._context = context
        self._worker_factory = worker_factory
        self._timeout = timeout
        self._running = False
        self.report: Report | None = None

        self.status_label = QLabel("Not run yet.")
        self.status_label.setObjectName("diagnosticsStatus")
        self.status_label.setWordWrap(True)

        self.tree = QTreeWidget()
        self.tree.setObjectName("diagnosticsChecklist")
        self.tree.setAccessibleName("Checklist")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["", "Check", "Result"])
        self.tree.setRootIsDecorated(True)
        self.tree.setWordWrap(True)
        self.tree.setUniformRowHeights(False)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        self.banner = ErrorBanner(self)

        buttons = QDialogButtonBox()
        self.run_button = QPushButton("&Run again")
        self.run_button.setObjectName("runChecks")
        self.run_button.clicked.connect(self.run_checks)
        self.copy_button = QPushButton("&Copy report")
        self.copy_button.setObjectName("copyReport")
        self.copy_button.setToolTip(
            "Copy the checklist and a JSON report for a support ticket "
            "(no token or secret is included)"
        )
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_report)
        buttons.addButton(self.run_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addWidget(self.banner)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)

    # --- running ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def run_checks(self) -> None:
        """Start every check off the GUI thread (ignored while one runs)."""
        if self._running:
            return
        self._running = True
        self.report = None
        self.tree.clear()
        self.banner.clear()
        self.run_button.setEnabled(False)
        self.copy_button.setEnabled(False)
        self.status_label.setText("Checking...")

        doctor = Doctor(
            self._context,
            worker=None,
            timeout=self._timeout,
        )
        factory = self._worker_factory

        def work(report: Callable[[object], None]) -> Report:
            if factory is not None:
                doctor.use_worker(factory())
            return doctor.run(on_result=report)

        run_task(
            work,
            owner=self,
            on_done=self._done,
            on_error=self._failed,
            on_progress=self._add,
        )

    def _add(self, value: object) -> None:
        if not isinstance(value, CheckResult):
            return
        self.tree.addTopLevelItem(self._item(value))
        self.result_added.emit(value)

    def _done(self, report: object) -> None:
        self._running = False
        self.run_button.setEnabled(True)
        if not isinstance(report, Report):
            return
        self.report = report
        self.copy_button.setEnabled(True)
        self.status_label.setText(summary_line(report))
        self.finished_checks.emit(report)

    def _failed(self, exc: BaseException) -> None:
        self._running = False
        self.run_button.setEnabled(True)
        self.status_label.setText("The checks could not run.")
        self.banner.show_error(exc)
        self.finished_checks.emit(None)

    # --- showing ---------------------------------------------------------

    def _item(self, result: CheckResult) -> QTreeWidgetItem:
        item = QTreeWidgetItem([MARKS[result.status], result.title, result.summary])
        brush = QBrush(QColor(COLOURS[result.status]))
        item.setForeground(0, brush)
        item.setData(0, Qt.ItemDataRole.AccessibleTextRole, WORDS[result.status])
        item.setData(0, Qt.ItemDataRole.UserRole, result.id)
        item.setToolTip(2, result.summary)
        lines = list(result.notes)
        if result.status in (Status.WARN, Status.FAIL):
            if result.explanation:
                lines.append(result.explanation)
            if result.remedy:
                lines.append(f"What to do: {result.remedy}")
        for line in lines:
            child = QTreeWidgetItem(["", "", line])
            child.setToolTip(2, line)
            item.addChild(child)
        item.setExpanded(result.status in (Status.WARN, Status.FAIL))
        return item

    def rows(self) -> list[tuple[str, str, str]]:
        """``(status, title, summary)`` of each row, for tests and readers."""
        found = []
        for item in self._items():
            status = item.data(0, Qt.ItemDataRole.AccessibleTextRole)
            found.append((str(status), item.text(1), item.text(2)))
        return found

    def _items(self) -> list[QTreeWidgetItem]:
        items = (
            self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())
        )
        return [item for item in items if item is not None]

    def text(self) -> str:
        """Everything the checklist shows, rows and unfolded lines."""
        lines = [self.status_label.text()]
        for item in self._items():
            lines.append(f"{item.text(0)} {item.text(1)}: {item.text(2)}")
            children = (item.child(n) for n in range(item.childCount()))
            lines.extend(f"    {c.text(2)}" for c in children if c is not None)
        return "\n".join(lines)

    def report_text(self) -> str:
        """What Copy report puts on the clipboard (no secret in it)."""
        if self.report is None:
            return ""
        data = json.dumps(self.report.to_dict(), indent=2, ensure_ascii=False)
        return f"{self.report.to_text()}\n\n{data}\n"

    def copy_report(self) -> None:
        """Put the checklist and the JSON report on the clipboard."""
        text = self.report_text()
        if text:
            QGuiApplication.clipboard().setText(text)
            self.status_label.setText(
                "Report copied; paste it into your support request."
            )
