"""Bounded, retried and translated calls to a ``keyring`` backend.

Every call runs in a daemon worker thread and is abandoned when the
operation's deadline passes, so a Secret Service that never answers (a hung
``gnome-keyring-daemon``, an unlock prompt nobody sees) cannot hang the app.
Errors a user can act on are translated into the :mod:`sage_desktop.errors`
keychain tree; errors known to be transient are retried a few times with a
short backoff first.

Transient, as seen with GNOME Keyring under concurrent access from several
processes: "No such object" (``ItemNotFoundException``) for an item that
exists, and a moment where the default collection is not found and
secretstorage's attempt to create it ends in "Prompt dismissed".
A locked collection is never retried: every retry would show the unlock
prompt again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from keyring.backend import KeyringBackend
from keyring.errors import (
    InitError,
    KeyringLocked,
    NoKeyringError,
    PasswordDeleteError,
)

from sage_desktop.errors import (
    KeychainError,
    KeychainLocked,
    KeychainPromptDismissed,
    KeychainTimeout,
    NoKeychainBackend,
)

try:  # secretstorage exists only where the Secret Service backend can run
    from secretstorage import exceptions as _ss
except ImportError:  # pragma: no cover - Windows and macOS
    _ss = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Pauses between attempts of a transient failure (seconds).
BACKOFF = (0.05, 0.1, 0.2, 0.4)


class _TransientError(Exception):
    """Internal: a failure worth retrying; ``final`` is what to report."""

    def __init__(self, final: KeychainError) -> None:
        super().__init__(final.explanation)
        self.final = final


def _plaintext_backend(backend: KeyringBackend) -> bool:
    """True for backends that keep secrets in a file (``keyrings.alt``)."""
    return type(backend).__module__.startswith("keyrings.alt")


def check_backend(backend: KeyringBackend) -> None:
    """Refuse backends that store nothing or store it in a plain file.

    keyring falls back to its ``fail`` backend (raises on use), a ``null``
    backend (silently forgets) or an empty chainer (silently forgets) when
    no keychain is present; ``keyrings.alt`` writes plain or weakly
    encrypted files. All of them are refused: sage-desktop fails closed.
    """
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        raise NoKeychainBackend()
    members = [backend]
    if isinstance(backend, chainer.ChainerBackend):
        members = list(backend.backends)
        if not members:
            raise NoKeychainBackend()
    if any(_plaintext_backend(m) for m in members):
        raise NoKeychainBackend(
            "Only a plain-file keyring (keyrings.alt) is configured, and "
            "sage-desktop never stores tokens in a file."
        )


def translate(exc: BaseException) -> KeychainError | _TransientError:
    """Map a backend exception to the error to report, or a transient one.

    Messages never include the backend's text verbatim beyond its class
    name: a backend could echo what it was asked to store.
    """
    name = type(exc).__name__
    if isinstance(exc, NoKeyringError):
        return NoKeychainBackend()
    if isinstance(exc, KeyringLocked):
        return KeychainLocked()
    if _ss is not None:
        if isinstance(exc, _ss.PromptDismissedException):
            return _TransientError(KeychainPromptDismissed())
        if isinstance(exc, _ss.LockedException):
            return KeychainLocked()
        if isinstance(exc, _ss.SecretServiceNotAvailableException):
            return _TransientError(NoKeychainBackend())
        if isinstance(exc, _ss.ItemNotFoundException):
            return _TransientError(
                KeychainError("The keychain lost an item while it was read.")
            )
    if isinstance(exc, InitError):
        if "dismiss" in str(exc).lower():
            return _TransientError(KeychainPromptDismissed())
        return _TransientError(
            KeychainError("The keychain's default collection could not be opened.")
        )
    if isinstance(exc, OSError | EOFError):
        return _TransientError(
            KeychainError(f"The connection to the keychain failed ({name}).")
        )
    return KeychainError(f"The keychain refused the request ({name}).")


class Keychain:
    """One service of a keyring backend, with deadlines and retries.

    ``backend`` may be ``None``: ``keyring.get_keyring()`` is then asked on
    first use, inside a bounded call, because backend discovery itself
    talks to D-Bus and can hang.
    """

    def __init__(self, backend: KeyringBackend | None, service: str) -> None:
        self.service = service
        self.calls = 0
        self._backend = backend
        self._checked = False
        self._lock = threading.Lock()

    def backend(self, deadline: float) -> KeyringBackend:
        """The backend, resolved and checked once."""
        with self._lock:
            if self._backend is None:
                import keyring

                self._backend = bounded(keyring.get_keyring, deadline)
            if not self._checked:
                check_backend(self._backend)
                self._checked = True
            return self._backend

    def get(self, key: str, deadline: float) -> str | None:
        backend = self.backend(deadline)
        value: str | None = self._retried(
            lambda: backend.get_password(self.service, key), deadline, "read"
        )
        return value

    def set(self, key: str, value: str, deadline: float) -> None:
        backend = self.backend(deadline)
        self._retried(
            lambda: backend.set_password(self.service, key, value), deadline, "write"
        )

    def delete(self, key: str, deadline: float) -> bool:
        """Delete ``key``; False when it was not there."""
        backend = self.backend(deadline)

        def call() -> bool:
            try:
                backend.delete_password(self.service, key)
            except PasswordDeleteError:
                return False
            return True

        deleted: bool = self._retried(call, deadline, "delete")
        return deleted

    def _retried(self, call: Callable[[], T], deadline: float, what: str) -> T:
        earlier: _TransientError | None = None
        for attempt, pause in enumerate((*BACKOFF, None), start=1):
            self.calls += 1
            try:
                return bounded(call, deadline)
            except KeychainTimeout:
                # Out of time while retrying: the failure seen is the news.
                if earlier is not None:
                    raise earlier.final from None
                raise
            except KeychainError:
                raise
            except Exception as exc:
                outcome = translate(exc)
                if isinstance(outcome, KeychainError):
                    raise outcome from exc
                if pause is None or time.monotonic() + pause >= deadline:
                    raise outcome.final from exc
                earlier = outcome
                log.debug(
                    "keychain %s failed with %s (attempt %d), retrying",
                    what,
                    type(exc).__name__,
                    attempt,
                )
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def bounded(call: Callable[[], T], deadline: float) -> T:
    """Run ``call`` in a daemon thread; KeychainTimeout after ``deadline``.

    Limitation: a timed-out call cannot be cancelled. Its thread is left to
    finish (or hang) on its own; being a daemon it never blocks exit.
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise KeychainTimeout()
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, name="sage-desktop-keychain", daemon=True)
    worker.start()
    if not done.wait(remaining):
        log.warning("keychain call did not answer within %.1f s", remaining)
        raise KeychainTimeout()
    if "error" in box:
        raise box["error"]
    result: T = box["value"]
    return result
