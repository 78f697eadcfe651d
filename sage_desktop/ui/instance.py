"""One running app per user: a second start brings the first one forward.

Two apps would mean two refresh workers for the same grants. They would
not corrupt anything (the per-grant file lock serialises refreshes), but
the user would see two windows that disagree for a moment, so the second
start hands over to the first through a local socket and exits.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

_ACTIVATE = b"activate\n"


def instance_name(sandbox: bool = False) -> str:
    """A per-user socket name (the user and home directory, hashed)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    seed = f"{user}\0{os.path.expanduser('~')}\0{'sandbox' if sandbox else 'app'}"
    return "sage-desktop-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


class SingleInstance(QObject):
    """Claims the per-user name, or asks the running app to come forward.

    Signals:
        activation_requested: another start of the app asked to be shown.
    """

    activation_requested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server: QLocalServer | None = None

    def acquire(self, timeout_ms: int = 1000) -> bool:
        """True if this process is now the one instance; False if another
        instance runs (it was asked to show its window)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if socket.waitForConnected(timeout_ms):
            socket.write(_ACTIVATE)
            socket.flush()
            socket.waitForBytesWritten(timeout_ms)
            socket.disconnectFromServer()
            log.info("sage-desktop already runs; asked it to come forward")
            return False

        # No one answered: a socket file left by a crashed run is stale.
        # Limitation: two starts in the same instant can both get here;
        # the refresh lock still keeps their tokens consistent.
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("single-instance socket unavailable: %s", server.errorString())
            return True
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def release(self) -> None:
        """Give the name up (on exit), so the next start can claim it."""
        if self._server is not None:
            self._server.close()
            self._server = None

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
