"""SageClient's cost per call against a bare requests.Session.

Both call ``GET /v3.1/user`` on the same sandbox with the same token and
decode the JSON; SageClient also asks the RefreshWorker for the token and
checks the answer (status, content type, ``X-Business``). Calls alternate
between the two so drift in the machine's load hits both alike. Prints
the median time of each and their ratio (goal: at most 1.05).

    .venv/bin/python bench/client_overhead.py [--quick] [--calls N]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

from sage_desktop.config import load_settings
from sage_desktop.sandbox import Sandbox, SandboxConfig
from sage_desktop.session import GrantLocks, RefreshWorker, SageClient
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

EMAIL = "sole.trader@sandbox.example"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 calls")
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    calls = 200 if args.quick else args.calls

    with TemporaryDirectory() as tmp, Sandbox(SandboxConfig(token_size=512)) as sb:
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
        bare = requests.Session()
        url = sb.api_url + "/user"
        token = worker.token(grant)

        def with_bare() -> object:
            response = bare.get(
                url, headers={"Authorization": f"Bearer {token}"}, timeout=15
            )
            response.raise_for_status()
            return response.json()

        def with_client() -> object:
            return client.request("GET", "user")

        for _ in range(50):  # warm both pools
            with_bare()
            with_client()
        times: dict[str, list[float]] = {"bare": [], "client": []}
        for _ in range(calls):
            for name, call in (("bare", with_bare), ("client", with_client)):
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
        client.close()
        bare.close()
        worker.stop()

    bare_ms = statistics.median(times["bare"]) * 1000
    client_ms = statistics.median(times["client"]) * 1000
    print(f"calls per side: {calls}")
    print(f"requests.Session median: {bare_ms:.3f} ms")
    print(f"SageClient median:       {client_ms:.3f} ms")
    print(f"ratio: {client_ms / bare_ms:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
