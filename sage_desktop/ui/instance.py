"""One running app per user: a second start brings the first one forward.

Two apps would mean two refresh workers for the same grants. They would
not corrupt anything (the per-grant file lock serialises refreshes), but
the user would see two windows that disagree for a moment, so the second
start hands over to the first and exits.

Who is first is decided by an exclusive lock on a per-user file, which the
operating system releases if the app crashes; the hand-over goes through a
``QLocalServer`` that the first instance opens once its window is painted
(QtNetwork takes a while to load, and nobody needs it before then).
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
import time
import zlib
from typing import IO, TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from PySide6.QtNetwork import QLocalServer

log = logging.getLogger(__name__)

_ACTIVATE = b"activate\n"


def instance_name(sandbox: bool = False) -> str:
    """A per-user name (the user and home directory, hashed)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    seed = f"{user}\0{os.path.expanduser('~')}\0{'sandbox' if sandbox else 'app'}"
    return f"sage-desktop-{zlib.crc32(seed.encode()):08x}"


def _lock_dir() -> str:
    if sys.platform == "win32":
        return os.environ.get("TEMP") or os.environ.get("TMP") or "."
    return os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"  # noqa: S108


class SingleInstance(QObject):
    """Claims the per-user name, or asks the running app to come forward.

    Signals:
        activation_requested: another start of the app asked to be shown.
    """

    activation_requested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._lock: IO[bytes] | None = None
        self._server: QLocalServer | None = None

    def acquire(self, timeout: float = 3.0) -> bool:
        """True if this process is now the one instance; False if another
        instance runs (it was asked to show its window)."""
        if self._take_lock():
            return True
        self._ask_to_come_forward(timeout)
        return False

    def listen(self) -> None:
        """Accept requests from later starts (call once the window shows)."""
        from PySide6.QtNetwork import QLocalServer

        if self._lock is None or self._server is not None:
            return
        # We hold the lock, so a socket left by a crashed run is stale.
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("single-instance socket unavailable: %s", server.errorString())
            return
        server.newConnection.connect(self._on_connection)
        self._server = server

    def release(self) -> None:
        """Give the name up (on exit), so the next start can claim it."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock is not None:
            self._lock.close()  # closing the file releases the OS lock
            self._lock = None

    # --- internals ---------------------------------------------------------

    def _take_lock(self) -> bool:
        path = os.path.join(_lock_dir(), f"{self.name}.lock")
        handle = open(path, "a+b")  # noqa: SIM115 - held for the app's life
        try:
            if sys.platform == "win32":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        return True

    def _ask_to_come_forward(self, timeout: float) -> None:
        from PySide6.QtNetwork import QLocalSocket

        # The first instance may still be starting: its server opens after
        # its first paint, so keep trying for a little while.
        deadline = time.monotonic() + timeout
        while True:
            socket = QLocalSocket()
            socket.connectToServer(self.name)
            if socket.waitForConnected(250):
                socket.write(_ACTIVATE)
                socket.flush()
                socket.waitForBytesWritten(1000)
                socket.disconnectFromServer()
                log.info("sage-desktop already runs; asked it to come forward")
                return
            if time.monotonic() >= deadline:
                log.warning("sage-desktop already runs but did not answer")
                return
            time.sleep(0.1)

    def _on_connection(self) -> None:
        # Any connection is a request to come forward: the second instance
        # has nothing else to say, so the message itself is not awaited.
        server = self._server
        if server is None:
            return
        while server.hasPendingConnections():
            socket = server.nextPendingConnection()
            socket.abort()
            socket.deleteLater()
        self.activation_requested.emit()
