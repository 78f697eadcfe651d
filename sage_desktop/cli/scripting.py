"""Commands for scripts: ``token``, ``api``, ``connections``, ``businesses``, ``use``.

Each command runs its own :class:`RefreshWorker`; the per-grant lock shared
by every sage-desktop process means a script and the desktop app never
refresh the same grant twice, and whoever comes second adopts the tokens
the first one saved. Results go to stdout (only the token for ``token``, so
``$(sage-desktop token)`` works); errors go to stderr with Sage's own
message and the exit codes listed in ``sage-desktop --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sage_desktop.errors import (
    ConfigError,
    ConnectionNotFound,
    ExitCode,
    InactiveSubscription,
    KeychainError,
    SageDesktopError,
    SignInRequired,
)

log = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "DELETE")


@dataclass
class _Open:
    """Everything one command needs, closed together."""

    settings: Any
    vault: Any
    registry: Any
    connection: Any
    worker: Any

    def client(self, business_id: str | None = None, **kw: Any) -> Any:
        from sage_desktop.session import SageClient

        return SageClient.for_connection(
            self.worker,
            self.connection.id,
            self.settings.api_url,
            business_id,
            timeout=self.settings.http_timeout,
            **kw,
        )


def register(subparsers: Any) -> None:
    """Add the scripting subcommands to the ``sage-desktop`` parser."""
    token = subparsers.add_parser(
        "token",
        help="print a valid access token (for scripts)",
        description=(
            "Print a valid access token for the connection on stdout, and "
            "nothing else. The token is renewed first if needed, in step "
            "with every other sage-desktop program on this computer."
        ),
    )
    _add_connection_option(token)
    token.set_defaults(func=run_token)

    api = subparsers.add_parser(
        "api",
        help="call Sage's API and print the JSON answer",
        description=(
            "Call Sage Accounting's API (v3.1) with the connection's token "
            "and chosen business, and print the JSON answer. PATH is "
            "relative to the API base, e.g. 'contacts' or '/user'."
        ),
    )
    api.add_argument("path", metavar="PATH", help="API path, e.g. contacts")
    api.add_argument(
        "--business",
        metavar="B",
        help="business id or exact name (default: the chosen business)",
    )
    api.add_argument(
        "--method",
        default="GET",
        type=str.upper,
        choices=METHODS,
        help="HTTP method (default GET)",
    )
    api.add_argument("--data", metavar="JSON", help="JSON request body")
    _add_connection_option(api)
    api.set_defaults(func=run_api)

    connections = subparsers.add_parser(
        "connections",
        help="list the Sage connections on this computer",
        description="List the Sage connections and whether each needs sign-in.",
    )
    connections.add_argument("--json", action="store_true", help="print JSON")
    connections.set_defaults(func=run_connections)

    businesses = subparsers.add_parser(
        "businesses",
        help="list every business the connection can reach",
        description=(
            "List every business the connection's Sage login can reach "
            "(all pages), marking the lead and the chosen business."
        ),
    )
    businesses.add_argument("--json", action="store_true", help="print JSON")
    _add_connection_option(businesses)
    businesses.set_defaults(func=run_businesses)

    use = subparsers.add_parser(
        "use",
        help="choose the business the connection works on",
        description=(
            "Choose the business (by id or exact name) that 'api' and other "
            "tools use. A business whose Sage subscription is inactive is "
            "refused, as Sage advises."
        ),
    )
    use.add_argument("business", metavar="BUSINESS", help="business id or name")
    _add_connection_option(use)
    use.set_defaults(func=run_use)


def _add_connection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connection",
        metavar="ID|EMAIL",
        help="which connection, where there are several (id, id prefix or email)",
    )


# --- commands -------------------------------------------------------------


def run_token(args: argparse.Namespace) -> int:
    """``sage-desktop token``: only the token on stdout."""
    with _opened(args) as opened:
        token = opened.worker.token(opened.connection.id)
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    return ExitCode.OK


def run_api(args: argparse.Namespace) -> int:
    """``sage-desktop api PATH``: one call, JSON on stdout."""
    body = None
    if args.data is not None:
        try:
            body = json.loads(args.data)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"--data is not valid JSON ({exc.msg} at character {exc.pos}).",
                title="Bad request body",
                remedy='Pass a JSON document, e.g. --data \'{"name": "x"}\'.',
            ) from exc
    with _opened(args) as opened:
        business_id = opened.connection.business_id
        business_name = opened.connection.business_name
        if args.business:
            chosen = _find_business(opened, args.business)
            business_id, business_name = chosen.id, chosen.name
        with opened.client(business_id, business_name=business_name) as client:
            result = client.request(args.method, args.path, json=body)
    if result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return ExitCode.OK


def run_connections(args: argparse.Namespace) -> int:
    """``sage-desktop connections``: every connection and its state."""
    from sage_desktop.context import AppContext

    context = AppContext()
    vault, registry = context.vault, context.registry
    rows = []
    for connection in registry.list():
        rows.append({**connection.to_dict(), "state": _state_of(connection, vault)})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return ExitCode.OK
    if not rows:
        print("No connections yet. Run 'sage-desktop login' to add one.")
        return ExitCode.OK
    for row in rows:
        business = row["business_name"] or "no business chosen"
        print(f"{row['id'][:8]}  {row['email']:<32} {business:<32} {row['state']}")
    return ExitCode.OK


def run_businesses(args: argparse.Namespace) -> int:
    """``sage-desktop businesses``: every page, lead and chosen marked."""
    with _opened(args) as opened, opened.client() as client:
        businesses = client.businesses(on_progress=_progress_printer())
        chosen = opened.connection.business_id
    if args.json:
        rows = [
            {
                "id": b.id,
                "name": b.name,
                "region": b.region,
                "active": b.active,
                "is_demo": b.is_demo,
                "is_lead": b.is_lead,
                "chosen": b.id == chosen,
            }
            for b in businesses
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return ExitCode.OK
    for b in businesses:
        flags = [
            flag
            for flag, on in (
                ("lead", b.is_lead),
                ("demo", b.is_demo),
                ("inactive", b.active is False),
            )
            if on
        ]
        mark = "*" if b.id == chosen else " "
        print(f"{mark} {b.id}  {b.region or '--':<3} {b.name}  {' '.join(flags)}")
    return ExitCode.OK


def run_use(args: argparse.Namespace) -> int:
    """``sage-desktop use BUSINESS``: remember the chosen business."""
    with _opened(args) as opened:
        business = _find_business(opened, args.business)
        if business.active is False:
            with opened.client() as client:
                details = client.business(business.id)
            reason = details.inactive_reason or "Its subscription is inactive."
            raise InactiveSubscription(
                f"{business.name}: {reason}",
            )
        connection = replace(
            opened.connection,
            business_id=business.id,
            business_name=business.name,
            last_used_at=time.time(),
        )
        opened.registry.save(connection)
    print(f"Now using {business.name} ({business.id}) for {connection.email}.")
    return ExitCode.OK


# --- helpers --------------------------------------------------------------


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[_Open]:
    from sage_desktop.context import AppContext

    context = AppContext()
    connection = pick_connection(context.registry, getattr(args, "connection", None))
    worker = context.worker
    try:
        yield _Open(
            context.settings, context.vault, context.registry, connection, worker
        )
    finally:
        worker.stop()


def pick_connection(registry: Any, wanted: str | None) -> Any:
    """The connection named by ``--connection``, or the only one there is.

    No connection at all is "sign in needed" (exit code 3) for scripts.
    """
    try:
        connection = registry.choose(wanted)
    except ConnectionNotFound as exc:
        if wanted:
            raise
        raise SignInRequired(
            exc.explanation, remedy=exc.remedy, title="No connection yet"
        ) from exc
    if connection.needs_sign_in:
        raise SignInRequired(
            f"The connection for {connection.email} needs a new sign-in.",
            remedy="Run 'sage-desktop login' to sign in again.",
        )
    return connection


def _find_business(opened: _Open, wanted: str) -> Any:
    """A business by id, else by exact name (refusing an ambiguous name)."""
    with opened.client() as client:
        businesses = client.businesses(on_progress=_progress_printer())
    by_id = [b for b in businesses if b.id == wanted]
    if by_id:
        return by_id[0]
    by_name = [b for b in businesses if b.name == wanted]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(b.id for b in by_name)
        raise ConfigError(
            f"Several businesses are named {wanted!r} ({ids}).",
            title="Which business?",
            remedy="Give the business id instead of its name.",
        )
    raise ConfigError(
        f"This connection cannot reach a business named or numbered {wanted!r}.",
        title="Business not found",
        remedy="Run 'sage-desktop businesses' to list them (names are exact).",
    )


def _state_of(connection: Any, vault: Any) -> str:
    if connection.needs_sign_in:
        return "sign in again"
    try:
        tokens = vault.load(connection.id)
    except KeychainError:
        return "keychain unavailable"
    except SageDesktopError:
        return "unknown"
    if tokens is None or tokens.refresh_seconds_left() <= 0:
        return "sign in again"
    days = tokens.refresh_seconds_left() / 86400
    if days < 3:
        return f"ok (sign in again within {max(1, int(days) + 1)} days)"
    return "ok"


def _progress_printer() -> Any:
    """Progress on stderr when a person is watching; silent in pipes."""
    if not sys.stderr.isatty():
        return None

    def show(loaded: int, total: int | None) -> None:
        of = f"/{total}" if total is not None else ""
        sys.stderr.write(f"\rloading businesses: {loaded}{of}")
        if total is not None and loaded >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
