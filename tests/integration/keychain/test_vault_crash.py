"""A writer killed with SIGKILL at any moment never leaves a torn grant."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest
from keychain_helpers import Shared
from vault_child import tag_of

from sage_desktop.vault import TokenVault

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

#: Writes per run: 200 on files; on gnome-keyring a save costs ~0.5 s of
#: D-Bus round trips, so fewer keep the test within the suite's budget.
WRITES = 200
WRITES_SECRET_SERVICE = 50


def entries(shared: Shared) -> list[str]:
    if shared.spec == "secret-service":
        sys.path.insert(0, str(Path(__file__).parents[2] / "unit" / "vault"))
        from vault_backends import stored_entries

        return sorted(stored_entries(shared.backend, shared.service))
    from file_keyring import FileKeyring

    assert isinstance(shared.backend, FileKeyring)
    return sorted(shared.backend.entries(shared.service))


def test_a_writer_killed_at_random_points_leaves_a_whole_generation(
    shared: Shared,
) -> None:
    rng = random.Random(20260301)
    total = WRITES_SECRET_SERVICE if shared.spec == "secret-service" else WRITES
    vault: TokenVault = shared.vault()
    written = 0
    confirmed = 0
    kills = 0
    # A save takes a few ms on files and tens of ms on gnome-keyring:
    # kill after up to a few saves' time, at random points within them.
    span = 0.15 if shared.spec == "secret-service" else 0.03

    while written < total:
        child = shared.child("write", "grant1", total - written, start=written)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        # Let a random number of saves complete, then kill at a random
        # point of a later one.
        for _ in range(rng.randint(0, 16)):
            line = child.stdout.readline().split()
            if not line:
                break
            assert line[0] == "saved", line
            written += 1
            confirmed = int(line[1])
        time.sleep(rng.uniform(0, span))
        child.kill()
        kills += 1
        child.wait()
        for line in child.stdout.read().splitlines():
            word, generation, _tag = line.split()
            assert word == "saved", line
            written += 1
            confirmed = int(generation)
        child.stdout.close()

        loaded = vault.load("grant1")
        if confirmed:
            assert loaded is not None
            tag_of(loaded)  # every field from one and the same save
            # A confirmed save is never lost; one cut short may have landed.
            assert loaded.generation in (confirmed, confirmed + 1)
            confirmed = loaded.generation

    assert kills >= 3
    final = vault.load("grant1")
    assert final is not None
    assert tag_of(final) == total - 1

    vault.delete("grant1")
    assert entries(shared) == []
