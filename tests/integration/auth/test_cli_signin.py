"""``sage-desktop login`` and ``logout`` as a user runs them: a child
process, BROWSER set to the sandbox's autobrowser, private XDG folders and
a keychain (the real Secret Service with SAGE_DESKTOP_TEST_KEYCHAIN=1,
otherwise a test-only keyring backend)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from file_keyring import child_env
from signin_helpers import stored_values

from sage_desktop.sandbox import DEMO, Sandbox

REAL_KEYCHAIN = os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") == "1"
SOLE = "sole.trader@sandbox.example"


@dataclass
class Cli:
    sandbox: Sandbox
    env: dict[str, str]
    home: Path
    keyring_dir: Path

    def run(
        self, *args: str, timeout: float = 60, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **extra_env}
        return subprocess.run(
            [sys.executable, "-m", "sage_desktop", "-vv", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stored_secrets(self) -> list[str]:
        """Everything in the test keychain (tokens are long values)."""
        if REAL_KEYCHAIN:
            return []
        return stored_values(self.keyring_dir)

    def files_text(self) -> str:
        """Every file the app wrote outside the keychain."""
        chunks = []
        for path in self.home.rglob("*"):
            if path.is_file() and self.keyring_dir not in path.parents:
                chunks.append(path.read_bytes().decode("utf-8", "replace"))
        return "\n".join(chunks)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with Sandbox() as sandbox:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SAGE_DESKTOP_", "XDG_", "SANDBOX_"))
        }
        env.update(sandbox.env())
        for var in ("CONFIG", "DATA", "STATE", "CACHE", "RUNTIME"):
            env[f"XDG_{var}_HOME" if var != "RUNTIME" else "XDG_RUNTIME_DIR"] = str(
                tmp_path / var.lower()
            )
        (tmp_path / "runtime").mkdir(mode=0o700)
        env["BROWSER"] = f"{sys.executable} -m sage_desktop.sandbox.autobrowser %s"
        env["SANDBOX_LOGIN_EMAIL"] = SOLE
        keyring_dir = tmp_path / "keyring"
        if REAL_KEYCHAIN:
            env["SAGE_DESKTOP_TEST_KEYCHAIN"] = "1"
        else:
            env = child_env(env, keyring_dir)
        yield Cli(sandbox, env, tmp_path, keyring_dir)


def _assert_no_secret(text: str, secrets: list[str]) -> None:
    assert DEMO.client_secret not in text
    for secret in secrets:
        if len(secret) >= 40:
            assert secret not in text


def test_login_picks_the_only_business_and_logout_revokes(cli: Cli) -> None:
    login = cli.run("login", "--timeout", "30")

    assert login.returncode == 0, login.stderr
    assert "http://127.0.0.1:" in login.stdout  # the URL, for copying
    assert "Using your only business" in login.stdout
    assert cli.sandbox.counters()["code_exchanges"] == 1
    secrets = cli.stored_secrets()
    output = login.stdout + login.stderr
    _assert_no_secret(output, secrets)
    _assert_no_secret(cli.files_text(), secrets)
    assert "code=" not in output

    logout = cli.run("logout")

    assert logout.returncode == 0, logout.stderr
    assert "Sage revoked the access" in logout.stdout
    assert cli.sandbox.counters()["revocations"] == 1
    _assert_no_secret(logout.stdout + logout.stderr, secrets)
    assert cli.stored_secrets() == []


def test_login_with_many_businesses_says_how_to_choose(cli: Cli) -> None:
    login = cli.run(
        "login", "--country", "GB", SANDBOX_LOGIN_EMAIL="accountant@sandbox.example"
    )

    assert login.returncode == 0, login.stderr
    assert "sage-desktop use" in login.stdout
    assert "2500 businesses" in login.stdout


def test_login_refused_in_the_browser_exits_with_an_explanation(cli: Cli) -> None:
    login = cli.run("login", SANDBOX_CONSENT="deny")

    assert login.returncode == 1
    assert "Access not granted" in login.stderr
    assert "What to do:" in login.stderr


def test_login_without_a_browser_prints_the_url_and_times_out(cli: Cli) -> None:
    login = cli.run("login", "--no-browser", "--timeout", "0.5")

    assert login.returncode == 1
    assert "Open this address" in login.stdout
    assert "oauth2/auth/central?filter=apiv3.1&client_id=" in login.stdout
    assert "case included" in login.stderr
    assert "http://localhost:8765/callback" in login.stderr


def test_login_without_a_client_secret_is_a_settings_error(cli: Cli) -> None:
    login = cli.run("login", "--no-browser", SAGE_DESKTOP_CLIENT_SECRET="")

    assert login.returncode == 2
    assert "SAGE_DESKTOP_CLIENT_SECRET" in login.stderr


def test_logout_forgets_locally_when_sage_cannot_be_reached(cli: Cli) -> None:
    assert cli.run("login").returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/revoke"

    logout = cli.run("logout", SAGE_DESKTOP_REVOKE_URL=dead)

    assert logout.returncode == 0
    assert "could not be told" in logout.stderr
    assert cli.sandbox.counters()["revocations"] == 0
    assert cli.stored_secrets() == []
    assert cli.run("logout").returncode == 2  # nothing left


def test_logout_by_email_among_several_connections(cli: Cli) -> None:
    assert cli.run("login").returncode == 0
    accountant = "accountant@sandbox.example"
    assert cli.run("login", SANDBOX_LOGIN_EMAIL=accountant).returncode == 0

    ambiguous = cli.run("logout")
    chosen = cli.run("logout", "--connection", accountant)

    assert ambiguous.returncode == 2
    assert "--connection" in ambiguous.stderr
    assert chosen.returncode == 0
    assert accountant in chosen.stdout


@pytest.mark.parametrize("command", ["login", "logout"])
def test_every_command_has_help(cli: Cli, command: str) -> None:
    shown = cli.run(command, "--help")

    assert shown.returncode == 0
    assert "exit codes" in shown.stdout


def test_a_bad_scope_is_a_usage_error(cli: Cli) -> None:
    assert cli.run("login", "--scope", "everything").returncode == 2
