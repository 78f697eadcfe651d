"""Plain records for what Sage's API returns: the user and their businesses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UserInfo:
    """``GET /v3.1/user``: labels a connection."""

    id: str
    displayed_as: str
    email: str
    locale: str = ""


@dataclass(frozen=True)
class Business:
    """One entry of ``GET /v3.1/businesses?attributes=all``.

    ``active`` is None when Sage did not say (the list was fetched without
    attributes); a business is refused only when ``active`` is False, as Sage
    advises against using businesses whose subscription is inactive.
    ``inactive_reason`` then says why, in Sage's words where it gave some
    (the subscription's status, or when it expired).
    """

    id: str
    name: str
    region: str = ""
    active: bool | None = None
    is_demo: bool = False
    is_lead: bool = False
    inactive_reason: str | None = None

    @property
    def selectable(self) -> bool:
        return self.active is not False
