"""Size and start-up of the built program against a hello-world PySide6 app.

    .venv/bin/python bench/packaging_bench.py [--runs 15] [--reuse DIR]
        [--keep DIR] [--default-baseline]

Builds ``build.spec`` twice in the same run, on the same machine: the app
(``dist/sage-desktop``) and, with ``SAGE_DESKTOP_BUILD_BASELINE``, a
hello-world window made with exactly the same Python, PyInstaller options
and Qt selection (``dist/hello-baseline``). Goals (issue 8): the app at
most 1.2 times the hello-world's size, and at most 1.3 times its time from
start to first window (offscreen).

"First window" is the window's first painted frame: both programs print
one line to stderr then (the app when SAGE_DESKTOP_QUIT_AFTER_SHOW=1, as
the smoke test uses it) and quit. An earlier version timed Qt's own
``qt.widgets.showhide`` debug line, which needed the app at ``-vv``: that
logged every widget's visibility through Python and charged the app for
it. ``--default-baseline`` also builds
the hello-world with PyInstaller's defaults (every Qt plugin and
translation), for context.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Both programs print this once their window has painted its first frame
#: (the app with SAGE_DESKTOP_QUIT_AFTER_SHOW=1), then quit.
MARKER = "sage-desktop: first window shown"
SIZE_GOAL = 1.2
START_GOAL = 1.3

HELLO = """\
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel


class Hello(QLabel):
    shown = False

    def paintEvent(self, event):
        super().paintEvent(event)
        if not self.shown:
            self.shown = True
            print("sage-desktop: first window shown", file=sys.stderr, flush=True)
            QTimer.singleShot(0, app.quit)


app = QApplication(sys.argv)
window = Hello("Hello, world")
window.resize(400, 200)
window.show()
sys.exit(app.exec())
"""


def build(out: Path, baseline: Path | None = None) -> tuple[Path, float]:
    """``pyinstaller build.spec`` (or the baseline); the dist folder, seconds."""
    env = dict(os.environ)
    env.pop("SAGE_DESKTOP_BUILD_BASELINE", None)
    if baseline is not None:
        env["SAGE_DESKTOP_BUILD_BASELINE"] = str(baseline)
    start = time.monotonic()
    subprocess.run(
        [
            *(sys.executable, "-m", "PyInstaller", str(REPO / "build.spec")),
            *("--noconfirm", "--log-level=WARN"),
            *("--distpath", str(out / "dist"), "--workpath", str(out / "build")),
        ],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    name = "hello-baseline" if baseline is not None else "sage-desktop"
    return out / "dist" / name, time.monotonic() - start


def build_default_hello(out: Path, script: Path) -> Path:
    """The hello-world with PyInstaller's own defaults (no spec)."""
    subprocess.run(
        [
            *(sys.executable, "-m", "PyInstaller", str(script), "--onedir"),
            *("--noconfirm", "--log-level=WARN", "--name", "hello-default"),
            *("--distpath", str(out / "dist"), "--workpath", str(out / "build")),
            *("--specpath", str(out)),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out / "dist" / "hello-default"


def folder_size(folder: Path) -> int:
    """Bytes of every regular file (links counted once, as the target)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def time_to_first_window(exe: Path, args: list[str], scratch: Path) -> float:
    """Seconds from starting ``exe`` to its first painted window."""
    home = Path(tempfile.mkdtemp(dir=scratch))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAGE_DESKTOP_", "PYTHON", "XDG_"))
    }
    env.update(
        QT_QPA_PLATFORM="offscreen",
        SAGE_DESKTOP_QUIT_AFTER_SHOW="1",
        HOME=str(home),
        TMPDIR=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if MARKER in line:
                return time.perf_counter() - start
        raise RuntimeError(f"{exe.name} ended without showing a window")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stderr.close()


def median_starts(
    programs: list[tuple[Path, list[str]]], runs: int, scratch: Path
) -> list[float]:
    """Median start of each program, runs interleaved so that the load of
    the machine (other builds, tests) weighs on all of them alike."""
    for exe, args in programs:
        time_to_first_window(exe, args, scratch)  # warm the file cache
    times: list[list[float]] = [[] for _ in programs]
    for _ in range(runs):
        for seen, (exe, args) in zip(times, programs, strict=True):
            seen.append(time_to_first_window(exe, args, scratch))
    return [statistics.median(seen) for seen in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--reuse", type=Path, help="a folder of an earlier --keep run: no build"
    )
    parser.add_argument("--keep", type=Path, help="build into this folder")
    parser.add_argument("--default-baseline", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sage-packaging-bench-") as tmp:
        scratch = Path(tmp)
        root = args.reuse or args.keep or scratch
        hello_script = root / "hello.py"
        app_seconds = hello_seconds = None
        if args.reuse:
            app_dist = root / "app" / "dist" / "sage-desktop"
            hello_dist = root / "hello" / "dist" / "hello-baseline"
        else:
            root.mkdir(parents=True, exist_ok=True)
            hello_script.write_text(HELLO)
            app_dist, app_seconds = build(root / "app")
            hello_dist, hello_seconds = build(root / "hello", hello_script)

        app_exe = app_dist / "sage-desktop"
        hello_exe = hello_dist / "hello-baseline"
        app_size = folder_size(app_dist)
        hello_size = folder_size(hello_dist)
        app_start, hello_start = median_starts(
            [(app_exe, []), (hello_exe, [])], args.runs, scratch
        )
        cli_start = statistics.median(
            _timed([str(app_exe), "--version"]) for _ in range(args.runs)
        )

        mib = 1024 * 1024
        print(f"packaging bench ({os.cpu_count()} cores, {args.runs} runs)")
        if app_seconds is not None and hello_seconds is not None:
            print(f"  build time: app {app_seconds:.0f} s, hello {hello_seconds:.0f} s")
        size_ratio = app_size / hello_size
        start_ratio = app_start / hello_start
        print(
            f"  size: app {app_size / mib:.1f} MiB, hello {hello_size / mib:.1f}"
            f" MiB -> {size_ratio:.2f}x (goal <= {SIZE_GOAL}x)"
        )
        print(
            f"  start to first window (offscreen, median): app "
            f"{app_start * 1000:.0f} ms, hello {hello_start * 1000:.0f} ms -> "
            f"{start_ratio:.2f}x (goal <= {START_GOAL}x)"
        )
        print(f"  'sage-desktop --version' (median): {cli_start * 1000:.0f} ms")
        if args.default_baseline:
            default = build_default_hello(root / "default", hello_script)
            size = folder_size(default)
            print(
                f"  hello with PyInstaller defaults: {size / mib:.1f} MiB "
                f"(the app is {app_size / size:.2f}x of it)"
            )
        met = size_ratio <= SIZE_GOAL and start_ratio <= START_GOAL
        print("  goals met" if met else "  goals NOT met")
    return 0


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
