"""Knobs for tests and demos: scripted faults, the HTTP control plane,
stopping, and the ``sage-desktop sandbox`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from sandbox_helpers import api, assert_sage_error, refresh

from sage_desktop.sandbox import DEMO, Sandbox


def sandbox_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sandbox-")]


# --- scripted faults -------------------------------------------------------------


def test_token_faults_come_in_order_then_normal_service_returns(
    sb: Sandbox,
) -> None:
    token = sb.issue_tokens(DEMO.accountant)["refresh_token"]
    sb.add_faults("token", ["500", "502_html", "malformed_json", "429"])

    first = refresh(sb, token)
    second = refresh(sb, token)
    third = refresh(sb, token)
    fourth = refresh(sb, token)
    fifth = refresh(sb, token)

    assert first.status_code == 500
    assert first.json()["error"] == "server_error"
    assert second.status_code == 502
    assert second.headers["Content-Type"].startswith("text/html")
    assert third.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        third.json()
    assert fourth.status_code == 429
    assert fifth.status_code == 200
    assert sb.counters()["faults_served"] == 4


def test_a_faulted_refresh_does_not_rotate_the_token(sb: Sandbox) -> None:
    token = sb.issue_tokens(DEMO.accountant)["refresh_token"]
    sb.add_faults("token", ["502_html"])

    assert refresh(sb, token).status_code == 502
    assert refresh(sb, token).status_code == 200


def test_a_reset_fault_closes_the_connection_without_an_answer(
    sb: Sandbox,
) -> None:
    sb.add_faults("token", ["reset"])

    with pytest.raises(requests.ConnectionError):
        refresh(sb, "x")


def test_a_hang_outlasts_the_client_timeout(sb: Sandbox) -> None:
    sb.add_faults("token", ["hang"])

    with pytest.raises(requests.Timeout):
        requests.post(sb.token_url, data={"a": "b"}, timeout=0.3)
    assert refresh(sb, "x").status_code == 400


def test_api_faults_hit_api_calls_only(sb: Sandbox) -> None:
    tokens = sb.issue_tokens(DEMO.accountant)
    sb.add_faults("api", ["500", "502_html"])

    assert refresh(sb, tokens["refresh_token"]).status_code == 200
    assert_sage_error(
        api(sb, "/user", tokens["access_token"]), 500, "InternalServerError"
    )
    assert api(sb, "/user", tokens["access_token"]).status_code == 502
    assert api(sb, "/user", tokens["access_token"]).status_code == 200


def test_unknown_faults_are_refused(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sb.add_faults("token", ["explode"])
    with pytest.raises(ValueError, match="target"):
        sb.add_faults("pages", ["500"])


def test_clear_faults_drops_the_queue(sb: Sandbox) -> None:
    sb.add_faults("token", ["500"])
    sb.clear_faults()

    assert refresh(sb, "x").status_code == 400


# --- stopping --------------------------------------------------------------------


def test_stop_ends_a_hanging_request_and_every_thread_quickly() -> None:
    sb = Sandbox().start()
    sb.add_faults("token", ["hang"])
    outcome: list[str] = []

    def hang() -> None:
        try:
            requests.post(sb.token_url, data={"a": "b"}, timeout=60)
            outcome.append("answered")
        except requests.RequestException as exc:
            outcome.append(type(exc).__name__)

    client = threading.Thread(target=hang)
    client.start()
    while sb.counters()["faults_served"] == 0:
        time.sleep(0.01)
    idle = requests.Session()
    idle.get(sb.control_url + "/health", timeout=5)

    started = time.monotonic()
    sb.stop()
    took = time.monotonic() - started
    client.join(10)
    idle.close()

    assert took < 5
    assert outcome == ["ConnectionError"]
    assert sandbox_threads() == []


def test_the_context_manager_stops_the_server() -> None:
    with Sandbox() as sb:
        url = sb.control_url + "/health"
        assert requests.get(url, timeout=5).status_code == 200

    assert not sb.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)


def test_a_stopped_sandbox_can_start_again() -> None:
    sb = Sandbox()
    sb.start()
    sb.stop()
    sb.start()
    try:
        assert requests.get(sb.control_url + "/health", timeout=5).ok
    finally:
        sb.stop()


def test_env_points_the_app_at_the_sandbox(sb: Sandbox) -> None:
    env = sb.env()

    assert env["SAGE_DESKTOP_AUTH_URL"] == sb.auth_url
    assert env["SAGE_DESKTOP_AUTH_URL"].endswith("/oauth2/auth/central?filter=apiv3.1")
    assert env["SAGE_DESKTOP_TOKEN_URL"] == sb.base_url + "/token"
    assert env["SAGE_DESKTOP_REVOKE_URL"] == sb.base_url + "/revoke"
    assert env["SAGE_DESKTOP_API_URL"] == sb.base_url + "/v3.1"
    assert env["SAGE_DESKTOP_CLIENT_ID"] == DEMO.client_id
    assert env["SAGE_DESKTOP_REDIRECT_URIS"].split(",") == list(DEMO.redirect_uris)


def test_demo_registration_has_sages_client_id_form() -> None:
    left, _, right = DEMO.client_id.partition("/")

    for part in (left, right):
        assert [len(p) for p in part.split("-")] == [8, 4, 4, 4, 12]
    assert DEMO.client_secret not in repr(DEMO)


# --- control plane -----------------------------------------------------------------


def control(sb: Sandbox, name: str, payload: object = None) -> requests.Response:
    url = f"{sb.control_url}/{name}"
    if payload is None:
        return requests.get(url, timeout=5)
    return requests.post(url, data=json.dumps(payload), timeout=5)


def test_counters_are_readable_over_http(sb: Sandbox) -> None:
    refresh(sb, "x")

    counters = control(sb, "counters").json()

    assert counters == sb.counters()
    assert counters["refreshes_rejected"] == 1
    for name in (
        "authorize_calls",
        "code_exchanges",
        "refreshes_accepted",
        "refreshes_rejected",
        "max_refreshes_in_flight",
        "token_requests",
        "api_requests",
    ):
        assert name in counters


def test_counters_reset_over_http(sb: Sandbox) -> None:
    refresh(sb, "x")

    control(sb, "counters/reset", {})

    assert sb.counters()["token_requests"] == 0


def test_config_changes_over_http(sb: Sandbox) -> None:
    answer = control(sb, "config", {"access_ttl": 5, "token_latency": 0})

    assert answer.json()["access_ttl"] == 5
    assert sb.config.access_ttl == 5
    assert sb.issue_tokens(DEMO.accountant)["expires_in"] == 5


@pytest.mark.parametrize(
    "payload", [{"port": 1}, {"access_ttl": "soon"}, {"access_ttl": -1}, [1]]
)
def test_bad_config_changes_are_refused(sb: Sandbox, payload: object) -> None:
    assert control(sb, "config", payload).status_code == 400
    assert sb.config.access_ttl == 300


def test_faults_can_be_queued_over_http(sb: Sandbox) -> None:
    control(sb, "faults", {"target": "token", "faults": ["500"]})

    assert refresh(sb, "x").status_code == 500


def test_business_membership_changes_over_http(sb: Sandbox) -> None:
    business_id = sb.business_ids(DEMO.accountant)[0]

    control(
        sb,
        "businesses/grant",
        {"email": DEMO.sole_trader, "business_id": business_id},
    )
    listed = requests.get(
        sb.control_url + "/businesses",
        params={"email": DEMO.sole_trader},
        timeout=5,
    ).json()
    control(
        sb,
        "businesses/revoke",
        {"email": DEMO.accountant, "business_id": business_id},
    )

    assert business_id in listed["business_ids"]
    assert business_id not in sb.business_ids(DEMO.accountant)


def test_grants_can_be_revoked_over_http(sb: Sandbox) -> None:
    tokens = sb.issue_tokens(DEMO.accountant)

    answer = control(sb, "grants/revoke", {"email": DEMO.accountant})

    assert answer.json() == {"revoked": 1}
    assert refresh(sb, tokens["refresh_token"]).status_code == 400


def test_tokens_can_be_issued_over_http(sb: Sandbox) -> None:
    tokens = control(sb, "tokens", {"email": DEMO.sole_trader}).json()

    assert api(sb, "/user", tokens["access_token"]).json()["email"] == (
        DEMO.sole_trader
    )


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("config", b"{not json"),
        ("faults", b'{"target": "token", "faults": "500"}'),
        ("businesses/grant", b'{"email": "nobody@x"}'),
        ("tokens", b"\xff\xfe"),
        ("nothing", b"{}"),
    ],
)
def test_bad_control_requests_get_400(sb: Sandbox, name: str, body: bytes) -> None:
    response = requests.post(f"{sb.control_url}/{name}", data=body, timeout=5)

    assert response.status_code == 400
    assert "error" in response.json()


# --- independence and the command line ------------------------------------------


def test_the_sandbox_imports_nothing_from_the_client_layers() -> None:
    script = (
        "import sys, sage_desktop.sandbox, sage_desktop.sandbox.autobrowser, "
        "sage_desktop.cli.sandbox; "
        "print(' '.join(m for m in sys.modules if m.startswith('sage_desktop')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    loaded = done.stdout.split()
    for layer in ("auth", "session", "vault", "config", "tokens"):
        assert not [m for m in loaded if m.startswith(f"sage_desktop.{layer}")]


def test_the_sandbox_command_prints_how_to_use_it_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sage_desktop",
            "sandbox",
            "--port",
            "0",
            "--access-ttl",
            "7",
            "--api-latency",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "SAGE_DESKTOP_REDIRECT_URIS" in line:
                break
        banner = "".join(lines)
        base = banner.split("running at ", 1)[1].split()[0]
        config = requests.get(base + "/_sandbox/config", timeout=5).json()

        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    assert code == 0
    assert config["access_ttl"] == 7
    assert DEMO.client_id in banner
    for user in DEMO.users:
        assert user.email in banner
    for name in ("AUTH_URL", "TOKEN_URL", "REVOKE_URL", "API_URL", "CLIENT_ID"):
        assert f"SAGE_DESKTOP_{name}=" in banner


def test_the_sandbox_command_has_help_for_every_knob() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sage_desktop", "sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    for flag in (
        "--port",
        "--access-ttl",
        "--refresh-ttl",
        "--token-latency",
        "--api-latency",
        "--max-concurrent",
    ):
        assert flag in done.stdout
