"""RefreshWorker's edges: margins, idle grants, bad registrations, keychain trouble."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from session_helpers import add_connection, settings_for, tokens_from

from sage_desktop.auth import TokenEndpoint
from sage_desktop.connections import ConnectionRegistry
from sage_desktop.errors import (
    BusinessAccessDenied,
    InvalidClient,
    KeychainLocked,
    SignInRequired,
)
from sage_desktop.sandbox import Sandbox
from sage_desktop.session import RefreshWorker, SageClient, TokenEvent, TokenEventKind
from sage_desktop.session.lock import GrantLocks
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def workers() -> Iterator[list[RefreshWorker]]:
    made: list[RefreshWorker] = []
    yield made
    for worker in made:
        worker.stop()
        assert not worker.running


def start(
    made: list[RefreshWorker],
    sandbox: Sandbox,
    vault: Any,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    **kw: Any,
) -> RefreshWorker:
    kw.setdefault("backoff_base", 0.05)
    kw.setdefault("backoff_cap", 0.2)
    worker = RefreshWorker(
        settings_for(sandbox, http_timeout=5.0), vault, registry, locks=locks, **kw
    )
    made.append(worker)
    return worker


def test_the_margin_is_never_more_than_a_fifth_of_the_lifetime(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    worker = start(workers, sandbox, vault, registry, locks)
    now = time.time()
    sage = TokenSet("a" * 20, now + 300, "r" * 20, now + 1e6, obtained_at=now)
    short = replace(sage, access_expires_at=now + 2)

    assert worker.margin_for(sage) == 30
    assert worker.margin_for(short) == pytest.approx(0.4)


def test_an_idle_connection_is_not_refreshed_ahead_of_expiry(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    sandbox.config.access_ttl = 1
    connection = add_connection(sandbox, vault, registry, expired=False)
    worker = start(workers, sandbox, vault, registry, locks, idle_after=0.1)

    worker.token(connection)
    time.sleep(1.5)

    assert sandbox.counters()["token_requests"] == 0


def test_a_rejected_client_secret_is_reported_and_the_tokens_are_kept(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    connection = add_connection(sandbox, vault, registry)
    before = vault.load(connection)
    settings = settings_for(sandbox)
    worker = start(
        workers,
        sandbox,
        vault,
        registry,
        locks,
        endpoint_factory=lambda: TokenEndpoint(settings, "not-the-secret"),
    )

    with pytest.raises(InvalidClient):
        worker.token(connection)

    assert vault.load(connection) == before
    assert not registry.get(connection).needs_sign_in


def test_a_failing_subscriber_does_not_stop_the_others(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    connection = add_connection(sandbox, vault, registry)
    worker = start(workers, sandbox, vault, registry, locks)
    seen: list[TokenEvent] = []

    def broken(event: TokenEvent) -> None:
        raise RuntimeError("listener bug")

    worker.subscribe(broken)
    unsubscribe = worker.subscribe(seen.append)
    worker.token(connection)
    unsubscribe()
    worker.invalidate(connection, worker.token(connection))
    worker.token(connection)

    assert [e.kind for e in seen] == [TokenEventKind.REFRESHED]


def test_a_refresh_token_reaching_its_expiry_says_sign_in_again_by_itself(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    sandbox.config.refresh_ttl = 2
    connection = add_connection(sandbox, vault, registry, expired=False)
    worker = start(workers, sandbox, vault, registry, locks)
    dead = threading.Event()
    worker.subscribe(
        lambda e: dead.set() if e.kind is TokenEventKind.SIGN_IN_REQUIRED else None
    )
    worker.token(connection)

    assert dead.wait(10)
    with pytest.raises(SignInRequired):
        worker.token(connection)
    assert sandbox.counters()["token_requests"] == 0
    assert registry.get(connection).needs_sign_in


class SaveFails:
    """A vault whose saves fail while ``failing`` is set (keychain locked)."""

    def __init__(self, vault: TokenVault) -> None:
        self.vault = vault
        self.failing = True

    def load(self, grant_id: str) -> TokenSet | None:
        return self.vault.load(grant_id)

    def save(self, grant_id: str, tokens: TokenSet, **kw: Any) -> TokenSet:
        if self.failing:
            raise KeychainLocked()
        return self.vault.save(grant_id, tokens, **kw)

    def delete(self, grant_id: str) -> None:
        self.vault.delete(grant_id)


def test_renewed_tokens_that_cannot_be_saved_are_kept_and_saved_later(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    connection = add_connection(sandbox, vault, registry)
    before = vault.load(connection)
    flaky = SaveFails(vault)
    worker = start(workers, sandbox, flaky, registry, locks)

    token = worker.token(connection)
    assert vault.load(connection) == before
    flaky.failing = False
    deadline = time.monotonic() + 10
    while vault.load(connection).generation == before.generation:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert vault.load(connection).access_token == token
    assert worker.token(connection) == token
    assert sandbox.counters()["refreshes_accepted"] == 1


def test_a_client_recovers_from_a_401_with_one_refresh(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    sandbox.config.access_ttl = 1
    connection = add_connection(sandbox, vault, registry, expired=False)
    # Locally the token looks good for five minutes; Sage says otherwise.
    stored = vault.load(connection)
    vault.save(
        connection,
        replace(stored, access_expires_at=time.time() + 300, obtained_at=time.time()),
    )
    time.sleep(1.2)
    worker = start(workers, sandbox, vault, registry, locks)
    client = SageClient.for_connection(worker, connection, sandbox.api_url)

    user = client.user()

    assert user.email == "accountant@sandbox.example"
    assert sandbox.counters()["refreshes_accepted"] == 1
    client.close()


def test_a_business_the_user_lost_is_named_in_the_error(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    email = "accountant@sandbox.example"
    business = sandbox.business_ids(email)[5]
    connection = add_connection(sandbox, vault, registry, expired=False)
    worker = start(workers, sandbox, vault, registry, locks)
    client = SageClient.for_connection(
        worker, connection, sandbox.api_url, business, business_name="Acme Ltd"
    )
    assert client.request("GET", "contacts")["$items"] is not None

    sandbox.revoke_business(email, business)
    with pytest.raises(BusinessAccessDenied) as caught:
        client.request("GET", "contacts")

    assert "no longer have access to Acme Ltd" in str(caught.value)
    client.close()


def test_tokens_from_a_sign_in_are_used_as_they_are(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    answer = sandbox.issue_tokens("sole.trader@sandbox.example")
    vault.save("fresh", tokens_from(answer))
    worker = start(workers, sandbox, vault, None, locks)

    assert worker.token("fresh") == answer["access_token"]


def test_a_valid_stored_token_is_used_while_another_process_holds_the_lock(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    locks: GrantLocks,
    workers: list[RefreshWorker],
) -> None:
    connection = add_connection(sandbox, vault, registry, expired=False)
    worker = start(workers, sandbox, vault, registry, locks)

    with locks.hold(connection):  # as if another process were refreshing
        token = worker.token(connection, timeout=5)

    assert token == vault.load(connection).access_token
