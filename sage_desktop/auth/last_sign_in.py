"""The outcome of the last sign-in, kept so ``doctor`` can explain it later.

Some causes in Sage's troubleshooting guide exist only while a sign-in
runs: the authorization code expired or was used twice (60 s, single use),
or Sage refused the region chosen. Afterwards nothing is left to probe, so
:class:`~sage_desktop.auth.flow.SignInFlow` writes how each sign-in ended
to ``last-sign-in.json`` in the platformdirs user state directory, and
``sage-desktop doctor`` reads it back. A successful sign-in replaces a
failure, so a problem already fixed is not reported again.

The file holds the time, the outcome, the error's class name, its catalogue
cause and title, and the region passed to Sage: never a code, a token, a
``state``, a URL or the client secret.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from sage_desktop.config import APP_NAME
from sage_desktop.errors import SageDesktopError

__all__ = ["FILE_NAME", "LastSignIn", "SignInRecord", "default_path"]

log = logging.getLogger(__name__)

FILE_NAME = "last-sign-in.json"

SUCCEEDED = "succeeded"
FAILED = "failed"

# The record's time: UTC, to the second.
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def default_path() -> Path:
    """``last-sign-in.json`` in the platformdirs user state directory."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / FILE_NAME


@dataclass(frozen=True)
class LastSignIn:
    """How one sign-in ended.

    ``error``, ``cause``, ``title`` and ``transient`` describe a failure
    (the error's class name, its catalogue entry, its title and whether it
    was a passing problem on Sage's side); they are None for a success.
    ``region`` is the region passed to Sage, if any.
    """

    at: float
    outcome: str
    error: str | None = None
    cause: str | None = None
    title: str | None = None
    transient: bool = False
    region: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED

    @classmethod
    def success(
        cls, *, region: str | None = None, at: float | None = None
    ) -> LastSignIn:
        """A sign-in that ended with the tokens saved."""
        return cls(
            at=time.time() if at is None else at, outcome=SUCCEEDED, region=region
        )

    @classmethod
    def failure(
        cls,
        exc: SageDesktopError,
        *,
        region: str | None = None,
        at: float | None = None,
    ) -> LastSignIn:
        """A sign-in that ended with ``exc``; only its class-level facts are
        kept, never its message (which may name callback URLs)."""
        return cls(
            at=time.time() if at is None else at,
            outcome=FAILED,
            error=type(exc).__name__,
            cause=exc.cause,
            title=exc.title,
            transient=exc.transient,
            region=region,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "at": time.strftime(_STAMP, time.gmtime(self.at)),
            "outcome": self.outcome,
            "error": self.error,
            "cause": self.cause,
            "title": self.title,
            "transient": self.transient,
            "region": self.region,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LastSignIn:
        """Read :meth:`to_dict`'s record; raises ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        outcome = data.get("outcome")
        if outcome not in (SUCCEEDED, FAILED):
            raise ValueError(f"unknown outcome {outcome!r}")
        try:
            at = calendar.timegm(time.strptime(str(data["at"]), _STAMP))
        except (KeyError, ValueError) as exc:
            raise ValueError("no valid time") from exc
        return cls(
            at=at,
            outcome=outcome,
            error=_text(data.get("error")),
            cause=_text(data.get("cause")),
            title=_text(data.get("title")),
            transient=data.get("transient") is True,
            region=_text(data.get("region")),
        )


class SignInRecord:
    """The file that keeps the :class:`LastSignIn`.

    Args:
        path: where the record lives; default :func:`default_path`.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def __repr__(self) -> str:
        return f"SignInRecord({str(self.path)!r})"

    def load(self) -> LastSignIn | None:
        """The last outcome, or None when no sign-in was recorded.

        Raises OSError or ValueError when the file cannot be read as one.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return LastSignIn.from_dict(json.loads(text))

    def save(self, outcome: LastSignIn) -> None:
        """Replace the record atomically (readers see the old or the new
        file, never half of one), private to the user where POSIX allows."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps(outcome.to_dict(), indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                if sys.platform != "win32":
                    os.fchmod(handle.fileno(), 0o600)
                handle.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remember(self, outcome: LastSignIn) -> None:
        """:meth:`save`, but a disk problem is only logged: keeping the
        record must never break the sign-in it describes."""
        try:
            self.save(outcome)
        except OSError as exc:
            log.warning(
                "could not record the sign-in outcome in %s: %s", self.path, exc
            )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
