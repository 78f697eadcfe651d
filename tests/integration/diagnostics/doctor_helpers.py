"""Helpers for the doctor tests (imported as ``doctor_helpers``).

The ``app`` fixture (conftest) points this process at a fresh sandbox the way a user's
environment would (``SAGE_DESKTOP_*`` variables, private XDG folders) and
installs an in-memory keychain as the process's keyring, so ``cli.main``
runs in-process and shares connections and tokens with the test. Sign-in
commands run as child processes with the sandbox's autobrowser.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sage_desktop.cli import main
from sage_desktop.connections import Connection
from sage_desktop.context import AppContext
from sage_desktop.sandbox import DEMO, Sandbox
from sage_desktop.tokens import TokenSet
from sage_desktop.vault.memory import MemoryKeyring

SOLE = "sole.trader@sandbox.example"
ACCOUNTANT = "accountant@sandbox.example"
US_USER = "us.user@sandbox.example"
DEVELOPER = "developer@sandbox.example"


@dataclass
class Shown:
    """What one command showed the user."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class App:
    sandbox: Sandbox
    root: Path
    env: dict[str, str]
    backend: MemoryKeyring
    capsys: pytest.CaptureFixture[str]
    issued: list[str] = field(default_factory=list)

    def secrets(self) -> list[str]:
        """Every token handed out, and those stored now."""
        found = list(self.issued)
        context = self.context()
        for connection in context.registry.list():
            tokens = context.vault.load(connection.id)
            if tokens is not None:
                found += [tokens.access_token, tokens.refresh_token]
        return found

    def context(self) -> AppContext:
        """A fresh context, as each command builds one."""
        return AppContext()

    def connect(
        self,
        email: str,
        *,
        business_id: str | None = "first",
        region: str = "GB",
        expired_access: bool = False,
    ) -> Connection:
        """A connection as if ``email`` had signed in (no browser)."""
        answer = self.sandbox.issue_tokens(email)
        self.issued += [answer["access_token"], answer["refresh_token"]]
        now = time.time()
        tokens = TokenSet(
            access_token=answer["access_token"],
            access_expires_at=now + (-5 if expired_access else answer["expires_in"]),
            refresh_token=answer["refresh_token"],
            refresh_expires_at=now + answer["refresh_token_expires_in"],
            scope=answer.get("scope", "full_access"),
            obtained_at=now,
        )
        if business_id == "first":
            ids = self.sandbox.business_ids(email)
            business_id = ids[0] if ids else None
        name = None
        if business_id is not None:
            name = self.sandbox.business(business_id)["name"]
        connection = Connection(
            id=email.split("@")[0].replace(".", "") + "0" * 24,
            user_id=email,
            user_name=email.split("@")[0],
            email=email,
            region=region,
            scope="full_access",
            business_id=business_id,
            business_name=name,
            created_at=now,
            last_used_at=now,
        )
        context = self.context()
        context.vault.save(connection.id, tokens)
        context.registry.save(connection)
        return connection

    def settings_file(self, **values: Any) -> None:
        """Write the settings file the app reads (the environment wins)."""
        path = self.root / "config" / "sage-desktop" / "settings.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    def cli(self, *args: str) -> Shown:
        """``sage-desktop ARGS`` in this process, output captured."""
        self.capsys.readouterr()
        code = main(list(args))
        captured = self.capsys.readouterr()
        return Shown(code, captured.out, captured.err)

    def doctor(self, *args: str) -> Shown:
        return self.cli("doctor", "--timeout", "2", *args)

    def doctor_json(self, *args: str) -> dict[str, Any]:
        shown = self.doctor("--json", *args)
        data: dict[str, Any] = json.loads(shown.out)
        return data

    def login(self, *args: str, **env: str) -> Shown:
        """``sage-desktop login`` as a child process with the autobrowser."""
        child_env = {**self.env, **env}
        done = subprocess.run(
            [sys.executable, "-m", "sage_desktop", "login", *args],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Shown(done.returncode, done.stdout, done.stderr)


def check(report: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The one check of a JSON report whose id starts with ``prefix``."""
    found = [c for c in report["checks"] if c["id"].startswith(prefix)]
    assert len(found) == 1, [c["id"] for c in report["checks"]]
    return found[0]


def assert_no_secret(text: str, app: App) -> None:
    """No client secret and no token issued or stored appears in ``text``."""
    assert DEMO.client_secret not in text
    for secret in app.secrets():
        assert secret not in text
