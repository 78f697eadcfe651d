"""The ``sage-desktop`` entry point: what it loads before the window opens."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import sage_desktop.ui.app as app
import sage_desktop.cli as cli

def fake_run_app(sandbox):
    loaded = [m for m in ("sage_desktop.cli.scripting", "sage_desktop.cli.signin",
                          "sage_desktop.errors", "requests", "keyring")
              if m in sys.modules]
    print("sandbox" if sandbox else "plain", ",".join(loaded) or "-")
    return 0

app.run_app = fake_run_app
raise SystemExit(cli.main(sys.argv[1:]))
"""


def run_probe(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_opening_the_window_loads_no_subcommand_or_network_module() -> None:
    assert run_probe("--sandbox") == "sandbox -"
    assert run_probe() == "plain -"


def test_subcommands_are_still_listed_in_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sage_desktop", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    for command in ("login", "token", "api", "doctor", "sandbox"):
        assert f"    {command} " in done.stdout
