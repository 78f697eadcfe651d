"""The registry of connections: who signed in, and which business they use.

A connection is one Sage sign-in (one grant) plus the business chosen for
it. The registry keeps only metadata: names, email, region, scope, the
business's id and name, times. Tokens live in the keychain
(:class:`~sage_desktop.vault.TokenVault`) under the connection's id, which
is also the grant id.

The file is ``connections.json`` in the platformdirs user data directory
(so ``XDG_DATA_HOME`` moves it), mode 0600, replaced atomically (temporary
file in the same directory, fsync, ``os.replace``). The GUI and scripts
share it, so every read-modify-write holds a file lock beside it; plain
reads need none, since a reader sees either the old or the new file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock
import platformdirs

from sage_desktop.errors import (
    ConfigError,
    ConnectionNotFound,
    RegistryCorrupt,
)

if TYPE_CHECKING:
    from sage_desktop.vault import TokenVault

log = logging.getLogger(__name__)

APP_NAME = "sage-desktop"
FILE_NAME = "connections.json"
FORMAT_VERSION = 1

#: Seconds a writer waits for another process's read-modify-write.
LOCK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Connection:
    """One Sage sign-in and its chosen business. Holds no secret."""

    id: str
    user_id: str
    user_name: str
    email: str
    region: str
    scope: str
    business_id: str | None
    business_name: str | None
    created_at: float
    last_used_at: float
    needs_sign_in: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Connection:
        """Rebuild from :meth:`to_dict`, ignoring fields a newer app added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def label(self) -> str:
        """How the connection is named on screen: user and business."""
        business = self.business_name or "no business chosen"
        return f"{self.user_name} <{self.email}>, {business}"


#: The registry's content (an alias: ``list`` is a method name below).
Connections = list[Connection]


_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def default_path() -> Path:
    """``connections.json`` in the platformdirs user data directory."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / FILE_NAME


class ConnectionRegistry:
    """Connections on disk; every call reads the file afresh.

    Args:
        path: the JSON file (default :func:`default_path`).
        vault: where :meth:`remove` deletes the tokens; default a
            :class:`~sage_desktop.vault.TokenVault` on the OS keychain,
            created when first needed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        vault: TokenVault | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._vault = vault
        self._lock = filelock.FileLock(
            self.path.with_name(self.path.name + ".lock"), mode=0o600
        )

    # --- reading ---------------------------------------------------------

    def list(self) -> Connections:
        """Every connection, in the order they were added."""
        return self._read()

    def get(self, connection_id: str) -> Connection:
        """The connection with that id; ConnectionNotFound otherwise."""
        for connection in self._read():
            if connection.id == connection_id:
                return connection
        raise ConnectionNotFound(f"No connection has the id {connection_id!r}.")

    def find(self, id_or_email: str) -> Connection | None:
        """A connection by id, unique id prefix, or email (any case).

        Several connections can share an email (one sign-in per business
        chosen); the most recently used one is returned.
        """
        connections = self._read()
        for connection in connections:
            if connection.id == id_or_email:
                return connection
        prefixed = [c for c in connections if c.id.startswith(id_or_email)]
        if len(prefixed) == 1 and len(id_or_email) >= 4:
            return prefixed[0]
        wanted = id_or_email.strip().casefold()
        by_email = [c for c in connections if c.email.casefold() == wanted]
        if by_email:
            return max(by_email, key=lambda c: c.last_used_at)
        return None

    def choose(self, wanted: str | None) -> Connection:
        """The connection ``--connection`` names, or the only one there is.

        Raises :class:`ConnectionNotFound` when nothing matches ``wanted``
        or there is no connection at all, and a :class:`ConfigError` naming
        them all when there are several.
        """
        if wanted:
            found = self.find(wanted)
            if found is None:
                raise ConnectionNotFound(
                    f"No connection matches {wanted!r}.",
                    remedy="Run 'sage-desktop connections' to see them.",
                )
            return found
        connections = self.list()
        if not connections:
            raise ConnectionNotFound(
                "There is no connection to Sage on this computer yet.",
                remedy="Run 'sage-desktop login' first.",
            )
        if len(connections) > 1:
            names = ", ".join(f"{c.id[:8]} ({c.email})" for c in connections)
            raise ConfigError(
                f"There are several connections: {names}.",
                title="Which connection?",
                remedy="Choose one with --connection ID or --connection EMAIL.",
            )
        return connections[0]

    def find_by_user(self, user_id: str) -> Connection | None:
        """The most recently used connection of a Sage user id, or None."""
        matches = [c for c in self._read() if c.user_id == user_id]
        return max(matches, key=lambda c: c.last_used_at) if matches else None

    # --- writing ---------------------------------------------------------

    def save(self, connection: Connection) -> None:
        """Insert ``connection``, or replace the one with the same id."""

        def change(connections: Connections) -> Connections:
            kept = [c for c in connections if c.id != connection.id]
            if len(kept) == len(connections):
                return [*connections, connection]
            return [connection if c.id == connection.id else c for c in connections]

        self._update(change)
        log.info("saved connection %s", connection.id)

    def remove(self, connection_id: str) -> None:
        """Delete the connection's keychain entries, then the connection.

        The keychain goes first: if it fails (locked, say) the connection
        stays listed, so the user can retry rather than leave tokens
        behind with nothing pointing at them.
        """
        self._vault_or_default().delete(connection_id)
        found = False

        def change(connections: Connections) -> Connections:
            nonlocal found
            kept = [c for c in connections if c.id != connection_id]
            found = len(kept) != len(connections)
            return kept

        self._update(change)
        if not found:
            raise ConnectionNotFound(f"No connection has the id {connection_id!r}.")
        log.info("removed connection %s", connection_id)

    def mark_sign_in_required(self, connection_id: str, flag: bool = True) -> None:
        """Flag (or clear) "sign in again" after Sage refused the grant."""
        self._change_one(connection_id, lambda c: replace(c, needs_sign_in=flag))

    def touch(self, connection_id: str, when: float | None = None) -> None:
        """Record that the connection was just used."""
        now = time.time() if when is None else when
        self._change_one(connection_id, lambda c: replace(c, last_used_at=now))

    # --- the file --------------------------------------------------------

    def _vault_or_default(self) -> TokenVault:
        if self._vault is None:
            from sage_desktop.vault import TokenVault

            self._vault = TokenVault()
        return self._vault

    def _change_one(
        self, connection_id: str, change: Callable[[Connection], Connection]
    ) -> None:
        def update(connections: Connections) -> Connections:
            if not any(c.id == connection_id for c in connections):
                raise ConnectionNotFound(f"No connection has the id {connection_id!r}.")
            return [change(c) if c.id == connection_id else c for c in connections]

        self._update(update)

    def _update(self, change: Callable[[Connections], Connections]) -> None:
        with self._locked():
            self._write(change(self._read()))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        _make_private_dir(self.path.parent)
        # filelock counts re-entry per process, not per thread: threads
        # queue on a thread lock first, processes on the file lock.
        with _THREAD_LOCKS_GUARD:
            thread_lock = _THREAD_LOCKS.setdefault(self.path, threading.Lock())
        with thread_lock:
            yield from self._file_locked()

    def _file_locked(self) -> Iterator[None]:
        try:
            self._lock.acquire(timeout=LOCK_TIMEOUT)
        except filelock.Timeout as exc:
            raise RegistryCorrupt(
                f"Another sage-desktop process kept {self.path} locked.",
                title="Connections file busy",
                remedy="Close other sage-desktop windows or scripts and retry.",
            ) from exc
        try:
            yield
        finally:
            self._lock.release()

    def _read(self) -> Connections:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RegistryCorrupt(f"{self.path} could not be read.") from exc
        try:
            data = json.loads(text)
            return [Connection.from_dict(item) for item in data["connections"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise RegistryCorrupt(f"{self.path} is not a connections file.") from exc

    def _write(self, connections: Connections) -> None:
        data = {
            "version": FORMAT_VERSION,
            "connections": [c.to_dict() for c in connections],
        }
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        _write_atomically(self.path, text)


def _make_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` so readers see the old or the new file, never half.

    The temporary file sits in the same directory (``os.replace`` is atomic
    only within one file system) and is fsynced before the rename, so a
    power cut cannot leave an empty file behind the new name.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if sys.platform != "win32":
                os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sys.platform != "win32":
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
