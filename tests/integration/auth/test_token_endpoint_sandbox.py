"""TokenEndpoint against the sandbox's token endpoint, faults included."""

from __future__ import annotations

import pytest

from sage_desktop.auth import TokenEndpoint
from sage_desktop.config import Settings
from sage_desktop.errors import (
    BadTokenResponse,
    InvalidClient,
    RateLimited,
    SageUnavailable,
    SignInRequired,
)
from sage_desktop.sandbox import Sandbox

SOLE = "sole.trader@sandbox.example"


def test_refresh_rotates_and_the_old_token_is_then_dead(
    sandbox: Sandbox, endpoint: TokenEndpoint
) -> None:
    issued = sandbox.issue_tokens(SOLE)

    fresh = endpoint.refresh(issued["refresh_token"])

    assert fresh.refresh_token != issued["refresh_token"]
    assert fresh.access_seconds_left() > 250
    with pytest.raises(SignInRequired):
        endpoint.refresh(issued["refresh_token"])


def test_a_wrong_secret_is_invalid_client(sandbox: Sandbox, settings: Settings) -> None:
    issued = sandbox.issue_tokens(SOLE)

    with pytest.raises(InvalidClient):
        TokenEndpoint(settings, "not-the-secret").refresh(issued["refresh_token"])


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("500", SageUnavailable),
        ("502_html", SageUnavailable),
        ("malformed_json", BadTokenResponse),
        ("429", RateLimited),
        ("reset", SageUnavailable),
    ],
)
def test_transient_faults_keep_the_grant_usable(
    sandbox: Sandbox, endpoint: TokenEndpoint, fault: str, expected: type
) -> None:
    issued = sandbox.issue_tokens(SOLE)
    sandbox.add_faults("token", [fault])

    with pytest.raises(expected) as caught:
        endpoint.refresh(issued["refresh_token"])

    assert caught.value.transient
    assert endpoint.refresh(issued["refresh_token"]).access_token


def test_a_hanging_token_endpoint_times_out(
    sandbox: Sandbox, settings: Settings
) -> None:
    issued = sandbox.issue_tokens(SOLE)
    sandbox.add_faults("token", ["hang"])
    endpoint = TokenEndpoint(settings.with_(http_timeout=0.3), "x" * 8)

    with pytest.raises(SageUnavailable, match="did not answer"):
        endpoint.refresh(issued["refresh_token"])


def test_revoke_ends_the_grant(sandbox: Sandbox, endpoint: TokenEndpoint) -> None:
    issued = sandbox.issue_tokens(SOLE)

    endpoint.revoke(issued["refresh_token"])

    with pytest.raises(SignInRequired):
        endpoint.refresh(issued["refresh_token"])
