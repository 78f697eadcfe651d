"""The per-grant lock shared by every sage-desktop process of a user.

Sage rotates the refresh token on every use and answers ``invalid_grant`` to
any refresh token that is not the newest, so two processes (the GUI and a
script) must never refresh the same grant at once. A lock file per grant,
held with the OS's advisory file locks through ``filelock``, serialises
them; the OS releases it when a process dies, so a crash never leaves a
grant locked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
import platformdirs

from sage_desktop.errors import SageUnavailable

log = logging.getLogger(__name__)

APP_NAME = "sage-desktop"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def default_lock_dir() -> Path:
    """The runtime dir (cleared at logout) if usable, else the state dir."""
    candidates = []
    if os.environ.get("XDG_RUNTIME_DIR") or os.name != "posix":
        candidates.append(Path(platformdirs.user_runtime_dir(APP_NAME)))
    candidates.append(Path(platformdirs.user_state_dir(APP_NAME)) / "locks")
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            log.debug("lock dir %s unusable: %s", directory, exc)
            continue
        if os.access(directory, os.W_OK):
            return directory
    return candidates[-1]


class GrantLocks:
    """Hands out the inter-process lock of each grant.

    Args:
        directory: where lock files live; default :func:`default_lock_dir`.
        timeout: seconds to wait for another process's refresh to finish.
            It must exceed the longest refresh (the HTTP timeout).
    """

    def __init__(self, directory: Path | None = None, timeout: float = 60.0) -> None:
        self.directory = directory or default_lock_dir()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.timeout = timeout

    def path_for(self, grant_id: str) -> Path:
        """The lock file of ``grant_id`` (hashed if not a plain id)."""
        name = grant_id
        if not _SAFE_NAME.match(name):
            name = hashlib.sha256(grant_id.encode()).hexdigest()[:32]
        return self.directory / f"{name}.lock"

    @contextmanager
    def hold(self, grant_id: str) -> Iterator[None]:
        """Hold the grant's lock for the ``with`` block.

        Raises :class:`SageUnavailable` (transient) if another process
        keeps it longer than ``timeout``.
        """
        lock = filelock.FileLock(
            str(self.path_for(grant_id)), mode=0o600, thread_local=False
        )
        try:
            lock.acquire(timeout=self.timeout)
        except filelock.Timeout as exc:
            raise SageUnavailable(
                "Another sage-desktop program is still renewing this "
                "connection's sign-in.",
                remedy="Wait a moment and retry.",
            ) from exc
        try:
            yield
        finally:
            lock.release()
