"""The built program's window: it starts, shows, takes the single-instance
name (QLocalServer) and ends, offscreen and on X11 (Xvfb)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from packaging_helpers import REPO, FrozenApp

pytestmark = pytest.mark.packaging

# The UI's way to quit once the window has shown, when it offers one.
QUIT_AFTER_SHOW = "SAGE_DESKTOP_QUIT_AFTER_SHOW"
BROKEN = ("Traceback", "Could not load the Qt platform plugin", "Aborted")


def _offers_quit_after_show() -> bool:
    ui = REPO / "sage_desktop" / "ui"
    return any(QUIT_AFTER_SHOW in p.read_text() for p in ui.glob("*.py"))


def _wait_for_instance_socket(tmp: Path, proc: subprocess.Popen[str]) -> None:
    """The app listens on sage-desktop-<hash> in TMPDIR once it is up."""
    deadline = time.monotonic() + 30
    while not list(tmp.glob("sage-desktop-*")):
        assert proc.poll() is None, "the app ended before it took its name"
        assert time.monotonic() < deadline, "the app never took its name"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.parametrize("platform", ["offscreen", "xcb"])
def test_frozen_gui_shows_its_window_and_a_second_start_hands_over(
    app: FrozenApp, tmp_path: Path, platform: str
) -> None:
    prefix: list[str] = []
    if platform == "xcb":
        if not shutil.which("xvfb-run"):
            pytest.skip("needs xvfb-run (apt-get install xvfb)")
        prefix = ["xvfb-run", "-a"]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**app.env, "QT_QPA_PLATFORM": platform, "TMPDIR": str(tmp)}
    log = tmp_path / "first.log"

    with log.open("w") as out:
        first = subprocess.Popen(
            [*prefix, str(app.exe), "-v"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        _wait_for_instance_socket(tmp, first)
        second = subprocess.run(
            [*prefix, str(app.exe), "-v"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        time.sleep(1)  # let the first window finish showing
        still_running = first.poll() is None
    finally:
        _stop(first)

    output = log.read_text()
    assert second.returncode == 0, second.stderr
    assert "already runs" in second.stderr
    assert still_running, output
    assert not [b for b in BROKEN if b in output + second.stderr], output


def test_frozen_gui_in_sandbox_mode_ends_cleanly_when_its_window_is_closed(
    app: FrozenApp, tmp_path: Path
) -> None:
    if not shutil.which("Xvfb"):
        pytest.skip("needs Xvfb (apt-get install xvfb)")
    from x11_close import request_close, visible_windows, xvfb

    log = tmp_path / "app.log"
    with xvfb() as display, log.open("w") as out:
        env = {**app.env, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
        proc = subprocess.Popen(
            [str(app.exe), "-v", "--sandbox"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            title = "sage-desktop (sandbox)"
            deadline = time.monotonic() + 30
            while True:
                windows = visible_windows(display)
                ours = [w for w, name in windows.items() if name == title]
                if ours and "sandbox running at" in log.read_text():
                    break
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, windows
                time.sleep(0.1)

            request_close(display, ours[0])  # the user clicks the close box
            code = proc.wait(timeout=30)
        finally:
            _stop(proc)

    output = log.read_text()
    assert code == 0, output
    assert not [b for b in BROKEN if b in output], output


def test_frozen_gui_quits_cleanly_after_showing_its_window(
    app: FrozenApp,
) -> None:
    if not _offers_quit_after_show():
        pytest.skip(f"the UI does not offer {QUIT_AFTER_SHOW}=1 yet")
    done = app.run(env={**app.env, QUIT_AFTER_SHOW: "1"}, timeout=60)

    assert done.returncode == 0, done.stderr
    assert not [b for b in BROKEN if b in done.stdout + done.stderr], done.stderr
