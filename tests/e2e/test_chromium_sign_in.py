"""Sign-in through Debian's Chromium: the sandbox's pages, typed into by a
real browser, bring the code back to the app's loopback receiver."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from e2e_helpers import browser_command, read_report

from sage_desktop.auth.receiver import LoopbackReceiver
from sage_desktop.auth.request import AuthorizationRequest, new_state
from sage_desktop.config import load_settings
from sage_desktop.sandbox import Sandbox

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("chromium")]


def _start_browser(url: str, shots: Path) -> subprocess.Popen[str]:
    command = shlex.split(browser_command().replace("%s", shlex.quote(url)))
    env = dict(os.environ, SAGE_E2E_SHOTS=str(shots))
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_chromium_picks_the_region_signs_in_and_delivers_the_callback(
    sandbox: Sandbox, shots: Path
) -> None:
    settings = load_settings(env=sandbox.env())
    state = new_state()

    with LoopbackReceiver(settings.redirect_uris, state, timeout=90) as receiver:
        request = AuthorizationRequest(
            settings=settings,
            redirect_uri=receiver.redirect_uri,
            scope=settings.scope,
            state=state,
        )
        browser = _start_browser(request.url, shots)
        try:
            result = receiver.wait()
        finally:
            _out, err = browser.communicate(timeout=120)

    assert browser.returncode == 0, err
    assert result.redirect_uri == receiver.redirect_uri
    assert result.country == "GB"
    report = read_report(shots)
    assert report["steps"] == ["region", "sign_in", "consent", "callback"]
    assert report["had_code"] is True
    assert report["code_shown"] is False
    assert result.code not in str(report)
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "00-region.png",
        "01-sign_in.png",
        "02-consent.png",
        "03-callback.png",
    ]
