"""Fail closed: each keychain failure has its own clear error, in time,
and nothing is written to disk instead.

Each case runs in a private D-Bus session of its own (dbus-run-session),
with gnome-keyring locked, unable to prompt, hung, or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SCENARIO = HERE / "fail_scenario.py"
TIMEOUT = 2.0  # as in fail_scenario.py

pytestmark = pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring-daemon",
)

DAEMON = {
    "locked": (
        'eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"'
    ),
    "dismissed": 'eval "$(gnome-keyring-daemon --components=secrets </dev/null)"',
    "hung": "true",
    "none": "true",
}


def run_case(case: str, tmp_path: Path) -> tuple[dict[str, list[object]], Path]:
    home = tmp_path / "home"
    xdg = tmp_path / "xdg"
    home.mkdir()
    (xdg / "runtime").mkdir(mode=0o700, parents=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DBUS_", "XDG_", "GNOME_KEYRING", "SSH_AUTH"))
    }
    env["HOME"] = str(home)
    app_env = " ".join(
        f"{var}={xdg / sub}"
        for var, sub in (
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_STATE_HOME", "state"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_RUNTIME_DIR", "runtime"),
        )
    )
    script = f"{DAEMON[case]}; {app_env} {sys.executable} {SCENARIO} {case}"
    # No keychain at all: no D-Bus session either (on a D-Bus session the
    # bus would start gnome-keyring on demand).
    command = ["bash", "-c", script]
    if case != "none":
        command = ["dbus-run-session", "--", *command]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1:]
    assert last, done.stderr
    return json.loads(last[0]), xdg


def files_written(root: Path) -> list[Path]:
    """Every file under ``root`` except empty writers' lock files."""
    if not root.exists():
        return []
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not (p.suffix == ".lock" and p.stat().st_size == 0)
    ]


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("locked", "KeychainLocked"),
        ("dismissed", "KeychainPromptDismissed"),
        ("hung", "KeychainTimeout"),
        ("none", "NoKeychainBackend"),
    ],
)
def test_each_keychain_failure_is_its_own_error_in_time_and_writes_nothing(
    case: str, error: str, tmp_path: Path
) -> None:
    results, xdg = run_case(case, tmp_path)

    for call, (outcome, seconds) in results.items():
        assert outcome == error, (call, results)
        assert isinstance(seconds, float)
        assert seconds < TIMEOUT + 1.5, (call, results)
    assert files_written(xdg) == []
    assert files_written(tmp_path / "home") == [] or case in ("locked", "dismissed")
