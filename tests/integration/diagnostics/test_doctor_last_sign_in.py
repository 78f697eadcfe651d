"""Causes that exist only while a sign-in runs (8: the code expired or was
used twice; 3: the region Sage refused) reproduced on the sandbox, then
reported by ``sage-desktop doctor`` afterwards from the record the sign-in
left, until a later sign-in succeeds.

See :mod:`doctor_helpers` for what the ``app`` fixture sets up.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from doctor_helpers import SOLE, US_USER, App, assert_no_secret, check

from sage_desktop.auth.flow import SignInFlow, SignInResult
from sage_desktop.auth.last_sign_in import SignInRecord
from sage_desktop.diagnostics.catalogue import CLEAR_COOKIES_URL, cause
from sage_desktop.errors import CodeExpired, ExitCode, SageDesktopError
from sage_desktop.sandbox import DEMO
from sage_desktop.sandbox.autobrowser import play


class Browser:
    """An injected opener playing the sandbox's sign-in pages; it keeps the
    callback URLs it delivered (they carry the code and the state)."""

    def __init__(self, email: str = SOLE) -> None:
        self.email = email
        self.delivered: list[str] = []

    def __call__(self, url: str) -> bool:
        self.delivered.append(play(url, email=self.email))
        return True


def record_file(app: App) -> Path:
    return app.root / "state" / "sage-desktop" / "last-sign-in.json"


def sign_in(
    app: App,
    browser: Browser,
    *,
    exchange_twice: bool = False,
    record: SignInRecord | None = None,
) -> SignInResult | SageDesktopError:
    """One sign-in in this process, as the app runs it; the error if any."""
    context = app.context()
    endpoint = context.token_endpoint()
    if exchange_twice:
        exchange = endpoint.exchange_code

        def twice(code: str, redirect_uri: str, verifier: str) -> Any:
            exchange(code, redirect_uri, verifier)
            return exchange(code, redirect_uri, verifier)

        endpoint.exchange_code = twice  # type: ignore[method-assign]
    flow = SignInFlow(
        context.settings,
        endpoint,
        context.vault,
        context.registry,
        opener=browser,
        record=record or context.sign_in_record,
    )
    try:
        result = flow.run(timeout=20)
    except SageDesktopError as exc:
        return exc
    finally:
        endpoint.close()
    tokens = context.vault.load(result.connection.id)
    if tokens is not None:
        app.issued += [tokens.access_token, tokens.refresh_token]
    return result


def assert_remedy_shown(shown: str, cause_id: str) -> None:
    text = cause(cause_id).render()
    assert text.explanation in shown
    assert f"What to do: {text.remedy.splitlines()[0]}" in shown


# --- cause 8: the authorization code expired or was used twice --------------


def test_an_expired_code_is_reported_by_doctor_with_the_catalogue_remedy(
    app: App,
) -> None:
    app.sandbox.config.code_ttl = 0
    login = app.login("--timeout", "20")

    doctor = app.doctor()
    report = app.doctor_json()

    assert login.code == ExitCode.ERROR
    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] Last sign-in: failed " in doctor.out
    assert "Sign-in took too long" in doctor.out
    assert_remedy_shown(doctor.out, "code_expired")
    last = check(report, "last_sign_in")
    assert last["status"] == "fail"
    assert last["cause"] == "code_expired"
    assert last["remedy"] == cause("code_expired").render().remedy
    assert last["details"]["error"] == "CodeExpired"


def test_a_code_used_twice_is_reported_by_doctor(app: App) -> None:
    failure = sign_in(app, Browser(), exchange_twice=True)

    doctor = app.doctor()

    assert isinstance(failure, CodeExpired)
    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] Last sign-in: failed " in doctor.out
    assert_remedy_shown(doctor.out, "code_expired")


# --- cause 3: the region Sage refused ----------------------------------------


def test_a_refused_region_is_reported_by_doctor_with_sages_cookie_page(
    app: App,
) -> None:
    login = app.login("--country", "gb", SANDBOX_LOGIN_EMAIL=US_USER)

    doctor = app.doctor()
    report = app.doctor_json()

    assert login.code == ExitCode.ERROR
    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] Last sign-in: failed " in doctor.out
    assert "Wrong region" in doctor.out
    assert "Region passed to Sage: GB" in doctor.out
    assert_remedy_shown(doctor.out, "region_mismatch")
    assert CLEAR_COOKIES_URL in doctor.out
    last = check(report, "last_sign_in")
    assert last["cause"] == "region_mismatch"
    assert last["details"]["region"] == "GB"


# --- a later success clears it ------------------------------------------------


def test_a_later_successful_sign_in_clears_the_reported_failure(app: App) -> None:
    app.sandbox.config.code_ttl = 0
    failed = app.login("--timeout", "20")
    app.sandbox.config.code_ttl = 60
    succeeded = app.login("--timeout", "20")

    doctor = app.doctor()
    report = app.doctor_json()

    assert failed.code == ExitCode.ERROR
    assert succeeded.code == ExitCode.OK, succeeded.err
    assert "[ ok ] Last sign-in: succeeded " in doctor.out
    assert "Sign-in took too long" not in doctor.out
    last = check(report, "last_sign_in")
    assert last["status"] == "ok"
    assert last["cause"] is None
    assert last["details"]["outcome"] == "succeeded"


def test_doctor_skips_the_check_before_any_sign_in(app: App) -> None:
    doctor = app.doctor()

    assert doctor.code == ExitCode.OK
    assert "[skip] Last sign-in: none recorded on this computer yet" in doctor.out


def test_a_record_that_cannot_be_read_is_skipped_not_fatal(app: App) -> None:
    path = record_file(app)
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")

    doctor = app.doctor()

    assert doctor.code == ExitCode.OK
    assert "[skip] Last sign-in: its record cannot be read" in doctor.out


# --- what the record holds, and what it must never break ----------------------


def test_the_record_holds_no_code_token_state_or_secret(app: App) -> None:
    failing, working = Browser(), Browser()
    sign_in(app, failing, exchange_twice=True)
    after_failure = record_file(app).read_text()
    result = sign_in(app, working)
    after_success = record_file(app).read_text()

    assert isinstance(result, SignInResult)
    callbacks = [urlsplit(u) for u in failing.delivered + working.delivered]
    assert len(callbacks) == 2
    values = [v for c in callbacks for vs in parse_qs(c.query).values() for v in vs]
    codes_and_states = [v for v in values if len(v) > 8]
    assert len(codes_and_states) >= 4
    for text in (after_failure, after_success):
        assert set(json.loads(text)) == {
            "version",
            "at",
            "outcome",
            "error",
            "cause",
            "title",
            "transient",
            "region",
        }
        assert "?" not in text
        for value in codes_and_states:
            assert value not in text
        assert_no_secret(text, app)
    assert_no_secret(app.doctor("--json").out, app)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_the_record_is_readable_by_its_owner_only(app: App) -> None:
    sign_in(app, Browser(), exchange_twice=True)

    mode = stat.S_IMODE(record_file(app).stat().st_mode)

    assert mode == 0o600


def test_a_record_that_cannot_be_written_never_breaks_the_sign_in(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = app.root / "not-a-folder"
    blocker.write_text("")
    unwritable = SignInRecord(blocker / "last-sign-in.json")

    result = sign_in(app, Browser(), record=unwritable)
    failure = sign_in(app, Browser(), exchange_twice=True, record=unwritable)

    assert isinstance(result, SignInResult)
    assert result.user.email == SOLE
    assert isinstance(failure, CodeExpired)
    assert "could not record the sign-in outcome" in caplog.text
    assert DEMO.client_secret not in caplog.text
