"""Fixtures for sign-in in a real browser: Debian's headless Chromium.

The browser is ``tests/e2e/chromium_browser.py``, used as ``BROWSER`` the
way a user's system browser is, so the app under test opens it through
Python's ``webbrowser`` exactly as it opens Firefox or Chrome for a user.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import KEYCHAIN

from sage_desktop.sandbox import Sandbox


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
def keychain() -> None:
    """Skip unless the real Secret Service is there (see .ci/test)."""
    if not KEYCHAIN:
        pytest.skip("set SAGE_DESKTOP_TEST_KEYCHAIN=1 for the Secret Service")
    if not shutil.which("secret-tool"):
        pytest.skip("needs secret-tool (apt-get install libsecret-tools)")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    """Where the browser saves a PNG of each page and its report.json.

    With ``SAGE_SHOTS`` set, the pictures are copied there as well, to look
    at after the run.
    """
    folder = tmp_path / "browser"
    yield folder
    keep = os.environ.get("SAGE_SHOTS")
    if keep and folder.is_dir():
        shutil.copytree(folder, Path(keep) / folder.parent.name, dirs_exist_ok=True)
