"""Refresh requests per expiry when N callers share one expired token.

Sage rotates refresh tokens and refuses a used one, so every refresh beyond
the first is an ``invalid_grant`` and a failed caller. For N = 1, 10, 100,
200 concurrent callers this prints, side by side, how many refresh requests
reached the sandbox and how many callers failed, for:

* sage-desktop's RefreshWorker (callers ask ``worker.token()``);
* requests-oauthlib's OAuth2Session with ``auto_refresh_url`` (one shared
  session, as its documentation shows);
* authlib's OAuth2Session with ``token_endpoint`` (one shared session).

Every caller then calls ``GET /user`` with what it got; a caller fails if
anything raised or the call was not answered 200.

    .venv/bin/python bench/refresh_storm.py [--quick] [--latency S]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import requests

from sage_desktop.config import load_settings
from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig
from sage_desktop.session import GrantLocks, RefreshWorker
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

EMAIL = "sole.trader@sandbox.example"
Caller = Callable[[], None]


def expired(answer: dict[str, Any]) -> dict[str, Any]:
    """The token answer as a client would hold it just after expiry."""
    now = time.time()
    return {**answer, "expires_in": -1, "expires_at": now - 1}


def storm(n: int, make_callers: Callable[[int], list[Caller]]) -> int:
    """Run N callers at once; returns how many failed."""
    callers = make_callers(n)
    barrier = threading.Barrier(n)
    failed = 0
    lock = threading.Lock()

    def run(call: Caller) -> None:
        nonlocal failed
        barrier.wait()
        try:
            call()
        except Exception as exc:
            with lock:
                failed += 1
                if failed == 1 and os.environ.get("BENCH_DEBUG"):
                    print("  first failure:", type(exc).__name__, exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failed


def check(response: requests.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}")


def sage_desktop_callers(
    sandbox: Sandbox, workdir: Path
) -> Callable[[int], list[Caller]]:
    def make(n: int) -> list[Caller]:
        settings = load_settings(env=sandbox.env(), path=workdir / "none.json")
        vault = TokenVault(MemoryKeyring(), lock_dir=workdir / "vault")
        grant = uuid.uuid4().hex
        answer = sandbox.issue_tokens(EMAIL)
        now = time.time()
        vault.save(
            grant,
            TokenSet(
                access_token=answer["access_token"],
                access_expires_at=now - 1,
                refresh_token=answer["refresh_token"],
                refresh_expires_at=now + answer["refresh_token_expires_in"],
                obtained_at=now - 1 - answer["expires_in"],
            ),
        )
        worker = RefreshWorker(
            settings, vault, None, locks=GrantLocks(workdir / "locks")
        )
        session = requests.Session()
        workers.append(worker)

        def call() -> None:
            token = worker.token(grant)
            check(
                session.get(
                    sandbox.api_url + "/user",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
            )

        return [call] * n

    workers: list[RefreshWorker] = []
    make.workers = workers  # type: ignore[attr-defined]
    return make


def requests_oauthlib_callers(sandbox: Sandbox) -> Callable[[int], list[Caller]]:
    from requests_oauthlib import OAuth2Session

    # oauthlib refuses plain http unless told; the sandbox is on loopback.
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

    def make(n: int) -> list[Caller]:
        token = expired(sandbox.issue_tokens(EMAIL))
        session = OAuth2Session(
            DEMO.client_id,
            token=token,
            auto_refresh_url=sandbox.token_url,
            auto_refresh_kwargs={
                "client_id": DEMO.client_id,
                "client_secret": DEMO.client_secret,
            },
            token_updater=lambda new: None,
        )

        def call() -> None:
            check(session.get(sandbox.api_url + "/user", timeout=30))

        return [call] * n

    return make


def authlib_callers(sandbox: Sandbox) -> Callable[[int], list[Caller]]:
    from authlib.integrations.requests_client import OAuth2Session

    def make(n: int) -> list[Caller]:
        token = expired(sandbox.issue_tokens(EMAIL))
        session = OAuth2Session(
            DEMO.client_id,
            DEMO.client_secret,
            token=token,
            token_endpoint=sandbox.token_url,
            token_endpoint_auth_method="client_secret_post",
            update_token=lambda *args, **kw: None,
        )

        def call() -> None:
            check(session.get(sandbox.api_url + "/user", timeout=30))

        return [call] * n

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 10 only")
    parser.add_argument(
        "--latency", type=float, default=0.3, help="token endpoint latency (s)"
    )
    args = parser.parse_args()
    sizes = (1, 10) if args.quick else (1, 10, 100, 200)

    config = SandboxConfig(token_size=512, token_latency=args.latency)
    with TemporaryDirectory() as tmp, Sandbox(config) as sandbox:
        sage = sage_desktop_callers(sandbox, Path(tmp))
        contenders = [
            ("sage-desktop", sage),
            ("requests-oauthlib", requests_oauthlib_callers(sandbox)),
            ("authlib", authlib_callers(sandbox)),
        ]
        print(f"token endpoint latency {args.latency:g}s; per expiry:")
        print(f"{'N':>5}  " + "  ".join(f"{name:>26}" for name, _ in contenders))
        print(
            f"{'':>5}  " + "  ".join(f"{'refreshes / failed':>26}" for _ in contenders)
        )
        for n in sizes:
            cells = []
            for _name, make in contenders:
                sandbox.reset_counters()
                failed = storm(n, make)
                counters = sandbox.counters()
                refreshes = (
                    counters["refreshes_accepted"] + counters["refreshes_rejected"]
                )
                cells.append(f"{refreshes:>12} / {failed:<11}")
            print(f"{n:>5}  " + "  ".join(f"{cell:>26}" for cell in cells))
        for worker in sage.workers:  # type: ignore[attr-defined]
            worker.stop()


if __name__ == "__main__":
    main()
