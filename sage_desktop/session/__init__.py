"""Tokens on demand and calls to Sage's API.

:class:`RefreshWorker` is the single place in a process that refreshes
tokens; :class:`SageClient` makes API calls with the tokens it hands out.
"""

from __future__ import annotations

from sage_desktop.session.client import BusinessDetails, SageClient
from sage_desktop.session.events import TokenEvent, TokenEventKind

__all__ = ["BusinessDetails", "SageClient", "TokenEvent", "TokenEventKind"]
