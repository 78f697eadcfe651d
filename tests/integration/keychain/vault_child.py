"""A child process that uses the vault, for crash and concurrency tests.

Usage: python vault_child.py MODE BACKEND LOCK_DIR SERVICE GRANT COUNT [START]

BACKEND is "secret-service" or "file:<directory>" (``file_keyring``, which
tests/support on PYTHONPATH provides). One line per event on stdout,
flushed, so the parent knows how far the child got:
``saved <generation> <tag>``, ``conflict``, ``error <class>``.
"""

from __future__ import annotations

import sys
import time

from keyring.backend import KeyringBackend

from sage_desktop.errors import SageDesktopError, VaultConflict
from sage_desktop.tokens import TokenSet
from sage_desktop.vault import TokenVault


def backend_from(spec: str) -> KeyringBackend:
    if spec == "secret-service":
        from keyring.backends import SecretService

        return SecretService.Keyring()
    from file_keyring import FileKeyring

    return FileKeyring(spec.removeprefix("file:"))


def tagged_tokens(tag: int, count: int = 0) -> TokenSet:
    """Tokens whose every field names ``tag``: a torn mix would show."""
    mark = f"{tag:08d}"
    return TokenSet(
        access_token=("acc" + mark) * 186,
        access_expires_at=time.time() + 300,
        refresh_token=("ref" + mark) * 186,
        refresh_expires_at=time.time() + 2_678_400,
        scope=f"full_access {mark}",
        requested_by_id=str(count),
    )


def tag_of(tokens: TokenSet) -> int:
    """The tag of ``tokens``; AssertionError if its fields disagree."""
    tag = int(tokens.scope.split()[1])
    assert tokens.access_token == tagged_tokens(tag).access_token
    assert tokens.refresh_token == tagged_tokens(tag).refresh_token
    return tag


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    mode, spec, lock_dir, service, grant, count = sys.argv[1:7]
    start = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    vault = TokenVault(backend_from(spec), service=service, lock_dir=lock_dir)
    say("ready")
    errors = 0
    for n in range(start, start + int(count)):
        try:
            if mode == "write":
                saved = vault.save(grant, tagged_tokens(n))
                say(f"saved {saved.generation} {n}")
            elif mode == "cas":
                # Increment a counter kept in the record; CAS must never
                # let two increments from the same generation both land.
                current = vault.load(grant)
                value = int(current.requested_by_id) if current else 0
                expected = current.generation if current else 0
                time.sleep(0.005)  # widen the window another writer can hit
                try:
                    saved = vault.save(
                        grant,
                        tagged_tokens(n, value + 1),
                        expected_generation=expected,
                    )
                except VaultConflict:
                    say("conflict")
                else:
                    say(f"saved {saved.generation} {value + 1}")
            elif mode == "mixed":
                loaded = vault.load(grant)
                if loaded is not None:
                    tag_of(loaded)
                saved = vault.save(grant, tagged_tokens(n))
                tag_of(vault.load(grant) or saved)
                say(f"saved {saved.generation} {n}")
        except SageDesktopError as exc:
            errors += 1
            say(f"error {type(exc).__name__}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
