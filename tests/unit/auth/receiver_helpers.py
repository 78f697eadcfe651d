"""Helpers for the receiver tests: free loopback ports and a waiting thread."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import Future

from sage_desktop.auth import CallbackResult, LoopbackReceiver


def free_port() -> int:
    """A port free on 127.0.0.1 (and ::1 when there is IPv6) right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET6) as probe6:
                probe6.bind(("::1", port))
        except OSError:
            if socket.has_ipv6:
                continue
        return port
    raise RuntimeError("no free port")


def wait_in_thread(
    receiver: LoopbackReceiver, timeout: float = 20.0
) -> Future[CallbackResult]:
    """Run ``receiver.wait`` on a thread; the future holds its outcome."""
    future: Future[CallbackResult] = Future()

    def run() -> None:
        try:
            future.set_result(receiver.wait(timeout))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future
