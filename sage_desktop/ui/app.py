"""Starting the desktop app: ``sage-desktop`` and ``sage-desktop --sandbox``.

Start-up order matters for how fast the window appears: Qt and the window
first; the sandbox, ``requests`` and ``keyring`` only after the window
shows (they load on first use, on worker threads where they block).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

import sage_desktop.ui  # noqa: F401  (Qt work-arounds before any Qt call)
from sage_desktop.ui.instance import SingleInstance, instance_name
from sage_desktop.ui.main_window import MainWindow
from sage_desktop.ui.services import Services
from sage_desktop.ui.workers import wait_for_tasks

if TYPE_CHECKING:
    from sage_desktop.ui.crash import CrashHandler

log = logging.getLogger(__name__)
qt_log = logging.getLogger("sage_desktop.ui.qt")

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}
# Harmless warnings of the offscreen and minimal platforms.
_QUIET = ("does not support propagateSizeHints",)

#: Set to 1, the app says so on stderr once its window has painted, then
#: quits: how smoke tests and the start-up bench see a frozen build come up.
QUIT_AFTER_SHOW = "SAGE_DESKTOP_QUIT_AFTER_SHOW"
SHOWN_MARKER = "sage-desktop: first window shown"


def _qt_message(mode: QtMsgType, context: Any, message: str) -> None:
    level = _QT_LEVELS.get(mode, logging.WARNING)
    if any(text in message for text in _QUIET):
        level = logging.DEBUG
    qt_log.log(level, "%s", message)


def route_qt_messages() -> None:
    """Send Qt's own warnings into Python logging (logger ``...ui.qt``)."""
    qInstallMessageHandler(_qt_message)


@dataclass
class AppSession:
    """A started app: everything :func:`run_app` tears down at the end."""

    app: QApplication
    window: MainWindow
    services: Services
    instance: SingleInstance
    crash_handler: CrashHandler | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop workers, the sandbox and the single-instance socket."""
        if self.crash_handler is not None:
            self.crash_handler.uninstall()
        self.services.shutdown()
        wait_for_tasks()
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception:
                log.exception("clean-up failed")
        self.instance.release()


def launch(
    sandbox: bool = False,
    *,
    argv: list[str] | None = None,
    instance: str | None = None,
) -> AppSession | None:
    """Create the app and show the window; None if another instance runs.

    With ``sandbox``, the built-in sandbox starts in this process once the
    window shows, and the app uses its demo registration, an in-memory
    keychain and a temporary connections file: nothing of a demo lingers.
    """
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("sage-desktop")
    app.setOrganizationName("sage-desktop")
    app.setApplicationDisplayName("sage-desktop")
    app.setDesktopFileName("sage-desktop")
    route_qt_messages()

    single = SingleInstance(instance or instance_name(sandbox))
    if not single.acquire():
        return None

    window_settings = QSettings(
        QSettings.Format.IniFormat,
        QSettings.Scope.UserScope,
        "sage-desktop",
        "window-sandbox" if sandbox else "window",
    )
    services = Services(sandbox=sandbox)
    window = MainWindow(services, window_settings=window_settings)
    single.activation_requested.connect(window.bring_forward)
    session = AppSession(app, window, services, single)
    window.show()

    def after_show() -> None:
        # Loaded after the window shows: start-up time is what users feel.
        from sage_desktop.ui.crash import CrashHandler
        from sage_desktop.ui.icon import app_icon

        app.setWindowIcon(app_icon())
        single.listen()
        session.crash_handler = CrashHandler(window)
        session.crash_handler.install()
        if sandbox:
            cleanups, note = _use_sandbox(services)
            session.cleanups.extend(cleanups)
            window.show_note(note)
        window.start()

    # After the first frame: what it starts never delays that frame.
    window.first_painted.connect(lambda: QTimer.singleShot(0, after_show))
    if os.environ.get(QUIT_AFTER_SHOW) == "1":
        window.first_painted.connect(lambda: _report_shown_and_quit(app))
    return session


def _report_shown_and_quit(app: QApplication) -> None:
    print(SHOWN_MARKER, file=sys.stderr, flush=True)
    QTimer.singleShot(0, app.quit)


def _use_sandbox(services: Services) -> tuple[list[Callable[[], None]], str]:
    """Start the sandbox and point the services at it (demo registration)."""
    from sage_desktop.connections import ConnectionRegistry
    from sage_desktop.context import AppContext
    from sage_desktop.sandbox import Sandbox
    from sage_desktop.vault import TokenVault
    from sage_desktop.vault.memory import MemoryKeyring

    sandbox = Sandbox().start()
    folder = Path(tempfile.mkdtemp(prefix="sage-desktop-sandbox-"))
    vault = TokenVault(backend=MemoryKeyring())
    services.context = AppContext(
        env={**os.environ, **sandbox.env()},
        settings_path=folder / "settings.json",
        vault=vault,
        registry=ConnectionRegistry(path=folder / "connections.json", vault=vault),
    )
    services.settings_path = folder / "settings.json"
    log.info("sandbox running at %s", sandbox.base_url)
    note = (
        f"Sandbox at {sandbox.base_url}: sign in as accountant@sandbox.example "
        "(password: sandbox); the sign-in page lists every demo login."
    )
    return [sandbox.stop, lambda: shutil.rmtree(folder, ignore_errors=True)], note


def run_app(sandbox: bool = False) -> int:
    """Run the desktop app until its window closes; the exit code."""
    session = launch(sandbox)
    if session is None:
        return 0
    try:
        return int(session.app.exec())
    finally:
        session.close()
