"""One soak process: call the API in a loop, report what reached the caller.

Usage: python session_soak_child.py CONNECTION_ID SECONDS THREADS
Prints one JSON line: calls, errors by kind, 401s that reached a caller.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

from sage_desktop.context import AppContext
from sage_desktop.errors import ApiError, SageDesktopError
from sage_desktop.session import SageClient


def soak(connection_id: str, seconds: float, threads: int) -> dict[str, object]:
    context = AppContext()
    worker = context.worker
    client = SageClient.for_connection(worker, connection_id, context.settings.api_url)
    calls = Counter[str]()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < stop_at:
            try:
                client.request("GET", "user")
                outcome = "ok"
            except ApiError as exc:
                outcome = f"api_{exc.status}"
            except SageDesktopError as exc:
                outcome = type(exc).__name__
            with lock:
                calls[outcome] += 1
            time.sleep(0.01)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    client.close()
    worker.stop()
    return dict(calls)


if __name__ == "__main__":
    result = soak(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps(result))
