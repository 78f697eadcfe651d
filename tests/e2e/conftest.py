"""Fixtures for sign-in in a real browser: Debian's headless Chromium.

The browser is ``tests/e2e/chromium_browser.py``, used as ``BROWSER`` the
way a user's system browser is, so the app under test opens it through
Python's ``webbrowser`` exactly as it opens Firefox or Chrome for a user.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_desktop.sandbox import Sandbox

HERE = Path(__file__).resolve().parent
CHROMIUM_SCRIPT = HERE / "chromium_browser.py"


def _chromium_missing() -> str | None:
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.access(tool, os.X_OK):
            return f"{tool} is not installed (apt-get install chromium-driver)"
    return None


@pytest.fixture
def chromium() -> None:
    """Skip the test where Debian's Chromium or its driver is missing."""
    reason = _chromium_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the browser saves a PNG of each page and its report.json.

    With ``SAGE_SHOTS`` set, the pictures are copied there as well, to look
    at after the run.
    """
    folder = tmp_path / "browser"
    yield folder
    keep = os.environ.get("SAGE_SHOTS")
    if keep and folder.is_dir():
        shutil.copytree(folder, Path(keep) / folder.parent.name, dirs_exist_ok=True)


def browser_command(python: str = sys.executable) -> str:
    """The ``BROWSER`` value running the Chromium script (``%s``: the URL)."""
    return f"{python} {CHROMIUM_SCRIPT} %s"


def read_report(folder: Path) -> dict[str, object]:
    """The browser's report: steps, callback page text, code_shown."""
    report = json.loads((folder / "report.json").read_text())
    assert isinstance(report, dict)
    return report


KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"
ACCOUNTANT = "accountant@sandbox.example"


@pytest.fixture
def keychain() -> None:
    """Skip unless the real Secret Service is there (see .ci/test)."""
    if not KEYCHAIN:
        pytest.skip("set SAGE_DESKTOP_TEST_KEYCHAIN=1 for the Secret Service")
    if not shutil.which("secret-tool"):
        pytest.skip("needs secret-tool (apt-get install libsecret-tools)")


def secret_service_items(connection_id: str) -> list[dict[str, str]]:
    """``secret-tool``'s view of the items stored for one connection."""
    import subprocess

    done = subprocess.run(
        ["secret-tool", "search", "--all", "--unlock", "service", "sage-desktop"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    items: list[dict[str, str]] = []
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.startswith("["):
            items.append({})
        elif " = " in line and items:
            key, _, value = line.partition(" = ")
            items[-1][key.strip()] = value
    return [i for i in items if connection_id in i.get("attribute.username", "")]


def files_holding(secrets: list[str], *roots: Path) -> list[Path]:
    """Files under ``roots`` (and under HOME when it is a throw-away test
    home, as in .ci/test) that contain any of ``secrets``."""
    import tempfile

    folders = list(roots)
    home = Path(os.path.expanduser("~"))
    if str(home).startswith(tempfile.gettempdir()):
        folders.append(home)
    needles = [s.encode() for s in secrets if len(s) >= 20]
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
