"""The ten causes reproduced on the sandbox, seen from the command line.

See :mod:`doctor_helpers` for what the ``app`` fixture sets up.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from doctor_helpers import SOLE, App

from sage_desktop.sandbox import Sandbox
from sage_desktop.vault.memory import MemoryKeyring


@pytest.fixture
def app(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[App]:
    with Sandbox() as sandbox:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SAGE_DESKTOP_", "XDG_", "SANDBOX_"))
        }
        env.update(sandbox.env())
        for var in ("CONFIG", "DATA", "STATE", "CACHE"):
            env[f"XDG_{var}_HOME"] = str(tmp_path / var.lower())
        env["PYTHON_KEYRING_BACKEND"] = "sage_desktop.vault.memory.MemoryKeyring"
        env["BROWSER"] = f"{sys.executable} -m sage_desktop.sandbox.autobrowser %s"
        env["SANDBOX_LOGIN_EMAIL"] = SOLE
        for name, value in env.items():
            if name.startswith(("SAGE_DESKTOP_", "XDG_")):
                monkeypatch.setenv(name, value)

        backend = MemoryKeyring()
        previous = keyring.get_keyring()
        keyring.set_keyring(backend)
        try:
            yield App(sandbox, tmp_path, env, backend, capsys)
        finally:
            keyring.set_keyring(previous)
