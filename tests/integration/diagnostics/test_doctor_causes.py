"""Each cause of Sage's troubleshooting guide, reproduced on the sandbox:
the command line shows the catalogue's explanation and remedy, and
``sage-desktop doctor`` reports the breakage."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from doctor_helpers import (
    ACCOUNTANT,
    DEVELOPER,
    SOLE,
    US_USER,
    App,
    assert_no_secret,
    check,
)

from sage_desktop.diagnostics.catalogue import CLEAR_COOKIES_URL, cause
from sage_desktop.errors import ExitCode
from sage_desktop.sandbox import DEMO


def words(cause_id: str, variant: str | None = None) -> tuple[str, str, str]:
    """The catalogue's title, explanation and the remedy's first sentence."""
    text = cause(cause_id).render(variant)
    return text.title, text.explanation, text.remedy.split(".")[0]


def assert_explained(
    shown: str,
    cause_id: str,
    variant: str | None = None,
    *,
    exact: bool = True,
) -> None:
    """The catalogue's words are on screen; ``exact=False`` where the place
    that noticed adds detail to the explanation (the title and remedy stay)."""
    title, explanation, remedy = words(cause_id, variant)
    if exact:
        assert explanation in shown
    else:
        assert title in shown
    assert remedy in shown


# --- 1. callback URL not registered exactly ---------------------------------


def unregistered_callback() -> str:
    """A callback URL the sandbox's registration lacks, on a free port (so
    no other test's receiver is in the way)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/Callback"


def test_unregistered_callback_url_is_explained_and_named_by_doctor(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = unregistered_callback()
    login = app.login("--timeout", "2", SAGE_DESKTOP_REDIRECT_URIS=wrong)
    monkeypatch.setenv("SAGE_DESKTOP_REDIRECT_URIS", wrong)
    doctor = app.doctor()

    assert login.code == ExitCode.ERROR
    assert cause("callback_mismatch").text.title in login.err
    assert "exactly, case included" in login.err
    assert wrong in login.err
    assert doctor.code == ExitCode.ERROR
    assert f"[FAIL] Callback URLs registered: Sage refuses {wrong}" in doctor.out
    assert_explained(doctor.out, "callback_mismatch", "refused")


# --- 2. developer-portal login: no business ----------------------------------


def test_developer_login_reaching_no_business_is_explained_by_doctor(
    app: App,
) -> None:
    app.connect(DEVELOPER, business_id=None)

    doctor = app.doctor()

    assert doctor.code == ExitCode.ERROR
    assert "this login reaches no business" in doctor.out
    assert_explained(doctor.out, "developer_login")
    assert "business login, not the developer-portal one" in doctor.out


# --- 3. region mismatch -------------------------------------------------------


def test_region_mismatch_shows_the_region_and_sages_cookie_page(app: App) -> None:
    login = app.login("--country", "gb", SANDBOX_LOGIN_EMAIL=US_USER)
    app.connect(US_USER, region="US")
    app.settings_file(country="gb")
    doctor = app.doctor()

    assert login.code == ExitCode.ERROR
    assert cause("region_mismatch").text.title in login.err
    assert CLEAR_COOKIES_URL in login.err
    assert "[FAIL] Last sign-in: failed " in doctor.out
    assert "[warn] Region (us.user@sandbox.example)" in doctor.out
    assert "sign-in passes region GB but this login is in US" in doctor.out
    assert "Sign in again and choose US." in doctor.out
    assert CLEAR_COOKIES_URL in doctor.out


# --- 4. token request without its headers -----------------------------------


@pytest.fixture
def headers_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every POST leaves without Accept (the app never does this)."""
    real = requests.Session.request

    def request(self: requests.Session, method: str, url: str, **kw: Any) -> Any:
        if method.upper() == "POST":
            headers = dict(kw.pop("headers", None) or {})
            headers.pop("Accept", None)
            kw["headers"] = {**headers, "Accept": None}
        return real(self, method, url, **kw)

    monkeypatch.setattr(requests.Session, "request", request)


def test_missing_headers_are_reported_as_a_bug_with_the_json_report(
    app: App, headers_dropped: None
) -> None:
    app.connect(SOLE, expired_access=True)

    token = app.cli("token")
    doctor = app.doctor()

    assert token.code == ExitCode.ERROR
    assert_explained(token.err, "missing_headers")
    assert "sage-desktop doctor --json" in token.err
    assert "[FAIL] Client id and secret: Token request rejected" in doctor.out
    assert_explained(doctor.out, "missing_headers")


def test_the_apps_own_token_requests_carry_the_headers(app: App) -> None:
    report = app.doctor_json()

    assert check(report, "client_credentials")["status"] == "ok"


# --- 5. refresh token invalid ---------------------------------------------------


def test_revoked_access_asks_for_sign_in_and_doctor_agrees(app: App) -> None:
    app.connect(SOLE, expired_access=True)
    app.sandbox.revoke_grants(SOLE)

    token = app.cli("token")
    doctor = app.doctor()

    assert token.code == ExitCode.SIGN_IN_REQUIRED
    assert_explained(token.err, "refresh_token_invalid")
    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] Sign-in (sole.trader@sandbox.example)" in doctor.out
    assert_explained(doctor.out, "refresh_token_invalid")
    assert "[skip] Business (sole.trader@sandbox.example)" in doctor.out


def test_doctor_warns_days_before_the_refresh_token_expires(app: App) -> None:
    app.sandbox.config.refresh_ttl = 86400
    app.connect(SOLE)
    before = app.sandbox.counters()

    doctor = app.doctor()

    assert doctor.code == ExitCode.OK  # a warning is not a failure
    assert "[warn] Sign-in (sole.trader@sandbox.example): the refresh token" in (
        doctor.out
    )
    assert "expires in 23 hours" in doctor.out
    after = app.sandbox.counters()
    assert after["refreshes_accepted"] == before["refreshes_accepted"]


# --- 6. invalid client credentials ------------------------------------------


def test_wrong_client_secret_is_explained_and_found_by_doctor(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.connect(SOLE, expired_access=True)
    monkeypatch.setenv("SAGE_DESKTOP_CLIENT_SECRET", "not-the-secret-" + "x" * 20)

    token = app.cli("token")
    doctor = app.doctor()

    assert token.code == ExitCode.ERROR
    assert_explained(token.err, "invalid_client")
    assert "[FAIL] Client id and secret: App registration rejected" in doctor.out
    assert_explained(doctor.out, "invalid_client")
    assert "developerselfservice.sageone.com" in doctor.out


# --- 7. unusable registration ------------------------------------------------


def test_https_callback_for_localhost_is_refused_with_the_urls_to_register(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGE_DESKTOP_REDIRECT_URIS", "https://localhost:8765/callback")

    doctor = app.doctor()

    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] App registration:" in doctor.out
    assert "uses https on this computer" in doctor.out
    assert "http://localhost:8765/callback" in doctor.out


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program holds."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_callback_port_held_by_another_program(
    app: App, monkeypatch: pytest.MonkeyPatch, held_port: int
) -> None:
    uri = f"http://127.0.0.1:{held_port}/callback"
    monkeypatch.setenv("SAGE_DESKTOP_REDIRECT_URIS", uri)

    login = app.cli("login", "--no-browser", "--timeout", "5")
    doctor = app.doctor()

    assert login.code == ExitCode.ERROR
    assert_explained(login.err, "registration", "ports_busy", exact=False)
    assert "[FAIL] Callback ports: every callback port is held" in doctor.out
    assert str(held_port) in doctor.out
    assert_explained(doctor.out, "registration", "ports_busy")


def test_missing_client_secret_is_named(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGE_DESKTOP_CLIENT_SECRET")

    doctor = app.doctor()

    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] Client secret: none saved in the keychain" in doctor.out
    assert_explained(doctor.out, "registration", "no_secret")


# --- 8. authorization code expired -------------------------------------------


def test_expired_code_says_the_sign_in_took_too_long_and_doctor_recalls_it(
    app: App,
) -> None:
    app.sandbox.config.code_ttl = 0

    login = app.login("--timeout", "20")
    doctor = app.doctor()

    assert login.code == ExitCode.ERROR
    assert cause("code_expired").text.title in login.err
    assert_explained(login.err, "code_expired")
    assert doctor.code == ExitCode.ERROR
    assert "[FAIL] Last sign-in: failed " in doctor.out
    assert_explained(doctor.out, "code_expired")


# --- 9. business access lost, inactive or changed ----------------------------


def test_lost_business_access_is_explained_and_found_by_doctor(app: App) -> None:
    connection = app.connect(SOLE)
    assert connection.business_id is not None
    app.sandbox.revoke_business(SOLE, connection.business_id)

    api = app.cli("api", "contacts")
    doctor = app.doctor()

    assert api.code == ExitCode.ERROR
    assert f"You no longer have access to {connection.business_name}" in api.err
    assert words("business_access")[2] in api.err
    assert doctor.code == ExitCode.ERROR
    assert f"no access to {connection.business_name} any more" in doctor.out
    assert words("business_access")[2] in doctor.out


def _inactive_business(app: App) -> str:
    for business_id in app.sandbox.business_ids(ACCOUNTANT)[:200]:
        subscriptions = app.sandbox.business(business_id).get("subscriptions", [])
        if any(s.get("active") is False for s in subscriptions):
            return business_id
    raise AssertionError("the sandbox has no inactive business")


def test_inactive_subscription_is_refused_and_found_by_doctor(app: App) -> None:
    inactive = _inactive_business(app)
    app.connect(ACCOUNTANT, business_id=inactive)

    use = app.cli("use", inactive)
    doctor = app.doctor()

    assert use.code == ExitCode.ERROR
    assert cause("business_access").variants["inactive"].title in use.err
    assert words("business_access", "inactive")[2] in use.err
    assert "subscription inactive" in doctor.out
    assert words("business_access", "inactive")[2] in doctor.out


# --- 10. Sage unavailable or rate limiting -----------------------------------


def test_sage_unavailable_keeps_the_connection_and_doctor_sees_it(app: App) -> None:
    app.connect(SOLE)
    app.sandbox.add_faults("api", ["500"] * 8)

    api = app.cli("api", "contacts")
    app.sandbox.clear_faults()
    app.sandbox.add_faults("api", ["hang"])
    started = time.monotonic()
    doctor = app.doctor()

    assert api.code == ExitCode.UNREACHABLE
    assert_explained(api.err, "sage_unavailable", exact=False)
    assert "[FAIL] Sage API:" in doctor.out
    assert "did not answer within 2 s" in doctor.out
    assert_explained(doctor.out, "sage_unavailable")
    assert time.monotonic() - started < 15


def test_rate_limiting_is_reported_as_a_warning(app: App) -> None:
    app.sandbox.add_faults("api", ["429"])

    report = app.doctor_json()

    api = check(report, "endpoint.api")
    assert api["status"] == "warn"
    assert api["cause"] == "rate_limited"
    assert api["remedy"] == cause("rate_limited").text.remedy


# --- the report itself -------------------------------------------------------


def test_json_report_for_support_holds_no_secret(app: App) -> None:
    app.connect(SOLE)
    app.connect(ACCOUNTANT, expired_access=True)

    shown = app.doctor("--json")
    report = app.doctor_json("--connection", ACCOUNTANT)

    assert shown.code == ExitCode.OK, shown.out
    assert_no_secret(shown.out + shown.err, app)
    assert report["ok"] is True
    registration = check(report, "registration")
    assert registration["details"]["callback_urls"] == list(DEMO.redirect_uris)
    assert {c["id"].split(".")[0] for c in report["checks"]} >= {
        "registration",
        "keychain",
        "client_secret",
        "callback_ports",
        "endpoint",
        "client_credentials",
        "callback_registered",
        "last_sign_in",
        "tokens",
        "region",
        "business",
    }
    per_connection = [
        c
        for c in report["checks"]
        if c["id"].startswith(("tokens.", "region.", "business."))
    ]
    assert per_connection
    assert all(ACCOUNTANT in c["title"] for c in per_connection)


def test_unknown_connection_is_a_usage_error(app: App) -> None:
    shown = app.doctor("--connection", "nobody@example.com")

    assert shown.code == ExitCode.USAGE
    assert "No connection matches" in shown.err
