"""Soak: a 2-second access token, 32 threads and 4 processes for a minute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from session_helpers import HERE, Shared, add_connection, hammer, settings_for

from sage_desktop.session import RefreshWorker, SageClient

SECONDS = float(os.environ.get("SAGE_DESKTOP_SOAK_SECONDS", "60"))
LIFETIME = 2.0


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 120)
def test_a_minute_of_short_lived_tokens_never_reaches_a_caller_as_an_error(
    shared_files: Shared,
) -> None:
    shared = shared_files
    sandbox = shared.sandbox
    sandbox.config.access_ttl = LIFETIME
    connection = add_connection(sandbox, shared.vault, shared.registry)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "session_soak_child.py"),
                connection,
                str(SECONDS),
                "2",
            ],
            env=shared.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    worker = RefreshWorker(
        settings_for(sandbox), shared.vault, shared.registry, locks=shared.locks()
    )
    client = SageClient.for_connection(worker, connection, sandbox.api_url)
    try:
        outcomes = hammer(client, SECONDS, 32)
    finally:
        client.close()
        worker.stop()
    reports = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        reports.append(Counter(json.loads(out)))

    counters = sandbox.counters()
    total = sum(reports, outcomes)
    assert set(total) == {"ok"}, total
    assert all(report["ok"] > 0 for report in reports)
    assert counters["refreshes_rejected"] == 0
    assert counters["refreshes_accepted"] <= SECONDS / (0.75 * LIFETIME) + 2
    assert counters["max_refreshes_in_flight"] == 1
