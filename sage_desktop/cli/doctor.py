"""``sage-desktop doctor``: every check that needs no user action.

Prints a checklist (a mark per line, and for each problem the explanation
and what to do, from the causes catalogue) or, with ``--json``, a report
to attach to a support ticket. Neither ever holds a token, a code or the
client secret. Exits 1 when a check failed, so scripts can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sage_desktop.context import AppContext
from sage_desktop.diagnostics.checks import (
    DEFAULT_TIMEOUT,
    CheckResult,
    Doctor,
    format_result,
    summary_line,
)

DOCTOR_EPILOG = """\
Checks: the app registration (client id, callback URLs, region), the
keychain, the client secret, that each callback port can be bound, that
Sage's sign-in page, token endpoint and API answer, that Sage accepts the
client id and secret and each callback URL, how the last sign-in ended
(an expired code or a refused region can only be seen then), and for each
connection the stored tokens (read from the keychain; nothing is
refreshed), the region and the chosen business.

exit codes: 0 nothing failed (warnings allowed), 1 a check failed,
2 usage (no such connection).
"""


def register(subparsers: Any) -> None:
    """Add ``doctor`` to the ``sage-desktop`` command."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check the set-up and explain what is wrong",
        description=(
            "Check everything sage-desktop needs, without asking you for "
            "anything, and say what to do about each problem found."
        ),
        epilog=DOCTOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    doctor.add_argument(
        "--connection",
        metavar="ID|EMAIL",
        help="check only this connection (id, id prefix or email)",
    )
    doctor.add_argument(
        "--json",
        action="store_true",
        help="print a JSON report for a support ticket (holds no secret)",
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds each network probe may take (default {DEFAULT_TIMEOUT:g})",
    )
    doctor.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace, context: AppContext | None = None) -> int:
    """Run the checks; print as they complete (text) or at the end (JSON)."""
    context = context or AppContext()
    doctor = Doctor(context, connection=args.connection, timeout=args.timeout)

    def show(result: CheckResult) -> None:
        for line in format_result(result):
            print(line, flush=True)

    if args.json:
        report = doctor.run()
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        report = doctor.run(on_result=show)
        print(summary_line(report))
    return report.exit_code
