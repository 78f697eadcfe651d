"""The token pair of one Sage grant, safe to print.

A :class:`TokenSet` holds absolute expiry times (seconds since the epoch),
so it stays meaningful after being stored and read back. Its ``repr`` and
``str`` show only the last four characters of the access token and how long
it has left: secrets never reach logs or exceptions through it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any


def mask(secret: str) -> str:
    """Return ``…`` plus the last four characters: enough to tell tokens apart."""
    if len(secret) < 12:
        return "…"
    return "…" + secret[-4:]


def _describe_seconds(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    if seconds < 90:
        return f"expires in {int(seconds)}s"
    if seconds < 2 * 3600:
        return f"expires in {int(seconds // 60)}m"
    if seconds < 2 * 86400:
        return f"expires in {int(seconds // 3600)}h"
    return f"expires in {int(seconds // 86400)}d"


@dataclass(frozen=True)
class TokenSet:
    """Access and refresh token of one grant, with absolute expiry times.

    ``generation`` is the vault's counter: 0 for tokens never stored, then
    one more at every save (see :class:`sage_desktop.vault.TokenVault`).
    """

    access_token: str = field(repr=False)
    access_expires_at: float
    refresh_token: str = field(repr=False)
    refresh_expires_at: float
    scope: str = ""
    requested_by_id: str = ""
    generation: int = 0
    obtained_at: float = 0.0

    def __repr__(self) -> str:
        left = self.access_expires_at - time.time()
        return (
            f"TokenSet(access={mask(self.access_token)}, {_describe_seconds(left)},"
            f" generation={self.generation})"
        )

    __str__ = __repr__

    @property
    def access_lifetime(self) -> float:
        """Seconds the access token was valid for when obtained."""
        return max(0.0, self.access_expires_at - self.obtained_at)

    def access_seconds_left(self, now: float | None = None) -> float:
        return self.access_expires_at - (time.time() if now is None else now)

    def refresh_seconds_left(self, now: float | None = None) -> float:
        return self.refresh_expires_at - (time.time() if now is None else now)

    def with_generation(self, generation: int) -> TokenSet:
        return replace(self, generation=generation)

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready record the vault stores (secrets included)."""
        return {
            "access_token": self.access_token,
            "access_expires_at": self.access_expires_at,
            "refresh_token": self.refresh_token,
            "refresh_expires_at": self.refresh_expires_at,
            "scope": self.scope,
            "requested_by_id": self.requested_by_id,
            "generation": self.generation,
            "obtained_at": self.obtained_at,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TokenSet:
        """Rebuild from :meth:`to_record`; raises ``KeyError``/``TypeError``."""
        return cls(
            access_token=str(record["access_token"]),
            access_expires_at=float(record["access_expires_at"]),
            refresh_token=str(record["refresh_token"]),
            refresh_expires_at=float(record["refresh_expires_at"]),
            scope=str(record.get("scope", "")),
            requested_by_id=str(record.get("requested_by_id", "")),
            generation=int(record.get("generation", 0)),
            obtained_at=float(record.get("obtained_at", 0.0)),
        )
