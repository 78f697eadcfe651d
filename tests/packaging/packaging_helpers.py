"""Helpers of the packaging tests: the built program and how to run it
(a module of its own: conftest is not importable by name when the whole
suite runs)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


def secret_service_items(connection_id: str) -> list[dict[str, str]]:
    """``secret-tool``'s view of the items stored for one connection.

    secret-tool prints each item's secret on stdout and its attributes on
    stderr; unbuffered (stdbuf), the two streams interleave item by item.
    """
    command = ["secret-tool", "search", "--all", "--unlock", "service"]
    done = subprocess.run(
        ["stdbuf", "-o0", "-e0", *command, "sage-desktop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    items: list[dict[str, str]] = []
    for line in done.stdout.splitlines():
        if line.startswith("["):
            items.append({})
        elif " = " in line and items:
            key, _, value = line.partition(" = ")
            items[-1][key.strip()] = value
    return [i for i in items if connection_id in i.get("attribute.username", "")]


def files_holding(secrets: list[str], *roots: Path) -> list[Path]:
    """Files under ``roots`` (and under HOME when it is a throw-away test
    home, as in .ci/test) that contain any of ``secrets``."""
    folders = list(roots)
    home = Path(os.path.expanduser("~"))
    if str(home).startswith(tempfile.gettempdir()):
        folders.append(home)
    needles = [s.encode() for s in secrets if len(s) >= 20]
    assert needles, "nothing to look for"
    found = []
    for root in folders:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if any(n in data for n in needles):
                    found.append(path)
    return found
