"""An in-memory keyring backend, faithful enough to test the vault against.

:class:`MemoryKeyring` behaves like a real ``keyring`` backend: it stores
strings per (service, username), returns ``None`` for a missing entry and
raises ``PasswordDeleteError`` when deleting one. With ``max_bytes=2560`` it
also enforces Windows Credential Manager's limit the way Windows does: the
password is stored as UTF-16-LE, and a blob over 2560 bytes
(``CRED_MAX_CREDENTIAL_BLOB_SIZE``) is refused with Windows' own message,
"The stub received bad data". That proves the vault's chunking on machines
where Windows cannot run.

It counts its calls, so tests and the benchmark can check how many keychain
round trips an operation costs.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError, PasswordSetError

#: Windows' CRED_MAX_CREDENTIAL_BLOB_SIZE (wincred.h): 5 * 512 bytes.
WINDOWS_MAX_BYTES = 2560


class CredentialTooLargeError(PasswordSetError):
    """Raised like Windows' CredWrite error 1783 for an oversized password."""


class MemoryKeyring(KeyringBackend):
    """A thread-safe keyring held in a dict; optionally Windows-limited.

    ``max_bytes`` is the largest password, measured as UTF-16-LE bytes as
    Windows stores it; ``None`` means no limit (like the Secret Service).
    """

    @properties.classproperty
    def priority(cls) -> float:  # noqa: N805
        """Viable only where ``PYTHON_KEYRING_BACKEND`` names this class.

        keyring offers every loaded backend class with a priority to its
        automatic choice (a chainer of them all): an in-memory keychain,
        or a test's subclass of it, must never join the real one there.
        """
        if os.environ.get("PYTHON_KEYRING_BACKEND") != _qualified_name(cls):
            raise RuntimeError("the in-memory keyring is only used when named")
        return 1

    def __init__(self, max_bytes: int | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.max_bytes = max_bytes
        self.calls: Counter[str] = Counter()
        self._items: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            self.calls["get"] += 1
            return self._items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        size = len(password.encode("utf-16-le"))
        with self._lock:
            self.calls["set"] += 1
            if self.max_bytes is not None and size > self.max_bytes:
                # Windows answers CredWrite of an oversized blob with
                # RPC_X_BAD_STUB_DATA (1783), whatever the real cause.
                raise CredentialTooLargeError(
                    "(1783, 'CredWrite', 'The stub received bad data.')"
                )
            self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            self.calls["delete"] += 1
            if self._items.pop((service, username), None) is None:
                raise PasswordDeleteError("Password not found")

    # --- for tests -------------------------------------------------------

    def usernames(self, service: str) -> list[str]:
        """Every username stored under ``service`` (no call is counted)."""
        with self._lock:
            return sorted(u for (s, u) in self._items if s == service)

    def values(self) -> list[str]:
        """Every stored password, for tests that look for leftovers."""
        with self._lock:
            return list(self._items.values())

    @property
    def total_calls(self) -> int:
        """Keychain round trips so far (reads, writes and deletes)."""
        return sum(self.calls.values())


def _qualified_name(cls: Any) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
