"""Tokens on demand and calls to Sage's API.

:class:`RefreshWorker` is the single place in a process that refreshes
tokens; :class:`SageClient` makes API calls with the tokens it hands out.
"""

from __future__ import annotations

from sage_desktop.session.client import BusinessDetails, SageClient
from sage_desktop.session.events import TokenEvent, TokenEventKind
from sage_desktop.session.lock import GrantLocks
from sage_desktop.session.worker import RefreshWorker, WorkerStopped

__all__ = [
    "BusinessDetails",
    "GrantLocks",
    "RefreshWorker",
    "SageClient",
    "TokenEvent",
    "TokenEventKind",
    "WorkerStopped",
]
