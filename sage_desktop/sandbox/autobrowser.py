"""A test "browser" for the sandbox's sign-in pages.

It plays the user's part over plain HTTP: opens the authorize URL, picks
the region when Sage's picker shows, signs in, answers the consent page and
follows the final redirect to the app's loopback callback, the way a real
browser delivers it. It prints where it delivered, never a code or token.

Use it as the system browser for the app::

    BROWSER="python -m sage_desktop.sandbox.autobrowser %s" sage-desktop login

Python's ``webbrowser`` waits for a ``BROWSER`` command to finish. The
autobrowser normally runs in the foreground and finishes within a second
on loopback, so its exit status tells whether the sign-in went through;
this needs the app to serve its callback on another thread than the one
that opened the browser, as sage-desktop's receiver does. Pass
``--detach`` (or set ``SANDBOX_DETACH=1``) to return at once and play the
pages from a background process instead.

Environment: ``SANDBOX_LOGIN_EMAIL`` (default the accountant),
``SANDBOX_LOGIN_PASSWORD`` (default ``sandbox``), ``SANDBOX_REGION``
(default the user's own region; used when the picker shows) and
``SANDBOX_CONSENT`` (``allow`` or ``deny``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

from sage_desktop.sandbox._demo import ACCOUNTANT, DEMO, PASSWORD

log = logging.getLogger(__name__)

MAX_STEPS = 10


class AutobrowserError(Exception):
    """The pages did not lead to the callback (the message says where)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class _FormReader(HTMLParser):
    """Finds the page's form (its ``data-step``, action and fields) and an
    error message, the way a person reads the page."""

    def __init__(self) -> None:
        super().__init__()
        self.step: str | None = None
        self.action = ""
        self.fields: dict[str, str] = {}
        self.options: list[str] = []
        self.error = ""
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.step = attr.get("data-step")
            self.action = attr.get("action", "")
        elif tag == "h1" and attr.get("data-step") == "error":
            self.step = "error"
        elif tag == "input" and attr.get("type") == "hidden":
            self.fields[attr.get("name", "")] = attr.get("value", "")
        elif tag == "option":
            self.options.append(attr.get("value", ""))
        if attr.get("id") == "error":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error += data


def _region_of(email: str) -> str:
    try:
        return DEMO.user(email).region
    except KeyError:
        return "GB"


def play(
    url: str,
    *,
    email: str = ACCOUNTANT,
    password: str = PASSWORD,
    region: str | None = None,
    consent: str = "allow",
    timeout: float = 10.0,
) -> str:
    """Sign in through the sandbox's pages; return the callback URL that was
    delivered (it carries the code: callers must not print it).

    Raises :class:`AutobrowserError` when a page shows an error, sign-in
    fails, or the callback cannot be delivered.
    """
    opener = urllib.request.build_opener(_NoRedirect)
    region = region or _region_of(email)
    method, target, data = "GET", url, None
    origin = urlsplit(url).netloc
    signed_in_once = False

    for _ in range(MAX_STEPS):
        if urlsplit(target).scheme != "http":
            raise AutobrowserError("the sandbox and the callback are plain http")
        request = urllib.request.Request(target, data=data, method=method)  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with opener.open(request, timeout=timeout) as response:
                status, body = response.status, response.read()
                location = response.headers.get("Location")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
            location = exc.headers.get("Location")
        except OSError as exc:
            where = urlsplit(target)
            raise AutobrowserError(
                f"could not reach {where.scheme}://{where.netloc}{where.path}: "
                f"{exc.__class__.__name__}"
            ) from exc

        if status in (301, 302, 303, 307) and location:
            next_url = urljoin(target, location)
            if urlsplit(next_url).netloc == origin:
                method, target, data = "GET", next_url, None
                continue
            return _deliver(opener, next_url, timeout)

        page = _FormReader()
        page.feed(body.decode("utf-8", "replace"))
        if page.step == "error" or page.step is None:
            raise AutobrowserError(
                f"the sign-in page showed an error (HTTP {status}): "
                f"{page.error.strip() or 'no form on the page'}"
            )
        fields = dict(page.fields)
        if page.step == "region":
            fields["country"] = region
        elif page.step == "sign_in":
            if signed_in_once:
                raise AutobrowserError(f"sign-in refused: {page.error.strip()}")
            signed_in_once = True
            fields.update(email=email, password=password)
        elif page.step == "consent":
            fields["decision"] = "allow" if consent == "allow" else "deny"
        method = "POST"
        target = urljoin(target, page.action)
        data = urlencode(fields).encode("ascii")
    raise AutobrowserError("too many pages without reaching the callback")


def _deliver(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> str:
    """Open the callback on the app's loopback receiver, as a browser does."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise AutobrowserError("the callback must be a plain http loopback URL")
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"
    try:
        with opener.open(url, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        # The receiver answered (an error page is still a delivery).
        log.info("callback answered HTTP %s", exc.code)
    except OSError as exc:
        raise AutobrowserError(
            f"could not deliver the callback to {where}: {exc.__class__.__name__}"
        ) from exc
    print(f"autobrowser: delivered the callback to {where}", file=sys.stderr)
    return url


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sage_desktop.sandbox.autobrowser [--detach] URL``."""
    args = list(sys.argv[1:] if argv is None else argv)
    detach = os.environ.get("SANDBOX_DETACH") == "1"
    if "--detach" in args:
        args.remove("--detach")
        detach = True
    if len(args) != 1:
        print("usage: autobrowser [--detach] URL", file=sys.stderr)
        return 2
    if detach:
        env = dict(os.environ, SANDBOX_DETACH="0")
        subprocess.Popen(
            [sys.executable, "-m", "sage_desktop.sandbox.autobrowser", args[0]],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return 0
    email = os.environ.get("SANDBOX_LOGIN_EMAIL") or ACCOUNTANT
    try:
        play(
            args[0],
            email=email,
            password=os.environ.get("SANDBOX_LOGIN_PASSWORD") or PASSWORD,
            region=os.environ.get("SANDBOX_REGION") or None,
            consent=os.environ.get("SANDBOX_CONSENT") or "allow",
        )
    except AutobrowserError as exc:
        print(f"autobrowser: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
