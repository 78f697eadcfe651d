"""Shared set-up for the session tests: a sandbox grant stored in a vault."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sage_desktop.config import Settings, load_settings
from sage_desktop.connections import Connection, ConnectionRegistry
from sage_desktop.sandbox import Sandbox, SandboxConfig
from sage_desktop.session.lock import GrantLocks
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault

EMAIL = "accountant@sandbox.example"
HERE = Path(__file__).resolve().parent


def tokens_from(answer: dict[str, Any], *, expired: bool = False) -> TokenSet:
    """A token answer as a TokenSet; ``expired`` makes it due right now."""
    now = time.time()
    tokens = TokenSet(
        access_token=answer["access_token"],
        access_expires_at=now + float(answer["expires_in"]),
        refresh_token=answer["refresh_token"],
        refresh_expires_at=now + float(answer["refresh_token_expires_in"]),
        scope=answer.get("scope", ""),
        requested_by_id=answer.get("requested_by_id", ""),
        obtained_at=now,
    )
    if expired:
        lifetime = tokens.access_lifetime
        tokens = replace(
            tokens, obtained_at=now - lifetime - 1, access_expires_at=now - 1
        )
    return tokens


def settings_for(sandbox: Sandbox, **changes: Any) -> Settings:
    settings = load_settings(env=sandbox.env(), path=Path("/nonexistent"))
    return settings.with_(**changes) if changes else settings


def add_connection(
    sandbox: Sandbox,
    vault: TokenVault,
    registry: ConnectionRegistry,
    *,
    email: str = EMAIL,
    expired: bool = True,
    business_id: str | None = None,
) -> str:
    """Sign ``email`` in without a browser; returns the connection id."""
    connection_id = uuid.uuid4().hex
    answer = sandbox.issue_tokens(email)
    vault.save(connection_id, tokens_from(answer, expired=expired))
    now = time.time()
    registry.save(
        Connection(
            id=connection_id,
            user_id=answer.get("requested_by_id", ""),
            user_name="Test User",
            email=email,
            region="GB",
            scope="full_access",
            business_id=business_id,
            business_name=None,
            created_at=now,
            last_used_at=now,
        )
    )
    return connection_id


@dataclass
class Shared:
    """A sandbox, a vault and a registry that child processes also see."""

    sandbox: Sandbox
    vault: TokenVault
    registry: ConnectionRegistry
    env: dict[str, str]

    def locks(self) -> GrantLocks:
        """The grant locks the child processes use (their state dir)."""
        state = Path(self.env["XDG_STATE_HOME"]) / "sage-desktop" / "locks"
        return GrantLocks(state, timeout=30)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "sage_desktop", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        process = self.start(*args)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(args, process.returncode, out, err)


@contextmanager
def shared_setup(tmp_path: Path, kind: str) -> Iterator[Shared]:
    """A sandbox and a keychain that child ``sage-desktop`` processes share.

    ``kind`` "file": the test-only file keyring (``file_keyring``);
    "secret-service": the real Secret Service of the session.
    """
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(tmp_path / name.lower())
    env.pop("XDG_RUNTIME_DIR", None)
    if kind == "file":
        from file_keyring import FileKeyring, child_env

        keyring_dir = tmp_path / "keyring"
        env = child_env(env, keyring_dir)
        vault = TokenVault(FileKeyring(keyring_dir), lock_dir=tmp_path / "vl")
    else:
        vault = TokenVault()
    registry = ConnectionRegistry(
        tmp_path / "data" / "sage-desktop" / "connections.json", vault=vault
    )
    with Sandbox(SandboxConfig(token_size=256)) as sandbox:
        env.update(sandbox.env())
        yield Shared(sandbox, vault, registry, env)


def hammer(client: Any, seconds: float, threads: int) -> Counter[str]:
    """Call ``GET /user`` from ``threads`` threads for ``seconds``.

    Returns what reached the callers: "ok", "api_<status>" for Sage's
    errors, or the name of any other sage-desktop error.
    """
    from sage_desktop.errors import ApiError, SageDesktopError

    outcomes = Counter[str]()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < stop_at:
            try:
                client.request("GET", "user")
                outcome = "ok"
            except ApiError as exc:
                outcome = f"api_{exc.status}"
            except SageDesktopError as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes[outcome] += 1
            time.sleep(0.01)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcomes
