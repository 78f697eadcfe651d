"""Fixtures for the desktop app's tests: offscreen Qt, screenshots, hygiene.

Every test here must leave no thread and no timer running: the ``no_leaks``
fixture (autouse) waits briefly for workers to finish and then fails the
test if any thread it did not start is still alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sage_desktop.ui  # noqa: F401  (applies the Qt work-arounds first)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (also copied to $SAGE_SHOTS)."""
    folder = tmp_path / "screens"
    folder.mkdir()
    return folder


@pytest.fixture(autouse=True)
def no_leaks(qapp: object) -> Iterator[None]:
    """Fail a test that leaves a thread running: the refresh worker, a
    sandbox, a callback receiver or the test browser included."""
    from PySide6.QtCore import QThreadPool

    before = set(threading.enumerate())
    yield
    pool = QThreadPool.globalInstance()
    pool.waitForDone(10_000)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [
            t
            for t in threading.enumerate()
            if t not in before
            and t.is_alive()
            and not isinstance(t, threading._DummyThread)  # Qt's pool threads
        ]
        if not alive:
            break
        time.sleep(0.05)
    assert pool.activeThreadCount() == 0
    assert not alive, f"threads left running: {[t.name for t in alive]}"
