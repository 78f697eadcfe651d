"""A file-backed keyring for tests only, shared by processes.

Each entry is one file, replaced atomically (a temporary file, fsync'd,
then ``os.replace``), just as a keychain replaces one item at a time. So
the crash and multi-process tests run anywhere, without a Secret Service:
a reader sees an entry whole, before or after a write, never torn.

In the test process, build it on a folder: ``FileKeyring(directory)``. In
a child process, select it with :func:`child_env` (which sets
``PYTHON_KEYRING_BACKEND=file_keyring.FileKeyring``, the folder in
``SDTEST_KEYRING_DIR`` and this folder on ``PYTHONPATH``).

It keeps secrets in plain files: it must never ship in ``sage_desktop/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

#: The folder of a FileKeyring built without one (in child processes).
DIR_VARIABLE = "SDTEST_KEYRING_DIR"
#: The ``PYTHON_KEYRING_BACKEND`` value that selects it.
BACKEND = "file_keyring.FileKeyring"
#: This folder, for a child's ``PYTHONPATH``.
SUPPORT = Path(__file__).resolve().parent
_TMP_PREFIX = ".tmp-"


class FileKeyring(KeyringBackend):
    @properties.classproperty
    def priority(cls) -> float:  # noqa: N805
        # keyring offers every loaded backend class; this one must never be
        # chosen by accident, only where PYTHON_KEYRING_BACKEND names it
        # (child_env), which also names its folder.
        if DIR_VARIABLE not in os.environ:
            raise RuntimeError(f"a test-only keyring: {DIR_VARIABLE} is not set")
        return 1

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
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
        record = {"service": service, "username": username, "password": password}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(record, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path(service, username))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete_password(self, service: str, username: str) -> None:
        try:
            self._path(service, username).unlink()
        except FileNotFoundError:
            raise PasswordDeleteError("Password not found") from None

    def entries(self, service: str) -> dict[str, str]:
        """Every (username -> password) of ``service``."""
        return {
            r["username"]: r["password"]
            for r in stored_records(self.directory)
            if r["service"] == service
        }


def stored_records(directory: Path) -> list[dict[str, str]]:
    """Every entry a FileKeyring keeps in ``directory`` (none if no folder):
    dicts of service, username and password."""
    if not directory.exists():
        return []
    return [
        json.loads(path.read_text())
        for path in directory.iterdir()
        if not path.name.startswith(_TMP_PREFIX)
    ]


def with_support_path(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this folder first on ``PYTHONPATH``, for a child process
    that imports ``file_keyring``."""
    paths = [str(SUPPORT), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def child_env(env: Mapping[str, str], directory: Path) -> dict[str, str]:
    """``env`` for a child process whose keyring is a FileKeyring on
    ``directory``."""
    return {
        **with_support_path(env),
        "PYTHON_KEYRING_BACKEND": BACKEND,
        DIR_VARIABLE: str(directory),
    }
