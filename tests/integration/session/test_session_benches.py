"""The session benches run in their quick mode (figures are not judged here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"

pytestmark = pytest.mark.timeout(180)


def run_bench(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / name), "--quick"],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_refresh_storm_shows_one_refresh_and_no_failure_for_sage_desktop() -> None:
    out = run_bench("refresh_storm.py")

    rows = re.findall(r"^\s*(\d+)\s+(\d+) / (\d+)", out, re.MULTILINE)
    assert [n for n, _, _ in rows] == ["1", "10"]
    assert all((refreshes, failed) == ("1", "0") for _, refreshes, failed in rows)


def test_client_overhead_prints_the_ratio() -> None:
    assert re.search(r"ratio: \d+\.\d+", run_bench("client_overhead.py"))


def test_paging_prints_both_speed_ups() -> None:
    out = run_bench("paging.py")

    assert len(re.findall(r"speed-up: \d+\.\d+x", out)) == 2
    assert "2500 businesses" in out


@pytest.mark.keychain
@pytest.mark.skipif(
    os.environ.get("SAGE_DESKTOP_TEST_KEYCHAIN") != "1",
    reason="set SAGE_DESKTOP_TEST_KEYCHAIN=1 for the Secret Service",
)
def test_token_command_is_timed_without_a_refresh() -> None:
    out = run_bench("token_command.py")

    assert re.search(r"median \d+ ms, fastest \d+ ms \(0 refreshes", out), out
