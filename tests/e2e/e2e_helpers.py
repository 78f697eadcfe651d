"""Helpers of the browser tests (a module of its own: conftest is not
importable by name when the whole suite runs)."""

from __future__ import annotations

import json
import os
import sys
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
