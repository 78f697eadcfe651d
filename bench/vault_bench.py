"""Save and load of one 4.5 KB grant record: median times, calls per save.

Runs on the Secret Service (gnome-keyring) when one answers, where a whole
record fits one entry, and always on the in-memory keyring with Windows'
2560-byte limit, where records are chunked. Usage:

    python bench/vault_bench.py [--rounds N] [--memory]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from typing import Any

from keyring.backend import KeyringBackend

from sage_desktop.tokens import TokenSet
from sage_desktop.vault import CHUNK_CHARS, TokenVault, holds_whole_records
from sage_desktop.vault.memory import MemoryKeyring


def pick_backends(memory: bool) -> list[tuple[str, KeyringBackend]]:
    chosen: list[tuple[str, KeyringBackend]] = []
    if not memory:
        try:
            from keyring.backends import SecretService

            backend = SecretService.Keyring()
            backend.get_password("sage-desktop-bench", "probe")
            chosen.append(("gnome-keyring (Secret Service)", backend))
        except Exception as exc:  # any failure: memory only
            print(f"no Secret Service ({type(exc).__name__}); memory only")
    chosen.append(
        ("in-memory (Windows 2560-byte limit)", MemoryKeyring(max_bytes=2560))
    )
    return chosen


def record_of_4_5_kb(n: int) -> TokenSet:
    now = time.time()
    return TokenSet(
        access_token=f"{n:06d}" + "a" * 2150,
        access_expires_at=now + 300,
        refresh_token=f"{n:06d}" + "r" * 2150,
        refresh_expires_at=now + 2_678_400,
        scope="full_access",
        requested_by_id=str(uuid.uuid4()),
        obtained_at=now,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    for name, backend in pick_backends(args.memory):
        measure(name, backend, args.rounds)
        print()


def measure(name: str, backend: KeyringBackend, rounds: int) -> None:
    service = f"sage-desktop-bench-{uuid.uuid4().hex[:6]}"
    vault = TokenVault(backend, service=service, lock_dir=tempfile.mkdtemp())
    size = len(json.dumps(record_of_4_5_kb(0).to_record()))
    chunks = 0 if holds_whole_records(backend) else -(-size // CHUNK_CHARS)

    vault.save("bench", record_of_4_5_kb(0))
    saves, loads, calls = [], [], []
    for n in range(1, rounds + 1):
        before = vault.keychain_calls
        started = time.perf_counter()
        vault.save("bench", record_of_4_5_kb(n))
        saves.append(time.perf_counter() - started)
        calls.append(vault.keychain_calls - before)
        started = time.perf_counter()
        vault.load("bench")
        loads.append(time.perf_counter() - started)
    before = vault.keychain_calls
    vault.load("bench")
    load_calls = vault.keychain_calls - before
    vault.delete("bench")

    result: dict[str, Any] = {
        "backend": name,
        "record_bytes": size,
        "chunks": chunks,
        "rounds": rounds,
        "save_median_ms": round(statistics.median(saves) * 1000, 2),
        "load_median_ms": round(statistics.median(loads) * 1000, 2),
        "keychain_calls_per_save": statistics.median(calls),
        "keychain_calls_per_load": load_calls,
    }
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
