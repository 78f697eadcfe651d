"""Doctor's results and report, with no Sage to talk to: token health is
read from the vault alone, and the checklist and JSON say what to do."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sage_desktop.config import Settings
from sage_desktop.connections import Connection, ConnectionRegistry
from sage_desktop.context import AppContext
from sage_desktop.diagnostics.checks import (
    CheckResult,
    Doctor,
    Report,
    Status,
    format_result,
    summary_line,
)
from sage_desktop.errors import ExitCode
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault
from sage_desktop.vault.memory import MemoryKeyring

ACCESS = "access-" + "a" * 60
REFRESH = "refresh-" + "r" * 60
SECRET = "client-secret-" + "s" * 30
DAY = 86400.0


@pytest.fixture
def dead_port() -> int:
    """A loopback port nobody listens on: every probe is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port


@pytest.fixture
def context(tmp_path: Path, dead_port: int) -> AppContext:
    base = f"http://127.0.0.1:{dead_port}"
    settings = Settings(
        auth_url=base + "/oauth2/auth/central?filter=apiv3.1",
        token_url=base + "/token",
        revoke_url=base + "/revoke",
        api_url=base + "/v3.1",
        client_id="client-id",
        client_secret=SECRET,
        redirect_uris=("http://127.0.0.1:18765/callback",),
    )
    vault = TokenVault(backend=MemoryKeyring(), lock_dir=tmp_path / "locks")
    registry = ConnectionRegistry(path=tmp_path / "c.json", vault=vault)
    return AppContext(settings=settings, vault=vault, registry=registry)


def add_connection(
    context: AppContext, refresh_left: float | None, **changes: object
) -> Connection:
    now = time.time()
    connection = Connection(
        id="c" * 32,
        user_id="u1",
        user_name="Pat",
        email="pat@example.com",
        region="GB",
        scope="full_access",
        business_id="b1",
        business_name="Bakery Ltd",
        created_at=now,
        last_used_at=now,
    )
    connection = replace(connection, **changes)
    context.registry.save(connection)
    if refresh_left is not None:
        context.vault.save(
            connection.id,
            TokenSet(ACCESS, now + 300, REFRESH, now + refresh_left, obtained_at=now),
        )
    return connection


def tokens_result(report: Report) -> CheckResult:
    return next(r for r in report.results if r.id.startswith("tokens."))


def test_a_refresh_token_with_days_left_passes(context: AppContext) -> None:
    add_connection(context, 20 * DAY)

    result = tokens_result(Doctor(context, timeout=0.5).run())

    assert result.status is Status.OK
    assert "valid for 19 days more" in result.summary


def test_a_refresh_token_expiring_within_days_warns_without_refreshing(
    context: AppContext,
) -> None:
    add_connection(context, 2.5 * DAY)
    before = context.vault.load("c" * 32)

    result = tokens_result(Doctor(context, timeout=0.5).run())

    assert result.status is Status.WARN
    assert result.cause == "refresh_token_invalid"
    assert "expires in 2 days" in result.summary
    assert "sign in again before then" in (result.remedy or "")
    assert context.vault.load("c" * 32) == before


@pytest.mark.parametrize(
    ("refresh_left", "changes", "summary"),
    [
        (-1.0, {}, "the refresh token has expired"),
        (None, {}, "no tokens stored on this computer"),
        (20 * DAY, {"needs_sign_in": True}, "a new sign-in is needed"),
    ],
)
def test_dead_sign_ins_fail_and_skip_the_business_check(
    context: AppContext,
    refresh_left: float | None,
    changes: dict[str, object],
    summary: str,
) -> None:
    add_connection(context, refresh_left, **changes)

    report = Doctor(context, timeout=0.5).run()

    result = tokens_result(report)
    business = report.results[-1]
    assert result.status is Status.FAIL
    assert summary in result.summary
    assert result.cause == "refresh_token_invalid"
    assert business.status is Status.SKIP


def test_sage_out_of_reach_fails_the_endpoint_checks(context: AppContext) -> None:
    report = Doctor(context, timeout=0.5).run()

    endpoints = [r for r in report.results if r.id.startswith("endpoint.")]
    assert [r.status for r in endpoints] == [Status.FAIL] * 3
    assert all(r.cause == "sage_unavailable" for r in endpoints)
    assert report.exit_code == ExitCode.ERROR


def test_the_report_holds_no_secret(context: AppContext) -> None:
    add_connection(context, 20 * DAY)

    report = Doctor(context, timeout=0.5).run()
    dumped = json.dumps(report.to_dict()) + report.to_text()

    for secret in (ACCESS, REFRESH, SECRET):
        assert secret not in dumped
    assert "client-id" in dumped


def test_the_checklist_marks_each_line_and_gives_the_remedy() -> None:
    fail = CheckResult(
        "x", "Keychain", Status.FAIL, "locked", "keychain", "Why.", "Unlock it."
    )
    ok = CheckResult("y", "Client secret", Status.OK, "saved in the keychain")
    report = Report([fail, ok])

    lines = format_result(fail) + format_result(ok)

    assert lines == [
        "[FAIL] Keychain: locked",
        "       Why.",
        "       What to do: Unlock it.",
        "[ ok ] Client secret: saved in the keychain",
    ]
    assert summary_line(report).startswith("1 problem found.")
    assert report.exit_code == ExitCode.ERROR
    assert Report([ok]).exit_code == ExitCode.OK
    assert summary_line(Report([ok])) == "Everything looks fine."
