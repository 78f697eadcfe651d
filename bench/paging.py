"""Listing 2,500 businesses: parallel pages against following ``$next``.

The sandbox's accountant reaches 2,500 businesses. With 50 ms added to
every API call, SageClient (pages 1 to 4 asked for at once, the rest as
soon as page 1 tells ``$total``, never more than 4 at a time) is timed
against following ``$next`` one page at a time, both at 200 items per page
with the attributes the picker needs. Goal: at least 3 times faster.
13 pages, 4 at a time, take 4 round trips: 3.25x is the ceiling.

Two servers, each in its own process (Sage's servers are not on the
accountant's machine):

* the sandbox itself. It is one Python process, so the CPU it spends
  building each page (printed) adds up even when pages are asked for in
  parallel, and on a loaded machine it, not the client, sets the pace;
* a replay of the very same pages, recorded from the sandbox, answered
  after the same 50 ms with no work per page: what the client's paging
  strategy achieves against a server that scales, as Sage's does.

    .venv/bin/python bench/paging.py [--quick] [--latency S]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from sage_desktop.sandbox import Sandbox, SandboxConfig
from sage_desktop.session import SageClient
from sage_desktop.session.client import BUSINESS_ATTRIBUTES

EMAIL = "accountant@sandbox.example"
PARAMS = {"items_per_page": 200, "attributes": BUSINESS_ATTRIBUTES}


def follow_next(client: SageClient) -> list[dict[str, Any]]:
    """The naive way: one page after another along ``$next``."""
    page = client.request("GET", "businesses", params=PARAMS)
    items = list(page["$items"])
    while page.get("$next"):
        page = client.request("GET", page["$next"])
        items.extend(page["$items"])
    return items


def serve_sandbox(latency: float, out: Any, stop: Any) -> None:
    """Child process: the sandbox, until told to stop."""
    config = SandboxConfig(token_size=512, api_latency=latency)
    with Sandbox(config) as sb:
        answer = sb.issue_tokens(EMAIL)
        out.put((sb.api_url, answer["access_token"]))
        stop.wait()


def serve_replay(pages: dict[int, bytes], latency: float, out: Any, stop: Any) -> None:
    """Child process: recorded pages after ``latency``, nothing else."""

    class Replay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Like the sandbox: no Nagle stall between headers and body.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            body = pages[int(query.get("page", ["1"])[0])]
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    out.put(f"http://{host}:{port}/v3.1")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()


def in_child(target: Callable[..., None], *args: Any) -> tuple[Any, Any, Any]:
    context = multiprocessing.get_context("spawn")
    out, stop = context.Queue(), context.Event()
    process = context.Process(target=target, args=(*args, out, stop), daemon=True)
    process.start()
    return process, out.get(timeout=60), stop


def measure(client: SageClient, rounds: int) -> dict[str, float]:
    """Median seconds of each strategy; both must list the same items."""
    timings: dict[str, list[float]] = {"parallel": [], "sequential": []}
    for _ in range(rounds):
        started = time.perf_counter()
        parallel = client.list_all("businesses", {"attributes": BUSINESS_ATTRIBUTES})
        timings["parallel"].append(time.perf_counter() - started)
        started = time.perf_counter()
        sequential = follow_next(client)
        timings["sequential"].append(time.perf_counter() - started)
        assert [i["id"] for i in parallel] == [i["id"] for i in sequential]
    return {name: statistics.median(values) for name, values in timings.items()}


def report(title: str, result: dict[str, float], parallel_pages: int) -> None:
    sequential, parallel = result["sequential"], result["parallel"]
    print(title)
    print(f"  following $next one page at a time: {sequential * 1000:6.0f} ms")
    label = f"SageClient, {parallel_pages} pages at once:"
    print(f"  {label:<36}{parallel * 1000:6.0f} ms")
    ceiling = 13 / math.ceil(13 / parallel_pages)
    print(
        f"  speed-up: {sequential / parallel:.2f}x (goal >= 3x, ceiling {ceiling:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument(
        "--parallel", type=int, default=4, help="pages at once (SageClient: 4)"
    )
    args = parser.parse_args()
    rounds = 1 if args.quick else 9

    process, (api_url, token), stop = in_child(serve_sandbox, args.latency)
    try:
        with SageClient(
            api_url, lambda: token, max_parallel_pages=args.parallel
        ) as client:
            recorded: dict[int, bytes] = {}
            costs = []
            plain = requests.Session()
            # The second pass is timed: the first warms connections and caches.
            for number in [*range(1, 14), *range(1, 14)]:
                started = time.perf_counter()
                answer = plain.get(
                    f"{api_url}/businesses",
                    params={**PARAMS, "page": number},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                costs.append(time.perf_counter() - started - args.latency)
                recorded[number] = answer.content  # Sage's bytes, as sent
            plain.close()
            total = answer.json()["$total"]
            on_sandbox = measure(client, rounds)
    finally:
        stop.set()
        process.join(10)

    process, replay_url, stop = in_child(serve_replay, recorded, args.latency)
    try:
        with SageClient(
            replay_url, lambda: token, max_parallel_pages=args.parallel
        ) as client:
            on_replay = measure(client, rounds)
    finally:
        stop.set()
        process.join(10)

    print(f"{total} businesses, 200 per page, {args.latency * 1000:.0f} ms latency")
    report("against the sandbox:", on_sandbox, args.parallel)
    cost = max(0.0, statistics.median(costs[13:])) * 1000
    print(
        f"  (one page alone takes {cost:.1f} ms beyond the latency: the sandbox's"
        " work, which its one process does in series, and a plain client's)"
    )
    report(
        "against a replay of the same pages (no server work):",
        on_replay,
        args.parallel,
    )


if __name__ == "__main__":
    main()
