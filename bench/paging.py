"""Listing 2,500 businesses: parallel pages against following ``$next``.

The sandbox's accountant reaches 2,500 businesses; with 50 ms added to
every API call, SageClient (``$total`` known after page 1, then at most 4
pages at once) is timed against following ``$next`` one page at a time,
both at 200 items per page with ``attributes=all``. Goal: at least 3 times
faster.

    .venv/bin/python bench/paging.py [--quick] [--latency S]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sage_desktop.config import load_settings
from sage_desktop.sandbox import Sandbox, SandboxConfig
from sage_desktop.session import GrantLocks, RefreshWorker, SageClient
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

EMAIL = "accountant@sandbox.example"


def follow_next(client: SageClient) -> list[dict[str, Any]]:
    """The naive way: one page after another along ``$next``."""
    page = client.request(
        "GET", "businesses", params={"items_per_page": 200, "attributes": "all"}
    )
    items = list(page["$items"])
    while page.get("$next"):
        page = client.request("GET", page["$next"])
        items.extend(page["$items"])
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    rounds = 1 if args.quick else 5

    config = SandboxConfig(token_size=512, api_latency=args.latency)
    with TemporaryDirectory() as tmp, Sandbox(config) as sb:
        workdir = Path(tmp)
        settings = load_settings(env=sb.env(), path=workdir / "none.json")
        vault = TokenVault(MemoryKeyring(), lock_dir=workdir / "vault")
        grant = uuid.uuid4().hex
        answer = sb.issue_tokens(EMAIL)
        now = time.time()
        vault.save(
            grant,
            TokenSet(
                access_token=answer["access_token"],
                access_expires_at=now + answer["expires_in"],
                refresh_token=answer["refresh_token"],
                refresh_expires_at=now + answer["refresh_token_expires_in"],
                obtained_at=now,
            ),
        )
        worker = RefreshWorker(settings, vault, None, locks=GrantLocks(workdir / "l"))
        client = SageClient.for_connection(worker, grant, sb.api_url)
        timings: dict[str, list[float]] = {"parallel": [], "sequential": []}
        counts: dict[str, int] = {}
        for _ in range(rounds):
            started = time.perf_counter()
            items = client.list_all("businesses", {"attributes": "all"})
            timings["parallel"].append(time.perf_counter() - started)
            counts["parallel"] = len(items)
            started = time.perf_counter()
            items = follow_next(client)
            timings["sequential"].append(time.perf_counter() - started)
            counts["sequential"] = len(items)
        client.close()
        worker.stop()

    parallel = statistics.median(timings["parallel"])
    sequential = statistics.median(timings["sequential"])
    print(f"API latency {args.latency * 1000:.0f} ms, {counts['parallel']} businesses")
    print(f"following $next one page at a time: {sequential * 1000:.0f} ms")
    print(f"SageClient, 4 pages at once:        {parallel * 1000:.0f} ms")
    print(f"speed-up: {sequential / parallel:.2f}x (goal >= 3x)")
    assert counts["parallel"] == counts["sequential"]


if __name__ == "__main__":
    main()
