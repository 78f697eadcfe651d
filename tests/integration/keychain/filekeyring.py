"""A file-backed keyring for tests only: persists across processes.

Each entry is one file, replaced atomically (write a temporary file, then
``os.replace``), just as a keychain replaces one item at a time. This lets
the crash and multi-process tests run anywhere, without a Secret Service.
It must never ship in ``sage_desktop/``: it keeps secrets in plain files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__()
        self.directory = Path(directory)
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
        record = {"service": service, "username": username, "password": password}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        os.replace(tmp, self._path(service, username))

    def delete_password(self, service: str, username: str) -> None:
        try:
            self._path(service, username).unlink()
        except FileNotFoundError:
            raise PasswordDeleteError("Password not found") from None

    def entries(self, service: str) -> dict[str, str]:
        """Every (username -> password) of ``service``."""
        found = {}
        for path in self.directory.iterdir():
            if path.name.startswith(".tmp-"):
                continue
            data = json.loads(path.read_text())
            if data["service"] == service:
                found[data["username"]] = data["password"]
        return found
