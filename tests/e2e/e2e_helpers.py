"""Helpers of the browser tests (a module of its own: conftest is not
importable by name when the whole suite runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM_SCRIPT = HERE / "chromium_browser.py"
KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"
ACCOUNTANT = "accountant@sandbox.example"


def browser_command(python: str = sys.executable) -> str:
    """The ``BROWSER`` value running the Chromium script (``%s``: the URL)."""
    return f"{python} {CHROMIUM_SCRIPT} %s"


def read_report(folder: Path) -> dict[str, object]:
    """The browser's report: steps, callback page text, code_shown."""
    report = json.loads((folder / "report.json").read_text())
    assert isinstance(report, dict)
    return report


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


def private_env(tmp_path: Path) -> dict[str, str]:
    """The environment minus our settings, with private HOME/XDG folders."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAGE_DESKTOP_", "XDG_", "SANDBOX_"))
    }
    for name in ("config", "data", "state", "cache"):
        env[f"XDG_{name.upper()}_HOME"] = str(tmp_path / name)
    (tmp_path / "home").mkdir(exist_ok=True)
    env["HOME"] = str(tmp_path / "home")
    return env
