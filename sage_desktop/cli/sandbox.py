"""``sage-desktop sandbox``: run the built-in local Sage in the foreground.

Prints its endpoints, the demo app registration, the demo logins and the
environment that points sage-desktop at it; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from typing import Any

from sage_desktop.sandbox import DEMO, Sandbox, SandboxConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` subcommand to the ``sage-desktop`` parser."""
    defaults = SandboxConfig()
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local Sage sandbox for demos and tests",
        description=(
            "Run a local stand-in for Sage Business Cloud Accounting on "
            "loopback: sign-in pages, token and revoke endpoints and the "
            "v3.1 API, with demo users and businesses. Ctrl-C stops it."
        ),
    )
    parser.add_argument(
        "--host", default=defaults.host, help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8800, help="port (0: any free port; %(default)s)"
    )
    parser.add_argument(
        "--access-ttl",
        type=float,
        default=defaults.access_ttl,
        metavar="S",
        help="access token lifetime in seconds (Sage: %(default)s)",
    )
    parser.add_argument(
        "--refresh-ttl",
        type=float,
        default=defaults.refresh_ttl,
        metavar="S",
        help="refresh token lifetime in seconds (Sage: %(default)s, 31 days)",
    )
    parser.add_argument(
        "--token-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="added delay on the token endpoint",
    )
    parser.add_argument(
        "--api-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="added delay on every API call",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=defaults.max_concurrent,
        metavar="N",
        help="concurrent requests before 429 (Sage: %(default)s)",
    )
    parser.set_defaults(func=run)


def describe(sb: Sandbox) -> str:
    """The banner: endpoints, registration, logins, environment."""
    env = sb.env()
    lines = [
        f"Sage sandbox running at {sb.base_url}  (Ctrl-C stops it)",
        "",
        "Endpoints:",
        f"  authorize  {sb.auth_url}",
        f"  token      {sb.token_url}",
        f"  revoke     {sb.revoke_url}",
        f"  API        {sb.api_url}",
        f"  counters   {sb.control_url}/counters",
        "",
        "Demo app registration:",
        f"  client id      {DEMO.client_id}",
        f"  client secret  {DEMO.client_secret}",
        "  callback URLs  " + "\n                 ".join(DEMO.redirect_uris),
        "",
        f"Demo logins (password: {DEMO.password}):",
    ]
    lines += [f"  {u.email:32} {u.region}  {u.description}" for u in DEMO.users]
    lines += ["", "Point sage-desktop at it (POSIX shell):"]
    lines += [f"  export {name}={shlex.quote(value)}" for name, value in env.items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or SIGTERM)."""
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        access_ttl=args.access_ttl,
        refresh_ttl=args.refresh_ttl,
        token_latency=args.token_latency,
        api_latency=args.api_latency,
        max_concurrent=args.max_concurrent,
    )
    done = threading.Event()
    try:
        sb = Sandbox(config).start()
    except OSError as exc:
        print(
            f"sage-desktop: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}. Try --port 0 for any free port.",
            file=sys.stderr,
        )
        return 1
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        print(describe(sb), flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        print("Sandbox stopped.", file=sys.stderr)
    return 0
