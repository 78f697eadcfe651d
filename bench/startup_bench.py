"""Start to first window shown (offscreen): sage-desktop vs bare PySide6.

Each run is a fresh process. The parent notes the time, starts the child,
and the child prints the time once its window is shown and the first
events are processed. The baseline child shows one empty QMainWindow. The
app child also reports whether requests, keyring or the sandbox were
imported by then (they should load only after the window shows).

    .venv/bin/python bench/startup_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

# Both children note the time of the main window's first paint: the moment
# the user sees it. The watcher sits on that one window only (an app-wide
# filter would tax every event of the app's many widgets, not the bare one).
WATCH = """
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
painted = []
class Watch(QObject):
    def eventFilter(self, obj, event):
        if not painted and event.type() == QEvent.Type.Paint:
            painted.append(time.time())
        return False
watch = Watch()
def wait_for_paint(window):
    while not painted:
        app.processEvents()
"""

BARE = (
    WATCH
    + """
window = QMainWindow()
window.resize(900, 600)
window.installEventFilter(watch)
window.show()
wait_for_paint(window)
print(json.dumps({"shown": painted[0]}))
"""
)

# launch() shows the window; its first paint needs the event loop, which
# only runs in wait_for_paint, so the watcher is in place in time.
APP = (
    WATCH
    + """
from sage_desktop.ui.app import launch
session = launch(instance=sys.argv[1])
session.window.installEventFilter(watch)
wait_for_paint(session.window)
loaded = {m: m in sys.modules for m in
          ("requests", "keyring", "sage_desktop.sandbox", "sage_desktop.session",
           "PySide6.QtNetwork")}
print(json.dumps({"shown": painted[0], "loaded": loaded}))
session.window.close()
session.close()
"""
)


def run_child(code: str, env: dict[str, str]) -> tuple[float, dict[str, bool]]:
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code, uuid.uuid4().hex],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
    data = json.loads(line)
    return (data["shown"] - started) * 1000, data.get("loaded", {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="sage-desktop-bench-")
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = os.path.join(home, var.lower())
    # A registration, so the first-run dialog does not open.
    env["SAGE_DESKTOP_CLIENT_ID"] = "bench-client"

    # An installed app has its bytecode compiled; this environment may set
    # PYTHONDONTWRITEBYTECODE, so compile once rather than on every start.
    package = os.path.join(os.path.dirname(__file__), "..", "sage_desktop")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)

    bare: list[float] = []
    app: list[float] = []
    loaded: dict[str, bool] = {}
    run_child(BARE, env)  # warm the file cache for both
    run_child(APP, env)
    for _ in range(args.runs):
        bare.append(run_child(BARE, env)[0])
        took, loaded = run_child(APP, env)
        app.append(took)

    bare_ms = statistics.median(bare)
    app_ms = statistics.median(app)
    print(f"runs:                       {args.runs} each (median)")
    print(f"bare PySide6 QMainWindow:   {bare_ms:.0f} ms")
    print(f"sage-desktop main window:   {app_ms:.0f} ms")
    print(f"ratio:                      {app_ms / bare_ms:.2f}   (goal <= 1.5)")
    print(f"loaded before shown:        {loaded}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
