"""The ``sage-desktop`` entry point: what it loads before the window opens."""

from __future__ import annotations

import argparse
import subprocess
import sys

from sage_desktop.cli import COMMAND_MODULES, COMMANDS, build_parser, modules_for

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


COMMAND_PROBE = """
import contextlib, io, sys
import sage_desktop.cli as cli

with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    cli.main(sys.argv[1:])
print(",".join(sorted(m for m in sys.modules if m.startswith(
    ("sage_desktop.cli.", "sage_desktop.sandbox", "sage_desktop.auth.flow")))))
"""


def loaded_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", COMMAND_PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(filter(None, done.stdout.strip().split(",")))


def test_a_command_loads_only_the_module_it_lives_in() -> None:
    assert loaded_by("token", "--help") == {"sage_desktop.cli.scripting"}
    assert loaded_by("-v", "api", "--help") == {"sage_desktop.cli.scripting"}
    assert loaded_by("--version") == set()
    assert "sage_desktop.cli.sandbox" in loaded_by("--help")


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:  # argparse keeps subparsers here
        if isinstance(action.choices, dict):
            return set(action.choices)
    return set()


def test_every_command_is_found_in_the_module_named_for_it() -> None:
    everything = subcommands(build_parser())

    assert everything == set(COMMANDS)
    for command in everything:
        alone = build_parser(modules_for([command, "--help"]))
        assert subcommands(alone) == {
            name for name, module in COMMANDS.items() if module == COMMANDS[command]
        }


def test_an_unknown_command_is_told_every_command() -> None:
    assert modules_for(["tokn"]) == COMMAND_MODULES
