"""Helpers of the packaging tests: the built program and how to run it
(a module of its own: conftest is not importable by name when the whole
suite runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXE_NAME = "sage-desktop.exe" if sys.platform == "win32" else "sage-desktop"
KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"


@dataclass
class FrozenApp:
    """The built program and a clean environment to run it in."""

    dist: Path
    exe: Path
    build_seconds: float | None
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the frozen program as a user would, from a terminal."""
        return subprocess.run(
            [str(self.exe), *args],
            env=env if env is not None else self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def build_frozen_app(out: Path) -> Path:
    """``pyinstaller build.spec`` into ``out``; returns dist/sage-desktop."""
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(REPO / "build.spec"),
        "--noconfirm",
        "--log-level=WARN",
        "--distpath",
        str(out / "dist"),
        "--workpath",
        str(out / "build"),
    ]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"the build failed:\n{done.stderr[-4000:]}")
    return out / "dist" / "sage-desktop"
