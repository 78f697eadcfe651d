"""Helpers for the sign-in integration tests: demo ports and a test browser."""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from file_keyring import stored_records

from sage_desktop.auth.flow import SignInFlow
from sage_desktop.sandbox import DEMO
from sage_desktop.sandbox.autobrowser import play


def port_is_free(port: int) -> bool:
    """Whether a receiver could listen on ``port`` now (TIME_WAIT is fine)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                probe.listen()
            except OSError as exc:
                if family == socket.AF_INET6 and exc.errno != errno.EADDRINUSE:
                    continue  # no IPv6 here
                return False
    return True


def free_demo_uris() -> list[str]:
    """The demo callback URLs whose ports no other test process holds now."""
    return [u for u in DEMO.redirect_uris if port_is_free(urlsplit(u).port or 0)]


class Browser:
    """An injected opener that plays the sandbox's pages on a thread."""

    def __init__(self, **options: str) -> None:
        self.options = options
        self.delivered: list[str] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()

    def __call__(self, url: str) -> bool:
        try:
            self.delivered.append(play(url, **self.options))  # type: ignore[arg-type]
        except Exception as exc:
            self.errors.append(exc)
        finally:
            self.done.set()
        return True


MakeFlow = Callable[..., SignInFlow]


def stored_values(directory: Path) -> list[str]:
    """Every secret the test-only ``file_keyring`` holds in ``directory``."""
    return [record["password"] for record in stored_records(directory)]
