"""The token vault: Sage grants and client secrets in the OS keychain.

See :mod:`sage_desktop.vault._vault` for the storage layout and why it is
crash-safe; :mod:`sage_desktop.vault.memory` for the in-memory backend
tests use.
"""

from __future__ import annotations

from ._vault import CHUNK_CHARS, SERVICE, TokenVault, holds_whole_records

__all__ = ["CHUNK_CHARS", "SERVICE", "TokenVault", "holds_whole_records"]
