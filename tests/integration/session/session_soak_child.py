"""One soak process: call the API in a loop, report what reached the caller.

Usage: python session_soak_child.py CONNECTION_ID SECONDS THREADS
Prints one JSON line: calls, errors by kind, 401s that reached a caller.
"""

from __future__ import annotations

import json
import sys

from session_helpers import hammer

from sage_desktop.context import AppContext
from sage_desktop.session import SageClient


def soak(connection_id: str, seconds: float, threads: int) -> dict[str, object]:
    context = AppContext()
    worker = context.worker
    client = SageClient.for_connection(worker, connection_id, context.settings.api_url)
    try:
        return dict(hammer(client, seconds, threads))
    finally:
        client.close()
        worker.stop()


if __name__ == "__main__":
    result = soak(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps(result))
