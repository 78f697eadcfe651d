"""How long ``sage-desktop token`` takes, start to exit, with a fresh token.

Scripts run it before each call to Sage, so its start is what they feel.
The bench starts the sandbox, signs the sole trader in once (``login``
with the sandbox's autobrowser), then runs ``token`` N times as a fresh
process each time and prints the median and the fastest run. The access
token stays fresh throughout, so no run refreshes: what is measured is
start-up, the keychain read and exit.

The tokens go to the keychain the environment offers (run it under the
test command's ``dbus-run-session`` and gnome-keyring, or on a desktop);
configuration and state go to a temporary folder.

    .venv/bin/python bench/token_command.py [--runs 15] [--quick]
        [--program dist/sage-desktop/sage-desktop]

``--program`` times a built program instead of ``python -m sage_desktop``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sage_desktop.sandbox import Sandbox

EMAIL = "sole.trader@sandbox.example"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--program", type=Path, help="a built sage-desktop")
    parser.add_argument("--quick", action="store_true", help="3 runs")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    command = (
        [str(args.program)] if args.program else [sys.executable, "-m", "sage_desktop"]
    )

    with (
        tempfile.TemporaryDirectory(prefix="sage-token-bench-") as tmp,
        Sandbox() as sb,
    ):
        env = {
            **os.environ,
            **sb.env(),
            "BROWSER": f"{sys.executable} -m sage_desktop.sandbox.autobrowser %s",
            "SANDBOX_LOGIN_EMAIL": EMAIL,
        }
        for name in ("CONFIG", "DATA", "STATE", "CACHE"):
            env[f"XDG_{name}_HOME"] = str(Path(tmp) / name.lower())
        login = subprocess.run(
            [*command, "login", "--timeout", "60"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if login.returncode != 0:
            print(login.stderr, file=sys.stderr)
            return 1
        refreshes_before = sb.counters()["token_requests"]
        seconds = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(
                [*command, "token"], env=env, capture_output=True, check=True
            )
            seconds.append(time.perf_counter() - started)
        refreshes = sb.counters()["token_requests"] - refreshes_before

    print(f"'{' '.join(Path(c).name for c in command)} token', {args.runs} runs")
    print(
        f"  median {statistics.median(seconds) * 1000:.0f} ms, "
        f"fastest {min(seconds) * 1000:.0f} ms "
        f"({refreshes} refreshes during the runs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
