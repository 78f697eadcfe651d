"""Business picker at practice scale: keystroke to updated view, and memory.

Starts the whole app (main window, services, the sign-in, session, vault
and sandbox layers imported) and opens the picker over it with 10,000
businesses, added in pages of 200 as the app does. Then types searches one
key at a time and times each keystroke from the key event to the table's
repainted viewport. Prints p50/p99 in milliseconds and the process's
resident memory with everything loaded.

    .venv/bin/python bench/picker_bench.py [--rows 10000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def searches(round_number: int) -> list[str]:
    """What a user types in one round; each round types different text, so
    no round benefits from the picker remembering an earlier search."""
    n = round_number
    return [
        f"florist {n % 10}",
        f"dental 0{n % 10}",
        f"garage 0{n % 10}9",
        f"{n % 16:x}a1b2c3d4",
        f"ltd{' ' * (n % 2)}",
        f"00{n % 10}2",
        f"consulting {n % 10}{(n + 3) % 10}",
    ]


def rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_businesses(count: int) -> list[object]:
    from sage_desktop.models import Business

    kinds = ("Bakery", "Garage", "Consulting", "Florist", "Dental", "Builders")
    return [
        Business(
            id=f"{n:08x}a1b2c3d4e5f6a7b8c9d0e1f2",
            name=f"{kinds[n % len(kinds)]} {n:05d} Ltd",
            region=("GB", "IE", "CA")[n % 3],
            active=n % 97 != 96,
            is_lead=n == 0,
        )
        for n in range(count)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--picker-only", action="store_true", help="the picker alone, no main window"
    )
    args = parser.parse_args()

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import sage_desktop.ui  # noqa: F401
    from sage_desktop.ui.picker import BusinessPicker

    app = QApplication(sys.argv[:1])
    base = rss_mb()
    window, services = (None, None) if args.picker_only else whole_app()
    businesses = make_businesses(args.rows)
    picker = BusinessPicker(window, connection_label="bench")  # type: ignore[arg-type]
    picker.show()
    app.processEvents()

    start = time.perf_counter()
    picker.begin_loading(len(businesses))
    for offset in range(0, len(businesses), 200):
        batch = businesses[offset : offset + 200]
        picker.add_batch(batch, offset + len(batch), len(businesses))
        app.processEvents()
    picker.finish_loading()
    load_ms = (time.perf_counter() - start) * 1000
    app.processEvents()

    viewport = picker.table.viewport()
    timings: list[float] = []
    gc.collect()
    for round_number in range(args.rounds):
        for search in searches(round_number):
            keys: list[object] = list(search) + [Qt.Key.Key_Backspace] * len(search)
            for key in keys:
                began = time.perf_counter()
                QTest.keyClick(picker.search, key)  # type: ignore[call-overload]
                viewport.repaint()
                timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    rss = rss_mb()

    print(f"businesses loaded:        {args.rows:,} in {load_ms:.0f} ms (200/batch)")
    print(f"keystrokes measured:      {len(timings)}")
    print(f"keystroke->view p50:      {p50:.2f} ms")
    print(f"keystroke->view p99:      {p99:.2f} ms   (goal < 16)")
    print(f"keystroke->view max:      {timings[-1]:.2f} ms")
    what = "picker alone" if args.picker_only else "whole app + picker"
    print(f"RSS, {what}: {rss:.0f} MB  (goal < 200;")
    print(f"                          a bare QApplication: {base:.0f} MB)")
    picker.close()
    if window is not None:
        window.close()  # type: ignore[attr-defined]
        services.shutdown()  # type: ignore[attr-defined]
    return 0


def whole_app() -> tuple[object, object]:
    """The main window over real services, every layer imported."""
    import tempfile
    from pathlib import Path

    import sage_desktop.auth.flow
    import sage_desktop.sandbox
    import sage_desktop.session  # noqa: F401
    from sage_desktop.connections import ConnectionRegistry
    from sage_desktop.context import AppContext
    from sage_desktop.ui.main_window import MainWindow
    from sage_desktop.ui.services import Services
    from sage_desktop.vault import TokenVault
    from sage_desktop.vault.memory import MemoryKeyring

    folder = Path(tempfile.mkdtemp(prefix="sage-desktop-bench-"))
    vault = TokenVault(backend=MemoryKeyring())
    context = AppContext(
        env={"SAGE_DESKTOP_CLIENT_ID": "bench"},
        settings_path=folder / "settings.json",
        vault=vault,
        registry=ConnectionRegistry(path=folder / "connections.json", vault=vault),
    )
    services = Services(context)
    window = MainWindow(services)
    window.show()
    window.start()
    return window, services


if __name__ == "__main__":
    raise SystemExit(main())
