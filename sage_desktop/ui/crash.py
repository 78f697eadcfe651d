"""Uncaught exceptions end in a crash dialog, never in a silent terminal.

The dialog holds a report the user can copy into a support request. The
report is scrubbed: anything shaped like a token, code or secret is
replaced before it is shown, so pasting it anywhere leaks nothing.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from sage_desktop import __version__

log = logging.getLogger(__name__)

_NAMED_SECRET = re.compile(
    r"(?i)\b(access_token|refresh_token|id_token|client_secret|secret|code|"
    r"password|authorization|bearer|token)\b(\s*[\"']?\s*[:=]\s*[\"']?\s*|\s+)"
    r"([^\s\"'&,;)}\]]+)"
)
# Long runs of token alphabet. Slashes and dots are left out so file paths
# stay readable; a run counts as a secret when it mixes upper case, lower
# case and digits (base64 tokens, secrets) or is long hex.
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-~+=%]{24,}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
REDACTED = "[redacted]"


def _looks_secret(run: str) -> bool:
    if _HEX.fullmatch(run):
        return True
    return (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
    )


def scrub(text: str) -> str:
    """Remove anything that may be a secret from ``text``."""
    text = _NAMED_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _LONG_RUN.sub(
        lambda m: REDACTED if _looks_secret(m.group(0)) else m.group(0), text
    )


def build_report(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
) -> str:
    """The copyable crash report: versions and the scrubbed traceback."""
    import platform  # slow to import; only needed after a crash

    try:
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        qt = f"Qt {qVersion()}, PySide6 {pyside_version}"
    except ImportError:  # pragma: no cover - Qt is there when this runs
        qt = "Qt unknown"
    lines = traceback.format_exception(exc_type, exc, tb)
    return scrub(
        f"sage-desktop {__version__}\n"
        f"Python {platform.python_version()} on {platform.platform()}\n"
        f"{qt}\n\n" + "".join(lines)
    )


class CrashDialog(QDialog):
    """Says that something failed and offers the report to copy."""

    def __init__(self, report: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crashDialog")
        self.setWindowTitle("sage-desktop hit a problem")
        self.setAccessibleName("Crash report")
        intro = QLabel(
            "<b>Something unexpected went wrong.</b><br>Your connections and "
            "tokens are safe. Copy the report below into a support request; "
            "it contains no token, code or secret."
        )
        intro.setWordWrap(True)
        self.report = QPlainTextEdit(report)
        self.report.setObjectName("crashReport")
        self.report.setAccessibleName("Report")
        self.report.setReadOnly(True)
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report.setFont(
            QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton(
            "&Copy report", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.copy_button.clicked.connect(self.copy_report)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.report, 1)
        layout.addWidget(buttons)
        self.resize(640, 420)

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.report.toPlainText())


class CrashHandler(QObject):
    """Routes uncaught exceptions of any thread to one dialog on the GUI thread.

    Signals:
        crashed: the scrubbed report of an uncaught exception.
    """

    crashed = Signal(str)

    def __init__(self, parent_window: QWidget | None = None) -> None:
        super().__init__()
        self._window = parent_window
        self.dialogs: list[CrashDialog] = []
        self._previous: tuple[Any, Any] | None = None
        self.crashed.connect(self._show)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._hook
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def _hook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        report = build_report(exc_type, exc, tb)
        log.critical("uncaught exception:\n%s", report)
        self.crashed.emit(report)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self._hook(args.exc_type, args.exc_value, args.exc_traceback)

    @Slot(str)
    def _show(self, report: str) -> None:
        dialog = CrashDialog(report, self._window)
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _code: self.dialogs.remove(dialog))
        dialog.open()
