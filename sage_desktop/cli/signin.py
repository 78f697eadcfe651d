"""``sage-desktop login`` and ``sage-desktop logout``.

``login`` runs the browser sign-in (:mod:`sage_desktop.auth.flow`), prints
the address it opens so it can be copied into a browser elsewhere, and
picks the business when the user reaches exactly one. ``logout`` revokes
the grant at Sage, then forgets it locally even if Sage could not be told.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sage_desktop.auth.flow import SignInFlow, SignInProgress, SignInResult
from sage_desktop.auth.receiver import DEFAULT_TIMEOUT
from sage_desktop.config import COUNTRIES, SCOPES
from sage_desktop.context import AppContext
from sage_desktop.errors import (
    ConfigError,
    ExitCode,
    SageDesktopError,
)

if TYPE_CHECKING:
    from sage_desktop.connections import Connection, ConnectionRegistry

LOGIN_EPILOG = """\
The browser opens on Sage's sign-in page (set BROWSER to choose which).
With --no-browser the address is only printed, for a browser elsewhere;
it must be opened on this computer, since Sage sends the browser back to
a local callback URL.

exit codes: 0 signed in, 1 sign-in failed (refused, timed out, cancelled),
2 usage or settings error (for example a missing app registration),
4 keychain unavailable, 5 Sage or the network unreachable.
"""

LOGOUT_EPILOG = """\
Sage is asked to revoke the connection's access first; the tokens and the
connection are then deleted from this computer even when Sage cannot be
reached (the message says so, and the access then lapses within 31 days
or can be removed in Sage's settings).

exit codes: 0 signed out, 1 error, 2 usage (several connections and no
--connection), 4 keychain unavailable.
"""


def register(subparsers: Any) -> None:
    """Add ``login`` and ``logout`` to the ``sage-desktop`` command."""
    login = subparsers.add_parser(
        "login",
        help="sign in to Sage through the browser",
        description=(
            "Sign in to Sage Business Cloud Accounting in your browser and "
            "add (or renew) a connection on this computer."
        ),
        epilog=LOGIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument(
        "--country",
        metavar="CC",
        type=str.lower,
        choices=COUNTRIES,
        help=(
            "Sage region to sign in to (" + ", ".join(COUNTRIES) + "); "
            "default: Sage's region picker"
        ),
    )
    login.add_argument(
        "--scope",
        choices=SCOPES,
        help="access to ask for (default from settings: full_access)",
    )
    login.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the browser (default {DEFAULT_TIMEOUT:g})",
    )
    login.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser; only print the address",
    )
    login.set_defaults(func=run_login)

    logout = subparsers.add_parser(
        "logout",
        help="revoke a connection at Sage and forget it here",
        description="Revoke a connection's access at Sage and delete it locally.",
        epilog=LOGOUT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logout.add_argument(
        "--connection",
        metavar="ID|EMAIL",
        help="which connection, where there are several (id, id prefix or email)",
    )
    logout.set_defaults(func=run_logout)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return value


def _say(text: str) -> None:
    print(text, flush=True)


# --- login -------------------------------------------------------------------


def run_login(args: argparse.Namespace, context: AppContext | None = None) -> int:
    """Sign in and report what the connection can reach."""
    context = context or AppContext()

    def show(progress: SignInProgress) -> None:
        if progress.stage == "listening" and progress.url:
            if args.no_browser:
                _say("Open this address in a browser on this computer:")
            else:
                _say("Opening Sage's sign-in page in your browser; if it does")
                _say("not appear, copy this address into a browser:")
            _say(f"  {progress.url}")
        elif progress.stage == "browser_failed":
            _say("Could not open a browser; open the address above yourself.")
        elif progress.stage == "waiting":
            _say(f"Waiting up to {args.timeout:g} seconds for the sign-in...")

    flow = SignInFlow.from_context(context, on_progress=show)
    result = flow.run(
        country=args.country,
        scope=args.scope,
        timeout=args.timeout,
        open_browser=not args.no_browser,
        fetch_businesses=True,
    )
    verb = "Signed in" if result.created else "Signed in again"
    _say(f"{verb} as {result.user.displayed_as} <{result.user.email}>.")
    _say(f"Connection: {result.connection.id}")
    _choose_business(context.registry, result)
    return int(ExitCode.OK)


def _choose_business(registry: ConnectionRegistry, result: SignInResult) -> None:
    connection = result.connection
    if result.businesses is None:
        reason = result.businesses_error.explanation if result.businesses_error else ""
        _say(f"The businesses could not be listed now. {reason}".rstrip())
        _say("List them later with 'sage-desktop businesses'.")
        return

    businesses = result.businesses
    if connection.business_id and any(
        b.id == connection.business_id for b in businesses
    ):
        _say(f"Still using the business {connection.business_name}.")
        return
    if not businesses:
        _say(
            "This Sage login reaches no business (a developer-portal login "
            "reaches none). Sign in with a login that belongs to a business."
        )
        return
    if len(businesses) == 1:
        only = businesses[0]
        if not only.selectable:
            _say(
                f"Your only business, {only.name}, has an inactive "
                "subscription, so it was not chosen."
            )
            return
        registry.save(replace(connection, business_id=only.id, business_name=only.name))
        _say(f"Using your only business: {only.name}.")
        return
    _say(
        f"You can reach {len(businesses)} businesses. Choose one with "
        "'sage-desktop use BUSINESS' (by id or exact name); list them with "
        "'sage-desktop businesses'."
    )


# --- logout ------------------------------------------------------------------


def run_logout(args: argparse.Namespace, context: AppContext | None = None) -> int:
    """Revoke at Sage, then delete the tokens and the connection."""
    context = context or AppContext()
    registry = context.registry
    connection = registry.choose(args.connection)

    revoke_problem = _revoke(context, connection)
    registry.remove(connection.id)

    if revoke_problem is None:
        _say(f"Signed out {connection.email}: Sage revoked the access.")
    else:
        print(
            f"sage-desktop: Sage could not be told to revoke the access "
            f"({revoke_problem}). The connection for {connection.email} was "
            "forgotten on this computer anyway; its access lapses within 31 "
            "days, or remove it now in Sage's settings.",
            file=sys.stderr,
        )
        _say(f"Signed out {connection.email} on this computer.")
    return int(ExitCode.OK)


def _revoke(context: AppContext, connection: Connection) -> str | None:
    """Revoke the grant; None on success, else why it failed (no secrets)."""
    tokens = context.vault.load(connection.id)
    if tokens is None:
        return "no tokens were stored for it"
    try:
        endpoint = context.token_endpoint()
    except ConfigError as exc:
        return exc.explanation
    try:
        endpoint.revoke(tokens.refresh_token)
    except SageDesktopError as exc:
        return exc.explanation
    finally:
        endpoint.close()
    return None
