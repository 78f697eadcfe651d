"""The built program, run as a user runs it: no Python, no source tree.

Built once per session from ``build.spec`` (see conftest.py).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from packaging_helpers import KEYCHAIN, FrozenApp
from secret_scan import files_holding, secret_service_items

from sage_desktop import __version__
from sage_desktop.cli import build_parser
from sage_desktop.sandbox import Sandbox

pytestmark = pytest.mark.packaging

ACCOUNTANT = "accountant@sandbox.example"
SOLE_TRADER = "sole.trader@sandbox.example"


def _commands(usage_error: str) -> set[str]:
    """The subcommands argparse lists after "invalid choice"."""
    match = re.search(r"choose from ([^)]*)\)?", usage_error)
    assert match, usage_error
    return set(re.findall(r"'?([a-z][a-z-]*)'?", match.group(1)))


def _source_commands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:  # argparse keeps subparsers here
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            return set(choices)
    return set()


def test_frozen_program_prints_its_version(app: FrozenApp) -> None:
    done = app.run("--version")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sage-desktop {__version__}"


def test_frozen_program_offers_every_subcommand_of_the_source_tree(
    app: FrozenApp,
) -> None:
    # The subcommands are imported by name at run time, which PyInstaller
    # cannot see; a module missing from the build would vanish silently.
    done = app.run("no-such-command")

    assert done.returncode == 2
    assert _commands(done.stderr) == _source_commands()


def test_frozen_program_carries_keyring_backends_and_their_entry_points(
    app: FrozenApp,
) -> None:
    internal = app.dist / "_internal"
    entry_points = list(internal.glob("keyring-*.dist-info/entry_points.txt"))

    assert entry_points, "keyring's metadata is missing: no backend would load"
    assert "SecretService" in entry_points[0].read_text()
    assert not list(internal.glob("keyrings*")), "keyrings.alt must stay out"


def test_frozen_program_leaves_out_qt_pieces_the_app_does_not_use(
    app: FrozenApp,
) -> None:
    qt = app.dist / "_internal" / "PySide6" / "Qt"
    plugin_types = {p.name for p in (qt / "plugins").iterdir()}
    names = {p.name for p in app.dist.rglob("*")}

    assert not (qt / "translations").exists()
    assert plugin_types <= {
        "platforms",
        "platforminputcontexts",
        "wayland-shell-integration",
        "wayland-decoration-client",
        "imageformats",
        "iconengines",
    }
    assert {"libqoffscreen.so", "libqxcb.so"} <= names
    assert not {"libqgtk3.so", "libgtk-3.so.0", "libQt6Qml.so.6"} & names
    assert not [n for n in names if n.startswith("libQt6Quick")]


def test_frozen_doctor_finds_the_sandbox_and_every_check_passes(
    app: FrozenApp,
) -> None:
    if "doctor" not in _source_commands():
        pytest.skip("no doctor command in this tree yet (diagnostics, issue 7)")
    with Sandbox() as sandbox:
        done = app.run("doctor", "--json", env={**app.env, **sandbox.env()})

    report = json.loads(done.stdout)
    status = {check["id"]: check["status"] for check in report["checks"]}
    network = {k: v for k, v in status.items() if k.startswith("endpoint.")}
    assert network
    assert set(network.values()) == {"ok"}
    assert status["client_credentials"] == "ok"
    assert status["callback_registered"] == "ok"
    if KEYCHAIN:
        # The frozen keyring found the Secret Service backend by itself.
        assert status["keychain"] == "ok", report
        assert done.returncode == 0, done.stdout
    else:
        # No D-Bus session here: the keychain check fails, and says so.
        assert status["keychain"] == "fail"


@pytest.mark.keychain
@pytest.mark.skipif(not KEYCHAIN, reason="set SAGE_DESKTOP_TEST_KEYCHAIN=1")
@pytest.mark.skipif(not shutil.which("secret-tool"), reason="needs secret-tool")
def test_frozen_login_and_token_keep_the_tokens_in_the_secret_service(
    app: FrozenApp, tmp_path: Path
) -> None:
    with Sandbox() as sandbox:
        # The frozen program has no Python; the test browser is the user's
        # side and runs on the test's interpreter.
        env = {
            **app.env,
            **sandbox.env(),
            "BROWSER": f"{sys.executable} -m sage_desktop.sandbox.autobrowser %s",
            "SANDBOX_LOGIN_EMAIL": SOLE_TRADER,
        }
        login = app.run("login", "--timeout", "30", env=env)
        assert login.returncode == 0, login.stderr
        assert "Using your only business" in login.stdout

        token = app.run("token", env=env)
        assert token.returncode == 0, token.stderr
        access = token.stdout.strip()
        user = sandbox_user(sandbox, access)

    assert user["email"] == SOLE_TRADER
    connection = re.search(r"Connection: (\S+)", login.stdout)
    assert connection
    items = secret_service_items(connection.group(1))
    assert items, "no Secret Service item for the new connection"
    assert all(i.get("secret") for i in items)
    secrets = [access] + [i["secret"] for i in items]
    assert access not in login.stdout + login.stderr + token.stderr
    assert files_holding(secrets, tmp_path) == []


def sandbox_user(sandbox: Sandbox, access_token: str) -> dict[str, str]:
    """Ask the sandbox's API who the token belongs to."""
    import requests

    response = requests.get(
        f"{sandbox.api_url}/user",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    )
    response.raise_for_status()
    body = response.json()
    assert isinstance(body, dict)
    return body
