"""Shared set-up for the session tests: a sandbox grant stored in a vault."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from sage_desktop.config import Settings, load_settings
from sage_desktop.connections import Connection, ConnectionRegistry
from sage_desktop.sandbox import Sandbox
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault

EMAIL = "accountant@sandbox.example"


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
