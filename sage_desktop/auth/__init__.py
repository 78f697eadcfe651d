"""Signing in to Sage: authorization URL, loopback receiver, token calls.

The public names are re-exported here; see :mod:`sage_desktop.auth.flow`
for the whole sign-in.
"""

from __future__ import annotations

from sage_desktop.auth.endpoint import TokenEndpoint
from sage_desktop.auth.receiver import (
    CallbackResult,
    LoopbackReceiver,
    map_callback_error,
)
from sage_desktop.auth.request import AuthorizationRequest

__all__ = [
    "AuthorizationRequest",
    "CallbackResult",
    "LoopbackReceiver",
    "TokenEndpoint",
    "map_callback_error",
]
