"""Several processes on one grant: no lost update, no error to a caller."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from keychain_helpers import Shared, file_shared
from vault_child import tag_of, tagged_tokens


def finish(
    children: list[subprocess.Popen[str]], timeout: float = 300
) -> list[list[str]]:
    """Wait for every child; their output lines, after the "ready" one."""
    outputs = []
    for child in children:
        out, _ = child.communicate(timeout=timeout)
        lines = out.splitlines()
        assert lines[0] == "ready"
        outputs.append(lines[1:])
    return outputs


def test_compare_and_swap_writers_never_lose_an_update(shared: Shared) -> None:
    rounds = 10 if shared.spec == "secret-service" else 40
    children = [shared.child("cas", "grant1", rounds) for _ in range(2)]

    outputs = finish(children)

    assert all(child.returncode == 0 for child in children)
    lines = [line for output in outputs for line in output]
    saves = [line for line in lines if line.startswith("saved")]
    conflicts = [line for line in lines if line == "conflict"]
    assert len(saves) + len(conflicts) == 2 * rounds
    final = shared.vault().load("grant1")
    assert final is not None
    # Every successful save incremented what it read: none was lost.
    assert int(final.requested_by_id) == len(saves)
    assert final.generation == len(saves)


def readers_and_writers(shared: Shared, processes: int, rounds: int) -> None:
    shared.vault().save("grant1", tagged_tokens(0))
    children = [
        shared.child("mixed", "grant1", rounds, start=1000 * (n + 1))
        for n in range(processes)
    ]

    outputs = finish(children)

    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output
        assert len(output) == rounds
        assert all(line.startswith("saved") for line in output)
    final = shared.vault().load("grant1")
    assert final is not None
    tag_of(final)
    assert final.generation == 1 + processes * rounds


def test_twelve_processes_read_and_write_one_grant_without_error(
    tmp_path: Path,
) -> None:
    readers_and_writers(file_shared(tmp_path), processes=12, rounds=20)


@pytest.mark.keychain
@pytest.mark.slow
def test_twelve_processes_on_gnome_keyring_see_no_error(
    secret_service: Shared,
) -> None:
    readers_and_writers(secret_service, processes=12, rounds=20)
