"""RefreshWorker against the sandbox: one refresh per expiry, failures kept apart."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from session_helpers import add_connection, settings_for

from sage_desktop.connections import ConnectionRegistry
from sage_desktop.errors import SageUnavailable, SignInRequired
from sage_desktop.sandbox import Sandbox
from sage_desktop.session import RefreshWorker, TokenEvent, TokenEventKind
from sage_desktop.session.lock import GrantLocks
from sage_desktop.vault import TokenVault

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def make_worker(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
) -> Iterator[object]:
    workers: list[RefreshWorker] = []

    def make(**kw: object) -> RefreshWorker:
        settings = settings_for(sandbox, http_timeout=kw.pop("http_timeout", 5.0))
        kw.setdefault("backoff_base", 0.05)
        kw.setdefault("backoff_cap", 0.2)
        worker = RefreshWorker(settings, vault, registry, locks=locks, **kw)  # type: ignore[arg-type]
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
        assert not worker.running


def test_two_hundred_callers_at_expiry_cause_exactly_one_refresh(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    sandbox.config.token_latency = 0.3
    connection = add_connection(sandbox, vault, registry)
    worker = make_worker()
    start = threading.Barrier(200)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        start.wait()
        try:
            token = worker.token(connection)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(token)

    threads = [threading.Thread(target=call) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    counters = sandbox.counters()
    assert errors == []
    assert counters["refreshes_accepted"] == 1
    assert counters["refreshes_rejected"] == 0
    assert counters["max_refreshes_in_flight"] == 1
    assert len(set(results)) == 1
    assert results[0] == vault.load(connection).access_token


def test_a_valid_token_is_returned_without_any_request(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry, expired=False)
    worker = make_worker()

    first = worker.token(connection)
    second = worker.token(connection)

    assert first == second == vault.load(connection).access_token
    assert sandbox.counters()["token_requests"] == 0


def test_the_new_tokens_are_saved_with_the_next_generation(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry)
    before = vault.load(connection)
    events: list[TokenEvent] = []
    worker = make_worker()
    worker.subscribe(events.append)

    token = worker.token(connection)

    after = vault.load(connection)
    assert after.generation == before.generation + 1
    assert after.access_token == token
    assert after.refresh_token != before.refresh_token
    assert [e.kind for e in events] == [TokenEventKind.REFRESHED]


def test_tokens_in_use_are_refreshed_before_they_expire(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    sandbox.config.access_ttl = 2
    connection = add_connection(sandbox, vault, registry, expired=False)
    refreshed = threading.Event()
    worker = make_worker()
    worker.subscribe(
        lambda e: refreshed.set() if e.kind is TokenEventKind.REFRESHED else None
    )
    first = worker.token(connection)

    assert refreshed.wait(10)
    assert worker.token(connection) != first
    assert sandbox.counters()["refreshes_accepted"] == 1


def test_a_dead_grant_means_sign_in_again_and_is_never_retried(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry)
    sandbox.revoke_grants("accountant@sandbox.example")
    events: list[TokenEvent] = []
    worker = make_worker()
    worker.subscribe(events.append)

    with pytest.raises(SignInRequired):
        worker.token(connection)
    with pytest.raises(SignInRequired):
        worker.token(connection)

    assert sandbox.counters()["token_requests"] == 1
    assert vault.load(connection) is None
    assert registry.get(connection).needs_sign_in
    assert [e.kind for e in events] == [TokenEventKind.SIGN_IN_REQUIRED]


def test_a_second_process_reading_the_dead_grant_asks_for_sign_in_without_a_request(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry)
    sandbox.revoke_grants("accountant@sandbox.example")
    with pytest.raises(SignInRequired):
        make_worker().token(connection)

    with pytest.raises(SignInRequired):
        make_worker().token(connection)

    assert sandbox.counters()["token_requests"] == 1


def test_an_expired_refresh_token_asks_for_sign_in_before_any_request(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    sandbox.config.refresh_ttl = 0.5
    connection = add_connection(sandbox, vault, registry)
    time.sleep(0.6)

    with pytest.raises(SignInRequired):
        make_worker().token(connection)

    assert sandbox.counters()["token_requests"] == 0
    assert registry.get(connection).needs_sign_in


@pytest.mark.parametrize("fault", ["500", "502_html", "malformed_json", "429"])
def test_a_failed_refresh_keeps_the_tokens_and_recovers(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    make_worker,
    fault: str,
) -> None:
    connection = add_connection(sandbox, vault, registry)
    before = vault.load(connection)
    sandbox.add_faults("token", [fault])
    events: list[TokenEvent] = []
    worker = make_worker()
    worker.subscribe(events.append)

    with pytest.raises(SageUnavailable) as caught:
        worker.token(connection)
    assert caught.value.transient
    assert vault.load(connection) == before

    token = worker.token(connection)

    assert token == vault.load(connection).access_token
    assert sandbox.counters()["refreshes_accepted"] == 1
    assert sandbox.counters()["refreshes_rejected"] == 0
    kinds = [e.kind for e in events]
    assert kinds[0] is TokenEventKind.TRANSIENT_TROUBLE
    assert TokenEventKind.RECOVERED in kinds
    assert not registry.get(connection).needs_sign_in


def test_a_hanging_token_endpoint_is_a_transient_error(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry)
    sandbox.add_faults("token", ["hang"])
    worker = make_worker(http_timeout=0.5)

    with pytest.raises(SageUnavailable):
        worker.token(connection)

    assert worker.token(connection) == vault.load(connection).access_token
    assert sandbox.counters()["refreshes_accepted"] == 1


class TokenProxy:
    """The token endpoint behind a switch: off means connection refused."""

    def __init__(self, target: str) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = f"http://127.0.0.1:{self.port}/token"
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        target = self.target

        class Forward(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                answer = requests.post(
                    target,
                    data=body,
                    headers={
                        "Content-Type": self.headers["Content-Type"],
                        "Accept": self.headers["Accept"],
                    },
                    timeout=10,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers["Content-Type"])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Forward)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        ).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def test_a_refused_connection_keeps_the_tokens_and_recovers(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
) -> None:
    connection = add_connection(sandbox, vault, registry)
    before = vault.load(connection)
    proxy = TokenProxy(sandbox.token_url)
    settings = settings_for(sandbox, token_url=proxy.url, http_timeout=2.0)
    worker = RefreshWorker(
        settings, vault, registry, locks=locks, backoff_base=0.05, backoff_cap=0.1
    )
    try:
        with pytest.raises(SageUnavailable):
            worker.token(connection)
        assert vault.load(connection) == before

        proxy.up()
        token = worker.token(connection)
    finally:
        worker.stop()
        proxy.down()

    assert token == vault.load(connection).access_token
    assert sandbox.counters()["refreshes_accepted"] == 1
    assert not registry.get(connection).needs_sign_in


def test_a_401_on_the_current_token_forces_one_refresh(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry, expired=False)
    worker = make_worker()
    old = worker.token(connection)

    worker.invalidate(connection, old)
    worker.invalidate(connection, old)
    new = worker.token(connection)
    worker.invalidate(connection, old)  # stale now: no effect

    assert new != old
    assert worker.token(connection) == new
    assert sandbox.counters()["refreshes_accepted"] == 1


def test_tokens_refreshed_by_another_process_are_adopted_without_a_request(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    connection = add_connection(sandbox, vault, registry)
    other = make_worker()
    mine = make_worker()
    token = other.token(connection)

    assert mine.token(connection) == token
    assert sandbox.counters()["refreshes_accepted"] == 1


def test_stop_wakes_waiting_callers_and_joins(
    sandbox: Sandbox, vault: TokenVault, registry: ConnectionRegistry, make_worker
) -> None:
    worker = make_worker()
    worker.stop()

    assert not worker.running
    with pytest.raises(SageUnavailable):
        worker.token(add_connection(sandbox, vault, registry))
