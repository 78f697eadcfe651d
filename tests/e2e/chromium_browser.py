"""A real browser for sign-in tests: headless Debian Chromium as ``BROWSER``.

    BROWSER="<python> tests/e2e/chromium_browser.py %s" sage-desktop login

It does what a person does on the sandbox's pages: picks the region when
Sage's picker shows, types the demo accountant's email and password, allows
access, and waits until the browser lands on the app's loopback callback.
Python's ``webbrowser`` waits for a ``BROWSER`` command, and the app serves
its callback on another thread, so the exit status says how it went.

Only Debian's ``/usr/bin/chromium`` with ``/usr/bin/chromedriver`` is used
(``SE_OFFLINE=true``: Selenium Manager never downloads a browser or driver),
with a fresh profile that is deleted afterwards: the profile's history
would otherwise keep the callback URL.

Environment:

``SAGE_E2E_SHOTS``
    directory for a PNG of each page (``01-sign_in.png`` ...) and
    ``report.json``: the steps seen, the callback page's title and text,
    and whether the callback page showed the code (it must not). The code
    itself is never written anywhere.
``SANDBOX_LOGIN_EMAIL``, ``SANDBOX_LOGIN_PASSWORD``, ``SANDBOX_REGION``,
``SANDBOX_CONSENT``
    as for the sandbox's own autobrowser.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
STEP_TIMEOUT = 20.0
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,800",
)


class SignInError(Exception):
    """The pages did not lead to the callback."""


def new_driver(profile: str) -> webdriver.Chrome:
    """Debian's Chromium under Debian's chromedriver, with a fresh profile."""
    # Selenium Manager must never fetch a browser or driver.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _step(driver: webdriver.Chrome) -> str | None:
    """The sandbox marks each form with ``data-step``; None elsewhere."""
    forms = driver.find_elements(By.CSS_SELECTOR, "form[data-step]")
    if forms:
        return forms[0].get_attribute("data-step")
    if driver.find_elements(By.CSS_SELECTOR, "h1[data-step=error]"):
        return "error"
    return None


def _on_callback(driver: webdriver.Chrome, sandbox: str) -> bool:
    """True once the browser left the sandbox for a loopback callback."""
    parts = urlsplit(driver.current_url)
    ready = driver.execute_script("return document.readyState") == "complete"
    return (
        ready
        and parts.scheme == "http"
        and parts.netloc != sandbox
        and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )


def sign_in(
    driver: webdriver.Chrome, url: str, shots: Path | None
) -> dict[str, object]:
    """Walk the sandbox's pages to the callback; return the report."""
    email = os.environ.get("SANDBOX_LOGIN_EMAIL") or "accountant@sandbox.example"
    password = os.environ.get("SANDBOX_LOGIN_PASSWORD") or "sandbox"
    region = os.environ.get("SANDBOX_REGION") or "GB"
    consent = os.environ.get("SANDBOX_CONSENT") or "allow"
    sandbox = urlsplit(url).netloc
    steps: list[str] = []

    def shot(name: str) -> None:
        if shots is not None:
            driver.save_screenshot(str(shots / f"{len(steps):02d}-{name}.png"))

    driver.get(url)
    deadline = time.monotonic() + STEP_TIMEOUT * 4
    while not _on_callback(driver, sandbox):
        if time.monotonic() > deadline:
            raise SignInError("no callback after the sign-in pages")
        step = _step(driver)
        if step is None:
            time.sleep(0.1)
            continue
        if step == "error" or len(steps) > 8:
            shot(step)
            raise SignInError(f"the sandbox showed an error page: {driver.title}")
        # A mark on this document: gone once the next page has loaded.
        driver.execute_script("window.__e2eLeaving = true")
        if step == "region":
            Select(driver.find_element(By.ID, "country")).select_by_value(region)
            button = driver.find_element(By.CSS_SELECTOR, "button[type=submit]")
        elif step == "sign_in":
            driver.find_element(By.ID, "email").clear()
            driver.find_element(By.ID, "email").send_keys(email)
            driver.find_element(By.ID, "password").send_keys(password)
            button = driver.find_element(By.CSS_SELECTOR, "button[type=submit]")
        else:
            button = driver.find_element(
                By.CSS_SELECTOR, f"button[name=decision][value={consent}]"
            )
        shot(step)  # as filled in, just before it is sent
        steps.append(step)
        button.click()
        WebDriverWait(driver, STEP_TIMEOUT).until(_left_the_page)

    shot("callback")
    steps.append("callback")
    callback = urlsplit(driver.current_url)
    codes = parse_qs(callback.query).get("code", [])
    source = driver.page_source
    body = driver.find_element(By.TAG_NAME, "body").text
    return {
        "steps": steps,
        "callback": f"{callback.scheme}://{callback.netloc}{callback.path}",
        "had_code": bool(codes),
        "code_shown": any(code and code in source for code in codes),
        "title": driver.title,
        "text": body,
    }


def _left_the_page(driver: webdriver.Chrome) -> bool:
    return bool(
        driver.execute_script(
            "return window.__e2eLeaving === undefined"
            " && document.readyState === 'complete'"
        )
    )


def main(argv: list[str]) -> int:
    """``chromium_browser.py URL``: sign in; 0 once the callback showed."""
    if len(argv) != 1:
        print("usage: chromium_browser.py URL", file=sys.stderr)
        return 2
    shots_dir = os.environ.get("SAGE_E2E_SHOTS")
    shots = Path(shots_dir) if shots_dir else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="sage-e2e-chromium-")
    report: dict[str, object] = {"ok": False}
    try:
        driver = new_driver(profile)
        try:
            report = {"ok": True, **sign_in(driver, argv[0], shots)}
        finally:
            driver.quit()
    except (SignInError, WebDriverException) as exc:
        report = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:500]}
        print(f"chromium_browser: {report['error']}", file=sys.stderr)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        if shots is not None:
            (shots / "report.json").write_text(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
