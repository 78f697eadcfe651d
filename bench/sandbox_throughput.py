"""Sandbox throughput: how fast the local Sage answers, so tests and demos
know what load it carries.

Starts an in-process sandbox and measures, with N client threads each on
its own keep-alive session:

* API: ``GET /v3.1/businesses?items_per_page=200&attributes=all`` pages;
* token endpoint: refreshes, each client rotating its own grant;
* a full sign-in: authorize pages, consent, code exchange.

Prints requests per second and p50/p95 latency in milliseconds.

    .venv/bin/python bench/sandbox_throughput.py [--clients 20] [--seconds 3]
    .venv/bin/python bench/sandbox_throughput.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode

import requests

from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig

FORM = {"Accept": "application/json"}


def measure(
    name: str, clients: int, seconds: float, work: Callable[[requests.Session], None]
) -> None:
    """Run ``work`` in a loop on ``clients`` threads for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        with requests.Session() as session:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    work(session)
                except Exception as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    if not latencies:
        print(f"{name:28} no successful calls; errors: {errors[:3]}")
        return
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(
        f"{name:28} {len(ordered) / elapsed:8.0f}/s  "
        f"p50 {statistics.median(ordered) * 1000:6.1f} ms  "
        f"p95 {p95 * 1000:6.1f} ms  errors {len(errors)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="4 clients, 0.5 s")
    args = parser.parse_args()
    clients, seconds = args.clients, args.seconds
    if args.quick:
        clients, seconds = 4, 0.5

    with Sandbox(SandboxConfig(max_concurrent=max(150, clients * 2))) as sb:
        print(f"sandbox at {sb.base_url}: {clients} clients, {seconds:g} s each")
        access = sb.issue_tokens(DEMO.accountant)["access_token"]
        pages = iter(range(10**9))

        def businesses(session: requests.Session) -> None:
            page = next(pages) % 13 + 1
            response = session.get(
                sb.api_url + "/businesses",
                params={"page": page, "items_per_page": 200, "attributes": "all"},
                headers={"Authorization": f"Bearer {access}"},
                timeout=30,
            )
            response.raise_for_status()

        measure("API /businesses (200/page)", clients, seconds, businesses)

        grants = threading.local()

        def refresh(session: requests.Session) -> None:
            if not hasattr(grants, "token"):
                grants.token = sb.issue_tokens(DEMO.accountant)["refresh_token"]
            response = session.post(
                sb.token_url,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": grants.token,
                    "client_id": DEMO.client_id,
                    "client_secret": DEMO.client_secret,
                },
                headers=FORM,
                timeout=30,
            )
            response.raise_for_status()
            grants.token = response.json()["refresh_token"]

        measure("token refresh (rotating)", clients, seconds, refresh)

        query = urlencode(
            {
                "client_id": DEMO.client_id,
                "response_type": "code",
                "redirect_uri": DEMO.redirect_uris[0],
                "scope": "full_access",
                "country": "GB",
            }
        )

        def sign_in(session: requests.Session) -> None:
            page = session.get(f"{sb.auth_url}&{query}", timeout=30)
            marker = 'name="session" value="'
            sid = page.text.split(marker, 1)[1].split('"', 1)[0]
            base = sb.base_url + "/oauth2/auth/central/"
            session.post(
                base + "sign_in",
                data={
                    "session": sid,
                    "email": DEMO.accountant,
                    "password": DEMO.password,
                },
                timeout=30,
            )
            done = session.post(
                base + "consent",
                data={"session": sid, "decision": "allow"},
                allow_redirects=False,
                timeout=30,
            )
            location = done.headers["Location"]
            code = requests.utils.unquote(location.split("code=", 1)[1].split("&")[0])
            response = session.post(
                sb.token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": DEMO.redirect_uris[0],
                    "client_id": DEMO.client_id,
                    "client_secret": DEMO.client_secret,
                },
                headers=FORM,
                timeout=30,
            )
            response.raise_for_status()

        measure("sign-in (4 pages + exchange)", clients, seconds, sign_in)
        counters = sb.counters()
        print(
            f"counters: {counters['api_requests']} API, "
            f"{counters['token_requests']} token, "
            f"{counters['refreshes_rejected']} refreshes rejected, "
            f"{counters['too_many_requests']} over the limit"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
