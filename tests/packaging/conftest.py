"""The PyInstaller build, made once per test session from ``build.spec``.

Building takes a minute or two on two cores, so every packaging test shares
one build. ``SAGE_FROZEN_DIST=<dist/sage-desktop>`` reuses a build made
earlier (with ``pyinstaller build.spec``) instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from packaging_helpers import EXE_NAME, FrozenApp, build_frozen_app


@pytest.fixture(scope="session")
def frozen_app(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> FrozenApp:
    """The one build of this session (or the one named by the env var)."""
    given = os.environ.get("SAGE_FROZEN_DIST")
    seconds = None
    if given:
        dist = Path(given)
    else:
        try:
            import PyInstaller  # noqa: F401
        except ImportError:
            pytest.skip("PyInstaller is not installed (pip install -e .[test])")
        start = time.monotonic()
        dist = build_frozen_app(tmp_path_factory.mktemp("frozen"))
        seconds = time.monotonic() - start
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"packaging: build.spec built in {seconds:.0f} s")
    exe = dist / EXE_NAME
    assert exe.is_file(), f"no program at {exe}"
    return FrozenApp(dist=dist, exe=exe, build_seconds=seconds)


@pytest.fixture
def app(frozen_app: FrozenApp, tmp_path: Path) -> FrozenApp:
    """The frozen program with private HOME and XDG folders for one test.

    Nothing of the test process's Python set-up leaks in (no PYTHONPATH, no
    SAGE_DESKTOP_* settings): the program has to stand on its own.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAGE_DESKTOP_", "XDG_", "SANDBOX_", "PYTHON"))
    }
    env["HOME"] = str(tmp_path / "home")
    for name in ("config", "data", "state", "cache"):
        env[f"XDG_{name.upper()}_HOME"] = str(tmp_path / name)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    (tmp_path / "home").mkdir()
    env["QT_QPA_PLATFORM"] = "offscreen"
    return FrozenApp(frozen_app.dist, frozen_app.exe, frozen_app.build_seconds, env)
