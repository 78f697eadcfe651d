"""A keyring backend for command-line tests only, one file per entry.

Selected in a child process with ``PYTHON_KEYRING_BACKEND=
cli_keyring.DirectoryKeyring`` and ``CLI_TEST_KEYRING_DIR``, so ``login``
and a later ``logout`` (separate processes) share their tokens without a
Secret Service. It keeps secrets in plain files: tests only, never shipped.
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


class DirectoryKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:  # noqa: N805
        # keyring offers every loaded backend class; this one must never be
        # chosen by accident (only PYTHON_KEYRING_BACKEND names it).
        if "CLI_TEST_KEYRING_DIR" not in os.environ:
            raise RuntimeError("only for the sign-in command-line tests")
        return 1

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(os.environ["CLI_TEST_KEYRING_DIR"])
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, service: str, username: str) -> Path:
        name = hashlib.sha256(f"{service}\0{username}".encode()).hexdigest()
        return self.directory / name

    def get_password(self, service: str, username: str) -> str | None:
        try:
            return str(json.loads(self._path(service, username).read_text())["p"])
        except FileNotFoundError:
            return None

    def set_password(self, service: str, username: str, password: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump({"p": password}, handle)
        os.replace(tmp, self._path(service, username))

    def delete_password(self, service: str, username: str) -> None:
        try:
            self._path(service, username).unlink()
        except FileNotFoundError:
            raise PasswordDeleteError("not found") from None
