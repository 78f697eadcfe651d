"""Tokens on demand and calls to Sage's API.

:class:`RefreshWorker` is the single place in a process that refreshes
tokens; :class:`SageClient` makes API calls with the tokens it hands out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sage_desktop.session.events import TokenEvent, TokenEventKind
from sage_desktop.session.lock import GrantLocks
from sage_desktop.session.worker import RefreshWorker, WorkerStopped

if TYPE_CHECKING:
    from sage_desktop.session.client import BusinessDetails, SageClient

__all__ = [
    "BusinessDetails",
    "GrantLocks",
    "RefreshWorker",
    "SageClient",
    "TokenEvent",
    "TokenEventKind",
    "WorkerStopped",
]


def __getattr__(name: str) -> Any:
    # The client brings requests, a tenth of a second to import, which
    # `sage-desktop token` does not need while the access token is fresh.
    if name in ("BusinessDetails", "SageClient"):
        from sage_desktop.session import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
