"""The Connect dialog: sign in to Sage in the user's own browser.

RFC 8252 asks native apps to use the system browser, never an embedded
one, so this dialog only opens the browser and waits, showing the time
left, with Cancel, Copy link (for a browser elsewhere) and Open again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sage_desktop.errors import SignInCancelled
from sage_desktop.ui.errors import ErrorBanner
from sage_desktop.ui.services import Services
from sage_desktop.ui.workers import run_task

log = logging.getLogger(__name__)

WAITING_TEXT = "Waiting for you to sign in to Sage in your browser..."


class ConnectDialog(QDialog):
    """Runs one sign-in; :attr:`connected` carries the ``SignInResult``.

    Signals:
        connected: the sign-in finished; the connection is saved.
    """

    connected = Signal(object)

    def __init__(
        self,
        services: Services,
        parent: QWidget | None = None,
        *,
        title: str = "Connect to Sage",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("connectDialog")
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self._services = services
        self._flow: Any = None
        self._cancel_requested = threading.Event()
        self._running = False
        self._deadline = 0.0
        self._url: str | None = None
        self.result_value: Any = None

        self.heading = QLabel(WAITING_TEXT)
        self.heading.setObjectName("connectHeading")
        self.heading.setStyleSheet("font-size: 13pt; font-weight: bold;")
        self.heading.setWordWrap(True)
        self.explain = QLabel(
            "Sage's sign-in page opens in your browser. Sign in there and "
            "choose Allow; this window carries on by itself. If the page did "
            "not open, use Copy link and paste it into your browser."
        )
        self.explain.setWordWrap(True)
        self.stage = QLabel("Preparing the sign-in...")
        self.stage.setObjectName("connectStage")
        self.stage.setWordWrap(True)
        self.time_left = QLabel()
        self.time_left.setObjectName("timeLeft")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.error = ErrorBanner(self)

        self.copy_button = QPushButton("&Copy link")
        self.copy_button.setAccessibleName("Copy the sign-in link")
        self.copy_button.setEnabled(False)
        self.open_button = QPushButton("&Open again")
        self.open_button.setAccessibleName("Open the sign-in page again")
        self.open_button.setEnabled(False)
        self.retry_button = QPushButton("&Try again")
        self.retry_button.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the sign-in")

        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.explain)
        layout.addWidget(self.busy)
        layout.addWidget(self.stage)
        layout.addWidget(self.time_left)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.resize(560, 300)

        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self.copy_button.clicked.connect(self.copy_link)
        self.open_button.clicked.connect(self.open_again)
        self.cancel_button.clicked.connect(self.cancel)
        self.retry_button.clicked.connect(self.start)

    # --- actions -------------------------------------------------------------

    def start(self) -> None:
        """Begin the sign-in on a worker thread."""
        self.error.clear()
        self.explain.show()
        self.retry_button.hide()
        self.heading.setText(WAITING_TEXT)
        self.cancel_button.setText("Cancel")
        self.busy.show()
        self._cancel_requested.clear()
        self._running = True
        self._deadline = time.monotonic() + self._services.sign_in_timeout
        self._tick()
        self._ticker.start()
        services = self._services
        cancel_requested = self._cancel_requested

        def work(report: Any) -> Any:
            flow = services.sign_in_flow(lambda p: report(("progress", p)))
            report(("flow", flow))
            if cancel_requested.is_set():
                flow.cancel()
            return flow.run(timeout=services.sign_in_timeout)

        run_task(
            work,
            owner=self,
            on_done=self._on_done,
            on_error=self._on_error,
            on_progress=self._on_progress,
        )

    def cancel(self) -> None:
        """Stop waiting (the port is released) and close."""
        if self._running:
            self._cancel_requested.set()
            if self._flow is not None:
                self._flow.cancel()
        self.reject()

    def copy_link(self) -> None:
        if self._url:
            QGuiApplication.clipboard().setText(self._url)
            self.stage.setText("Link copied: paste it into your browser.")

    def open_again(self) -> None:
        if not self._url:
            return
        from sage_desktop.auth.browser import open_in_background, system_browser

        open_in_background(self._url, self._services.opener or system_browser)
        self.stage.setText("Opened the sign-in page again.")

    @property
    def running(self) -> bool:
        return self._running

    # --- results -------------------------------------------------------------

    def _on_progress(self, value: Any) -> None:
        kind, payload = value
        if kind == "flow":
            self._flow = payload
            return
        url = getattr(payload, "url", None)
        if url:
            self._url = url
            self.copy_button.setEnabled(True)
            self.open_button.setEnabled(True)
        stage = getattr(payload, "stage", "")
        if stage == "listening":
            self.stage.setText("Opening Sage's sign-in page in your browser...")
        elif stage == "browser_failed":
            self.stage.setText(
                "No browser could be opened. Use Copy link and paste the "
                "link into your browser."
            )
        elif stage in ("exchanging", "saving", "labelling", "done"):
            self._ticker.stop()
            self.time_left.clear()
            self.heading.setText("Signed in. Finishing...")
            self.stage.setText(payload.message)
            self.cancel_button.setEnabled(False)
        elif stage == "waiting":
            self.stage.setText("Sage's sign-in page is open in your browser.")

    def _on_done(self, result: Any) -> None:
        self._finish()
        self.result_value = result
        self.connected.emit(result)
        self.accept()

    def _on_error(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, SignInCancelled) or self._cancel_requested.is_set():
            return
        self.heading.setText("The sign-in did not complete.")
        self.explain.hide()
        self.stage.clear()
        self.error.show_error(exc)
        self.retry_button.show()
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.copy_button.setEnabled(False)
        self.open_button.setEnabled(False)

    def _finish(self) -> None:
        self._running = False
        self._flow = None
        self._ticker.stop()
        self.time_left.clear()
        self.busy.hide()

    def _tick(self) -> None:
        left = max(0, int(self._deadline - time.monotonic()))
        self.time_left.setText(f"Time left: {left // 60}:{left % 60:02d}")

    def reject(self) -> None:
        if self._running:
            self._cancel_requested.set()
            if self._flow is not None:
                self._flow.cancel()
        self._ticker.stop()
        super().reject()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape:
            self.cancel()
            return
        super().keyPressEvent(event)
