"""One fail-closed case, run inside its own private D-Bus session.

Usage: python fail_scenario.py CASE  (CASE: locked, dismissed, hung, none)
Prints a JSON line: the error class each vault call raised and how long
each took. Run by test_vault_fail_closed.py through dbus-run-session.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from sage_desktop.errors import SageDesktopError
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault

TIMEOUT = 2.0


def lock_default_collection() -> None:
    from contextlib import closing

    import secretstorage

    with closing(secretstorage.dbus_init()) as bus:
        collection = secretstorage.get_default_collection(bus)
        collection.create_item("x", {"service": "other"}, b"y")
        collection.lock()
        assert collection.is_locked()


def claim_secret_service_and_never_answer() -> None:
    """Own org.freedesktop.secrets, read every call, answer none."""
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    ready = threading.Event()

    def serve() -> None:
        conn = open_dbus_connection(bus="SESSION")
        conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.secrets"))
        ready.set()
        while True:
            conn.receive()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)


def main() -> None:
    case = sys.argv[1]
    if case == "locked":
        lock_default_collection()
    elif case == "hung":
        claim_secret_service_and_never_answer()
    vault = TokenVault(timeout=TIMEOUT)  # the backend keyring picks itself
    tokens = TokenSet("a" * 2048, 1.0, "r" * 2048, 2.0)
    results = {}
    for name, call in (
        ("load", lambda: vault.load("grant1")),
        ("save", lambda: vault.save("grant1", tokens)),
        ("client", lambda: vault.load_client_secret("client")),
    ):
        started = time.monotonic()
        try:
            call()
            outcome = "ok"
        except SageDesktopError as exc:
            outcome = type(exc).__name__
        results[name] = [outcome, time.monotonic() - started]
    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
