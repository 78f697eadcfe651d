"""The ``sage-desktop`` command: the GUI by default, subcommands for scripts.

Each subcommand lives in a module of this package that exposes
``register(subparsers)``; the handler it sets (``func``) takes the parsed
arguments and returns an exit code. Every :class:`SageDesktopError` is
printed to stderr as its explanation and remedy, with its own exit code, so
scripts can tell "sign in again" (3) from "keychain unavailable" (4) and
"Sage unreachable" (5).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Sequence

from sage_desktop import __version__

log = logging.getLogger(__name__)

# Each subcommand and the module that registers it. A command line loads
# only its command's module: `sage-desktop token`, which scripts run again
# and again, need not import the sign-in flow or the sandbox server.
COMMANDS = {
    "login": "sage_desktop.cli.signin",
    "logout": "sage_desktop.cli.signin",
    "token": "sage_desktop.cli.scripting",
    "api": "sage_desktop.cli.scripting",
    "connections": "sage_desktop.cli.scripting",
    "businesses": "sage_desktop.cli.scripting",
    "use": "sage_desktop.cli.scripting",
    "doctor": "sage_desktop.cli.doctor",
    "sandbox": "sage_desktop.cli.sandbox",
}
# In the order --help lists them.
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))

EPILOG = """\
exit codes:
  0  success
  1  error
  2  usage or settings error
  3  sign-in needed (run 'sage-desktop login')
  4  keychain unavailable
  5  Sage or the network unreachable
"""

Handler = Callable[[argparse.Namespace], int]


def build_parser(modules: Iterable[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The ``sage-desktop`` parser with the subcommands of ``modules``.

    Subcommand modules import requests and keyring: the window's start
    loads none of them (``modules_for``), a subcommand only its own.
    """
    parser = argparse.ArgumentParser(
        prog="sage-desktop",
        description=(
            "Connect this computer to Sage Business Cloud Accounting. "
            "Without a command, opens the desktop app."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"sage-desktop {__version__}"
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="open the app against the built-in Sage sandbox",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-vv: debug)"
    )
    modules = tuple(modules)
    if not modules:
        return parser
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The subcommand modules that parsing ``argv`` needs.

    None for the window or ``--version``, the command's own module for a
    known command, and all of them for ``--help`` or an unknown command
    (argparse then lists every command).
    """
    # The top-level options take no value: the first word is the command.
    words = [arg for arg in argv if not arg.startswith("-")]
    if words:
        module = COMMANDS.get(words[0])
        return (module,) if module is not None else COMMAND_MODULES
    if any(arg in ("-h", "--help") for arg in argv):
        return COMMAND_MODULES
    return ()


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING
    if verbosity == 1:
        level = logging.INFO
    elif verbosity >= 2:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run_gui(args: argparse.Namespace) -> int:
    try:
        from sage_desktop.ui.app import run_app
    except ModuleNotFoundError as exc:
        if exc.name not in ("sage_desktop.ui.app", "PySide6"):
            raise
        print(
            "sage-desktop: the desktop window is not available in this build.",
            file=sys.stderr,
        )
        return 1  # ExitCode.ERROR
    return run_app(sandbox=args.sandbox)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(modules_for(argv))
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)

    handler: Handler | None = getattr(args, "func", None)
    try:
        if handler is None:
            return _run_gui(args)
        return handler(args)
    except Exception as exc:
        # Imported here: the error tree loads the troubleshooting catalogue,
        # which the window's start does not need.
        from sage_desktop.errors import SageDesktopError

        if not isinstance(exc, SageDesktopError):
            raise
        print(f"sage-desktop: {exc.user_message()}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("sage-desktop: interrupted", file=sys.stderr)
        return 130
