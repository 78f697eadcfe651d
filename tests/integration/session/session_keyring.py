"""A file-backed keyring for the multi-process session tests only.

Selected in child processes with ``PYTHON_KEYRING_BACKEND=
session_keyring.FileKeyring`` (this folder on ``PYTHONPATH``); the folder
comes from ``SAGE_DESKTOP_TEST_KEYRING_DIR``. One file per entry, replaced
atomically, so processes share it as they would share a real keychain.
It keeps secrets in plain files and must never ship in ``sage_desktop/``;
with ``SAGE_DESKTOP_TEST_KEYCHAIN=1`` the tests use the Secret Service.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

DIR_VARIABLE = "SAGE_DESKTOP_TEST_KEYRING_DIR"


class FileKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:  # noqa: N805
        # keyring tries every backend class it knows; this one only counts
        # in the child processes that name its folder.
        if DIR_VARIABLE not in os.environ:
            raise RuntimeError(f"{DIR_VARIABLE} is not set")
        return 1

    def __init__(self, directory: str | None = None) -> None:
        super().__init__()
        self.directory = Path(directory or os.environ[DIR_VARIABLE])
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, service: str, username: str) -> Path:
        name = hashlib.sha256(f"{service}\0{username}".encode()).hexdigest()
        return self.directory / name

    def get_password(self, service: str, username: str) -> str | None:
        try:
            data = json.loads(self._path(service, username).read_text())
        except FileNotFoundError:
            return None
        return str(data["password"])

    def set_password(self, service: str, username: str, password: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump({"password": password}, handle)
        os.replace(tmp, self._path(service, username))

    def delete_password(self, service: str, username: str) -> None:
        try:
            self._path(service, username).unlink()
        except FileNotFoundError:
            raise PasswordDeleteError("not found") from None
