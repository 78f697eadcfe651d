"""Backends the vault contract suite runs against, and a fault injector."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from keyring.backend import KeyringBackend

from sage_desktop.vault.memory import WINDOWS_MAX_BYTES, MemoryKeyring

KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"

needs_keychain = pytest.mark.skipif(
    not KEYCHAIN, reason="set SAGE_DESKTOP_TEST_KEYCHAIN=1 for the Secret Service"
)


def secret_service() -> KeyringBackend:
    """keyring's Secret Service backend (gnome-keyring on a private D-Bus)."""
    from keyring.backends import SecretService

    return SecretService.Keyring()


def make_backend(kind: str) -> KeyringBackend:
    if kind == "memory":
        return MemoryKeyring()
    if kind == "windows-limit":
        return MemoryKeyring(max_bytes=WINDOWS_MAX_BYTES)
    if kind == "secret-service":
        return secret_service()
    raise ValueError(kind)


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("windows-limit", id="windows-limit"),
    pytest.param(
        "secret-service",
        id="secret-service",
        marks=[pytest.mark.keychain, needs_keychain],
    ),
]


class FlakyKeyring(KeyringBackend):
    """Wraps a backend; raises queued exceptions or blocks before calls.

    ``fail(op, exc, times)`` makes the next ``times`` calls of ``op``
    ("get", "set", "delete") raise ``exc``; ``hang`` blocks every call
    until set. Used to play GNOME Keyring's transient errors and a
    Secret Service that never answers.
    """

    priority = 1

    def __init__(self, inner: KeyringBackend) -> None:
        super().__init__()
        self.inner = inner
        self.faults: dict[str, list[BaseException]] = {}
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def fail(self, op: str, exc: BaseException, times: int = 1) -> None:
        with self._lock:
            self.faults.setdefault(op, []).extend([exc] * times)

    def hang(self) -> None:
        self.release.clear()

    def _before(self, op: str) -> None:
        if not self.release.is_set():
            self.blocked.set()
            self.release.wait()
        with self._lock:
            queue = self.faults.get(op)
            exc = queue.pop(0) if queue else None
        if exc is not None:
            raise exc

    def _call(self, op: str, call: Callable[[], Any]) -> Any:
        self._before(op)
        return call()

    def get_password(self, service: str, username: str) -> str | None:
        return self._call("get", lambda: self.inner.get_password(service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._call("set", lambda: self.inner.set_password(service, username, password))

    def delete_password(self, service: str, username: str) -> None:
        self._call("delete", lambda: self.inner.delete_password(service, username))


def stored_entries(backend: KeyringBackend, service: str) -> dict[str, str]:
    """Every (username -> password) stored under ``service``, by any backend."""
    if isinstance(backend, FlakyKeyring):
        return stored_entries(backend.inner, service)
    if isinstance(backend, MemoryKeyring):
        return {
            u: backend.get_password(service, u) or ""
            for u in backend.usernames(service)
        }
    from contextlib import closing

    import secretstorage

    with closing(secretstorage.dbus_init()) as bus:
        collection = secretstorage.get_default_collection(bus)
        return {
            item.get_attributes()["username"]: item.get_secret().decode()
            for item in collection.search_items({"service": service})
        }
