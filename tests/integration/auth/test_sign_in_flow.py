"""The whole sign-in against the sandbox: browser, callback, tokens, /user."""

from __future__ import annotations

import socket
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from signin_helpers import Browser, MakeFlow, free_demo_uris, port_is_free

from sage_desktop.auth.receiver import ipv6_loopback_available
from sage_desktop.connections import ConnectionRegistry
from sage_desktop.errors import (
    AccessDenied,
    CallbackTimeout,
    CodeExpired,
    InvalidClient,
    RegionMismatch,
    SageUnavailable,
    SignInCancelled,
)
from sage_desktop.sandbox import DEMO, Sandbox
from sage_desktop.vault import TokenVault

SOLE = "sole.trader@sandbox.example"


def test_a_full_sign_in_saves_tokens_and_labels_the_connection(
    make_flow: MakeFlow, vault: TokenVault, registry: ConnectionRegistry
) -> None:
    progress: list = []
    result = make_flow(Browser(email=SOLE), progress).run(timeout=20)

    assert result.created
    assert result.user.email == SOLE
    connection = registry.get(result.connection.id)
    assert connection.email == SOLE
    assert connection.user_id == result.user.id
    assert connection.region == "GB"
    assert connection.scope == "full_access"
    tokens = vault.load(connection.id)
    assert tokens is not None
    assert tokens.access_seconds_left() > 200
    stages = [p.stage for p in progress]
    assert stages[:3] == ["listening", "browser", "waiting"]
    assert stages[-1] == "done"
    assert progress[0].url is not None
    assert progress[0].url.startswith("http://127.0.0.1:")


def test_signing_in_again_as_the_same_user_updates_the_connection(
    make_flow: MakeFlow, vault: TokenVault, registry: ConnectionRegistry
) -> None:
    first = make_flow(Browser(email=SOLE)).run(timeout=20)
    old_tokens = vault.load(first.connection.id)

    second = make_flow(Browser(email=SOLE)).run(timeout=20)

    assert not second.created
    assert second.connection.id == first.connection.id
    assert [c.id for c in registry.list()] == [first.connection.id]
    new_tokens = vault.load(first.connection.id)
    assert new_tokens is not None
    assert old_tokens is not None
    assert new_tokens.refresh_token != old_tokens.refresh_token


def test_another_user_gets_a_connection_of_their_own(
    make_flow: MakeFlow, registry: ConnectionRegistry
) -> None:
    make_flow(Browser(email=SOLE)).run(timeout=20)
    make_flow(Browser(email="accountant@sandbox.example")).run(timeout=20)

    assert len(registry.list()) == 2


def test_denied_consent_is_access_denied(
    make_flow: MakeFlow, registry: ConnectionRegistry
) -> None:
    with pytest.raises(AccessDenied):
        make_flow(Browser(email=SOLE, consent="deny")).run(timeout=20)

    assert registry.list() == []


def test_a_region_mismatch_is_reported_as_such(make_flow: MakeFlow) -> None:
    browser = Browser(email="us.user@sandbox.example", region="GB")

    with pytest.raises(RegionMismatch):
        make_flow(browser, country="gb").run(timeout=20)


def test_a_wrong_client_secret_is_invalid_client(
    make_flow: MakeFlow, sandbox: Sandbox, settings, vault, registry
) -> None:
    from sage_desktop.auth.endpoint import TokenEndpoint
    from sage_desktop.auth.flow import SignInFlow

    endpoint = TokenEndpoint(settings, "wrong-secret")
    flow = SignInFlow(settings, endpoint, vault, registry, opener=Browser(email=SOLE))

    with pytest.raises(InvalidClient):
        flow.run(timeout=20)
    assert registry.list() == []


def test_an_unregistered_callback_url_times_out_naming_the_urls(
    make_flow: MakeFlow,
) -> None:
    # Case differs from the registration: Sage shows its error page and
    # the browser never comes back.
    uri = free_demo_uris()[0].replace("/callback", "/Callback")
    browser = Browser(email=SOLE)

    with pytest.raises(CallbackTimeout) as caught:
        make_flow(browser, redirect_uris=(uri,)).run(timeout=1.5)

    assert uri in caught.value.remedy
    assert browser.errors


def test_a_code_used_twice_is_code_expired(
    make_flow: MakeFlow, endpoint, sandbox: Sandbox
) -> None:
    captured: dict[str, str] = {}
    original = endpoint.exchange_code

    def exchange_twice(code: str, redirect_uri: str, verifier: str):
        captured["code"] = code
        original(code, redirect_uri, verifier)
        return original(code, redirect_uri, verifier)

    endpoint.exchange_code = exchange_twice  # type: ignore[method-assign]

    with pytest.raises(CodeExpired):
        make_flow(Browser(email=SOLE)).run(timeout=20)


def test_cancel_from_another_thread_stops_the_wait_and_frees_the_port(
    make_flow: MakeFlow,
) -> None:
    flow = make_flow(lambda url: True)  # a browser that never comes back
    threading.Timer(0.3, flow.cancel).start()

    with pytest.raises(SignInCancelled):
        flow.run(timeout=30)

    used = parse_qs(urlsplit(flow.authorize_url or "").query)["redirect_uri"][0]
    assert port_is_free(urlsplit(used).port or 0)


def test_the_first_callback_port_busy_uses_the_next(make_flow: MakeFlow) -> None:
    first, second = free_demo_uris()[:2]
    assert urlsplit(first).port != urlsplit(second).port
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", urlsplit(first).port or 0))
    holder.listen()
    try:
        flow = make_flow(Browser(email=SOLE), redirect_uris=(first, second))
        result = flow.run(timeout=20)
    finally:
        holder.close()

    assert result.connection.email == SOLE
    used = parse_qs(urlsplit(flow.authorize_url or "").query)["redirect_uri"][0]
    assert used == second


def test_no_secret_reaches_logs_files_or_reprs(
    make_flow: MakeFlow,
    vault: TokenVault,
    tmp_path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    browser = Browser(email=SOLE)

    flow = make_flow(browser)
    result = flow.run(timeout=20)

    tokens = vault.load(result.connection.id)
    assert tokens is not None
    code = parse_qs(urlsplit(browser.delivered[0]).query)["code"][0]
    secrets = [tokens.access_token, tokens.refresh_token, code, DEMO.client_secret]
    files = "".join(
        p.read_text("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()
    )
    shown = caplog.text + repr(result) + repr(flow) + files
    for secret in secrets:
        assert secret not in shown


def test_when_sage_cannot_say_who_signed_in_nothing_is_kept(
    make_flow: MakeFlow,
    sandbox: Sandbox,
    registry: ConnectionRegistry,
    keyring_backend,
) -> None:
    sandbox.add_faults("api", ["500"] * 10)

    with pytest.raises(SageUnavailable):
        make_flow(Browser(email=SOLE)).run(timeout=20)

    assert registry.list() == []
    assert keyring_backend.values() == []
    assert sandbox.counters()["revocations"] == 1


def test_a_browser_that_resolves_localhost_to_ipv6_still_comes_back(
    make_flow: MakeFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback here")
    original = socket.getaddrinfo

    def ipv6_first(host, *args, **kwargs):  # as Windows resolves localhost
        if host == "localhost":
            return [a for a in original("::1", *args, **kwargs)]
        return original(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", ipv6_first)
    browser = Browser(email=SOLE)

    result = make_flow(browser, redirect_uris=tuple(free_demo_uris()[:3])).run(
        timeout=20
    )

    assert result.connection.email == SOLE
    assert browser.delivered[0].startswith("http://localhost:")
