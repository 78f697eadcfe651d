"""``sage-desktop login`` with Debian's Chromium as the user's browser and
the real Secret Service as the keychain."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import ACCOUNTANT, browser_command, private_env, read_report
from secret_scan import files_holding, secret_service_items

from sage_desktop.sandbox import Sandbox

pytestmark = [
    pytest.mark.browser,
    pytest.mark.keychain,
    pytest.mark.usefixtures("chromium", "keychain"),
]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sage_desktop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_login_in_chromium_stores_tokens_only_in_the_secret_service(
    sandbox: Sandbox, shots: Path, tmp_path: Path
) -> None:
    env = {
        **private_env(tmp_path),
        **sandbox.env(),
        "BROWSER": browser_command(),
        "SAGE_E2E_SHOTS": str(shots),
        "SANDBOX_LOGIN_EMAIL": ACCOUNTANT,
    }
    business_id = sandbox.business_ids(ACCOUNTANT)[42]

    login = _cli(env, "login", "--timeout", "90")
    assert login.returncode == 0, login.stderr
    use = _cli(env, "use", business_id)
    assert use.returncode == 0, use.stderr
    token = _cli(env, "token")
    assert token.returncode == 0, token.stderr

    report = read_report(shots)
    assert report["steps"] == ["region", "sign_in", "consent", "callback"]
    assert report["code_shown"] is False
    assert "You can close this tab" in str(report["text"])
    assert "2500 businesses" in login.stdout
    connection = re.search(r"Connection: (\S+)", login.stdout)
    assert connection
    items = secret_service_items(connection.group(1))
    assert items, "no Secret Service item for the new connection"
    assert all(i.get("secret") for i in items)
    access = token.stdout.strip()
    secrets = [access, sandbox.env()["SAGE_DESKTOP_CLIENT_SECRET"]]
    secrets += [i.get("secret", "") for i in items]
    assert files_holding(secrets, tmp_path) == []
    for output in (login, use, token):
        assert sandbox.env()["SAGE_DESKTOP_CLIENT_SECRET"] not in output.stderr
        assert access not in output.stderr
